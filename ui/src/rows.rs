//! Turns a room's messages into the rows the message list draws: day separators, the
//! "new messages" line, and messages with or without a sender header (consecutive messages
//! from one sender within a few minutes form a group). Only a window of them is drawn at a
//! time ([`window`]), so the DOM stays bounded however far back the user scrolls.

use protocol::ipc::MessageView;
use protocol::UserId;
use std::ops::Range;

/// Rows drawn at most: the list keeps this many in the DOM however far back the user scrolls.
pub const WINDOW: usize = 150;
/// Rows the window moves by when the view nears one of its edges (well under [`WINDOW`] minus
/// a screenful, so the rows in view stay drawn across a move).
pub const SHIFT: usize = 50;

/// Messages closer than this to the previous one from the same sender join its group.
const GROUP_GAP_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row<'a> {
    /// A day starts; the time of its first message.
    Day(i64),
    /// Messages below are new since the user last read this room.
    NewMessages,
    Message {
        message: &'a MessageView,
        /// Show avatar, name and time (first of a group).
        header: bool,
    },
}

impl Row<'_> {
    /// A name for the row that stays the same while rows come and go around it (an older
    /// page loaded, the window moved): what the list keeps its view on. `None` for a message
    /// not sent yet (those are only ever at the bottom).
    pub fn key(&self, day_of: impl Fn(i64) -> i64) -> Option<String> {
        match self {
            Row::Day(ts) => Some(format!("day-{}", day_of(*ts))),
            Row::NewMessages => Some("new-divider".to_owned()),
            Row::Message { message, .. } => message.seq.map(|seq| format!("s{seq}")),
        }
    }
}

/// The rows to draw out of `len`: [`WINDOW`] of them from `top`, or the newest ones (`None`:
/// the view follows the bottom). A `top` too close to the end still gives a full window.
pub fn window(len: usize, top: Option<usize>) -> Range<usize> {
    let newest = len.saturating_sub(WINDOW);
    let start = top.map_or(newest, |top| top.min(newest));
    start..(start + WINDOW).min(len)
}

/// Where the window's top goes when the view nears its upper edge: [`SHIFT`] rows earlier.
/// `None` when it already starts at the first row (then an older page is what is needed).
pub fn shift_up(current: &Range<usize>) -> Option<usize> {
    (current.start > 0).then(|| current.start.saturating_sub(SHIFT))
}

/// Where the window goes when the view nears its lower edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// It already ends at the last row.
    AtEnd,
    /// [`SHIFT`] rows later: its new top.
    Top(usize),
    /// That reached the end: follow the newest rows.
    Newest,
}

/// Moves the window [`SHIFT`] rows down (see [`Down`]).
pub fn shift_down(current: &Range<usize>, len: usize) -> Down {
    if current.end >= len {
        return Down::AtEnd;
    }
    let top = current.start + SHIFT;
    if top + WINDOW < len {
        Down::Top(top)
    } else {
        Down::Newest
    }
}

/// The window's top that shows row `target` about in its middle.
pub fn centred_on(target: usize) -> usize {
    target.saturating_sub(WINDOW / 2)
}

/// Rows for `messages` (ascending). `divider_after` is the read marker when the room was
/// opened; `day_of` maps a time to its local calendar day.
pub fn rows<'a>(
    messages: &'a [MessageView],
    divider_after: Option<u64>,
    me: Option<UserId>,
    day_of: impl Fn(i64) -> i64,
) -> Vec<Row<'a>> {
    let divider_at = divider_after.and_then(|read| {
        messages
            .iter()
            .position(|m| m.seq.is_some_and(|s| s > read) && Some(m.sender) != me)
    });
    let mut out = Vec::with_capacity(messages.len() + 4);
    let mut prev: Option<&MessageView> = None;
    for (i, m) in messages.iter().enumerate() {
        let new_day = prev.is_none_or(|p| day_of(p.ts) != day_of(m.ts));
        if new_day {
            out.push(Row::Day(m.ts));
        }
        let divider = divider_at == Some(i);
        if divider {
            out.push(Row::NewMessages);
        }
        let header = new_day
            || divider
            || prev.is_none_or(|p| p.sender != m.sender || m.ts - p.ts > GROUP_GAP_MS);
        out.push(Row::Message { message: m, header });
        prev = Some(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ipc::MessageStatus;
    use protocol::RoomId;

    fn m(seq: u64, sender: u64, ts: i64) -> MessageView {
        MessageView {
            room: RoomId(1),
            seq: Some(seq),
            client_id: format!("c{seq}"),
            sender: UserId(sender),
            sender_name: format!("u{sender}"),
            body: "x".into(),
            ts,
            edited: false,
            deleted: false,
            status: MessageStatus::Sent,
            reply_to: None,
            quote: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
            uploads: Vec::new(),
        }
    }

    fn shape(rows: &[Row]) -> String {
        rows.iter()
            .map(|r| match r {
                Row::Day(_) => "D".to_string(),
                Row::NewMessages => "N".to_string(),
                Row::Message { message, header } => {
                    format!("{}{}", message.seq.unwrap(), if *header { "h" } else { "" })
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn groups_by_sender_time_and_day() {
        let msgs = vec![
            m(1, 1, 0),
            m(2, 1, 60_000),
            m(3, 2, 120_000),
            m(4, 2, 120_000 + GROUP_GAP_MS + 1),
            m(5, 2, DAY + 10),
        ];
        let r = rows(&msgs, None, None, |ts| ts / DAY);
        assert_eq!(shape(&r), "D 1h 2 3h 4h D 5h");
    }

    #[test]
    fn the_window_is_bounded_and_moves_by_steps() {
        assert_eq!(window(10, None), 0..10, "a short room is drawn whole");
        assert_eq!(window(1000, None), 850..1000, "newest rows");
        assert_eq!(window(1000, Some(0)), 0..WINDOW);
        assert_eq!(
            window(1000, Some(990)),
            850..1000,
            "a full window at the end"
        );
        // Scrolling back from the bottom to the first row: each step moves by SHIFT.
        let mut w = window(1000, None);
        let mut steps = 0;
        while let Some(top) = shift_up(&w) {
            let next = window(1000, Some(top));
            assert!(next.len() <= WINDOW);
            assert_eq!(w.start - next.start, SHIFT.min(w.start));
            assert!(next.end > w.start + 10, "rows in view stay drawn");
            w = next;
            steps += 1;
        }
        assert_eq!((w.clone(), steps), (0..WINDOW, 17));
        // And down again, until it follows the newest rows.
        loop {
            match shift_down(&w, 1000) {
                Down::Top(top) => w = window(1000, Some(top)),
                Down::Newest => {
                    w = window(1000, None);
                    break;
                }
                Down::AtEnd => panic!("the window left the end before reaching it"),
            }
        }
        assert_eq!(w, 850..1000);
        assert_eq!(shift_down(&w, 1000), Down::AtEnd);
        assert_eq!(centred_on(500), 500 - WINDOW / 2);
        assert_eq!(centred_on(3), 0);
    }

    #[test]
    fn row_keys_survive_new_rows_around_them() {
        let msgs = vec![m(1, 1, 0), m(2, 1, DAY)];
        let r = rows(&msgs, None, None, |ts| ts / DAY);
        let keys: Vec<_> = r.iter().map(|row| row.key(|ts| ts / DAY)).collect();
        assert_eq!(
            keys,
            [Some("day-0"), Some("s1"), Some("day-1"), Some("s2")].map(|k| k.map(str::to_owned))
        );
        let mut pending = m(3, 1, DAY);
        pending.seq = None;
        let row = Row::Message {
            message: &pending,
            header: false,
        };
        assert_eq!(row.key(|_| 0), None);
    }

    #[test]
    fn divider_before_first_unread_from_others() {
        let msgs = vec![m(1, 1, 0), m(2, 9, 1), m(3, 1, 2), m(4, 1, 3)];
        // Read up to 1; seq 2 is mine, so the line goes before 3 and starts a group there.
        let r = rows(&msgs, Some(1), Some(UserId(9)), |_| 0);
        assert_eq!(shape(&r), "D 1h 2h N 3h 4");
        let r = rows(&msgs, Some(4), Some(UserId(9)), |_| 0);
        assert_eq!(shape(&r), "D 1h 2h 3h 4");
    }
}
