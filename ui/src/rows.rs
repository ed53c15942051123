//! Turns a room's messages into the rows the message list draws: day separators, the
//! "new messages" line, and messages with or without a sender header (consecutive messages
//! from one sender within a few minutes form a group).

use protocol::ipc::MessageView;
use protocol::UserId;

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
    fn divider_before_first_unread_from_others() {
        let msgs = vec![m(1, 1, 0), m(2, 9, 1), m(3, 1, 2), m(4, 1, 3)];
        // Read up to 1; seq 2 is mine, so the line goes before 3 and starts a group there.
        let r = rows(&msgs, Some(1), Some(UserId(9)), |_| 0);
        assert_eq!(shape(&r), "D 1h 2h N 3h 4");
        let r = rows(&msgs, Some(4), Some(UserId(9)), |_| 0);
        assert_eq!(shape(&r), "D 1h 2h 3h 4");
    }
}
