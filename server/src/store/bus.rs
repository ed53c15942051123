//! The bus format: what one node publishes and every node receives.
//!
//! A bus message is one routing line, a newline, then the frame to send to clients exactly as
//! it goes on the wire (serialized once, forwarded as is):
//!
//! - `R <room> <seq>` room event; ` J <user>` / ` L <user>` appended for member joined / left,
//!   ` D` for the room's deletion (its last event: every connection stops following the room)
//! - `T <room> <user>` typing: to the room's connections except the typer's
//! - `U <user>` to all connections of a user (read markers)
//! - `P <user> <room>,<room>,...` presence: to connections in any of those rooms
//! - `S <user> <session>` session revoked: close its sockets (no frame)
//!
//! On Redis a message travels on its partition's sharded channel (`store/redis/partition.rs`):
//! `R` and `T` on the room's, `U`, `P` and `S` on the user's. Only a room's own messages need
//! an order, and they share one channel.
//!
//! A store hands what it receives to this node's [`Sink`] (the hub) through its [`Feed`], on
//! the store's own task: the Redis subscriber connection's reader, or the embedded store's
//! append. There is no channel and no task in between: each message is routed to the
//! connections' queues where it is read.

use protocol::{RoomId, UserId};
use std::sync::{Arc, OnceLock};

/// This node's receiver of the bus (the hub). Called in publish order on the store's task,
/// so it must not block or await.
pub trait Sink: Send + Sync {
    /// One bus message (the format above), handed over whole: the frame is its tail.
    fn message(&self, msg: String);
    /// The subscription was lost and is back: events may have been missed, check every room.
    fn resync(&self);
}

/// A store's end of the bus: hands every message to the [`Sink`] attached at start. Messages
/// before that are dropped: no connection is registered yet, so they concern nobody here.
#[derive(Clone, Default)]
pub struct Feed(Arc<OnceLock<Arc<dyn Sink>>>);

impl Feed {
    /// Attaches the receiver; false if one already is.
    pub fn attach(&self, sink: Arc<dyn Sink>) -> bool {
        self.0.set(sink).is_ok()
    }

    pub fn message(&self, msg: String) {
        if let Some(sink) = self.0.get() {
            sink.message(msg);
        }
    }

    pub fn resync(&self) {
        if let Some(sink) = self.0.get() {
            sink.resync();
        }
    }
}

/// Where a bus message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Room {
        room: RoomId,
        seq: u64,
        member: Option<MemberRoute>,
    },
    Typing {
        room: RoomId,
        user: UserId,
    },
    User {
        user: UserId,
    },
    Presence {
        user: UserId,
        rooms: Vec<RoomId>,
    },
    Revoke {
        user: UserId,
        session: String,
    },
}

/// A membership change carried by a room event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRoute {
    Joined(UserId),
    Left(UserId),
    /// The room was deleted: everyone leaves it.
    RoomDeleted,
}

/// Splits a bus message into its route and frame. `None` for anything malformed.
pub fn parse(msg: &str) -> Option<(Route, &str)> {
    // Almost every message is a room event without a membership change: read bytewise.
    if let Some((room, seq, rest)) = room_head(msg) {
        match rest.as_bytes().first() {
            None => return Some((room_route(room, seq), "")),
            Some(b'\n') => return Some((room_route(room, seq), rest.get(1..)?)),
            // A membership suffix, or something malformed: the general reading decides.
            Some(_) => {}
        }
    }
    parse_general(msg)
}

/// Room and seq of a room event, for the store's lost-write check; `None` for other messages
/// (without reading them further) and for anything malformed.
pub fn room_seq(msg: &str) -> Option<(u64, u64)> {
    if !msg.starts_with("R ") {
        return None;
    }
    match parse(msg)?.0 {
        Route::Room { room, seq, .. } => Some((room.0, seq)),
        _ => None,
    }
}

fn room_route(room: u64, seq: u64) -> Route {
    Route::Room {
        room: RoomId(room),
        seq,
        member: None,
    }
}

/// `R <room> <seq>` at the start of `msg`, read byte by byte, and what follows it; `None`
/// when the message does not start so in canonical form (digits only, no overflow): the
/// general reading ([`parse_general`]) takes it then. `str::split` searched for each separator
/// with memchr, ~120 instructions a word, and the bus is read once per event per node.
fn room_head(msg: &str) -> Option<(u64, u64, &str)> {
    let rest = msg.strip_prefix("R ")?;
    let (room, rest) = leading_number(rest)?;
    let (seq, rest) = leading_number(rest.strip_prefix(' ')?)?;
    Some((room, seq, rest))
}

/// The decimal number that `s` starts with (at least one digit, at most `u64::MAX`) and the
/// rest.
fn leading_number(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for b in &s.as_bytes()[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((n, s.get(digits..)?))
}

/// [`parse`] of any message, word by word.
fn parse_general(msg: &str) -> Option<(Route, &str)> {
    let (head, frame) = msg.split_once('\n').unwrap_or((msg, ""));
    let mut parts = head.split(' ');
    let kind = parts.next()?;
    let mut num = || parts.next()?.parse::<u64>().ok();
    let route = match kind {
        "R" => {
            let room = RoomId(num()?);
            let seq = num()?;
            let member = match parts.next() {
                None => None,
                Some("J") => Some(MemberRoute::Joined(UserId(parts.next()?.parse().ok()?))),
                Some("L") => Some(MemberRoute::Left(UserId(parts.next()?.parse().ok()?))),
                Some("D") => Some(MemberRoute::RoomDeleted),
                Some(_) => return None,
            };
            Route::Room { room, seq, member }
        }
        "T" => Route::Typing {
            room: RoomId(num()?),
            user: UserId(num()?),
        },
        "U" => Route::User {
            user: UserId(num()?),
        },
        "P" => {
            let user = UserId(num()?);
            let rooms = match parts.next() {
                None | Some("") => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(|r| r.parse().map(RoomId))
                    .collect::<Result<_, _>>()
                    .ok()?,
            };
            Route::Presence { user, rooms }
        }
        "S" => Route::Revoke {
            user: UserId(num()?),
            session: parts.next()?.to_owned(),
        },
        _ => return None,
    };
    Some((route, frame))
}

/// The routing suffix of a membership event (`" J 12"`), empty for other events.
pub fn member_suffix(member: Option<MemberRoute>) -> String {
    match member {
        None => String::new(),
        Some(MemberRoute::Joined(u)) => format!(" J {u}"),
        Some(MemberRoute::Left(u)) => format!(" L {u}"),
        Some(MemberRoute::RoomDeleted) => " D".to_owned(),
    }
}

/// The `event` frame of a room event, built around an already serialized `event` object.
/// The Redis scripts build the same string (see `redis.rs`); keep them in step.
pub fn event_frame(room: RoomId, seq: u64, ts: i64, event_json: &str) -> String {
    format!(r#"{{"type":"event","room":{room},"seq":{seq},"ts":{ts},"event":{event_json}}}"#)
}

/// A complete room-event bus message.
pub fn room_msg(room: RoomId, seq: u64, member: Option<MemberRoute>, frame: &str) -> String {
    format!("R {room} {seq}{}\n{frame}", member_suffix(member))
}

/// A typing bus message.
pub fn typing_msg(room: RoomId, user: UserId, frame: &str) -> String {
    format!("T {room} {user}\n{frame}")
}

/// A bus message to all of a user's connections.
pub fn user_msg(user: UserId, frame: &str) -> String {
    format!("U {user}\n{frame}")
}

/// A presence bus message.
pub fn presence_msg(user: UserId, rooms: &[RoomId], frame: &str) -> String {
    let rooms: Vec<String> = rooms.iter().map(ToString::to_string).collect();
    format!("P {user} {}\n{frame}", rooms.join(","))
}

/// A session-revoked bus message.
pub fn revoke_msg(user: UserId, session: &str) -> String {
    format!("S {user} {session}\n")
}

/// The `presence` frame.
pub fn presence_frame(user: UserId, online: bool, last_seen: Option<i64>) -> String {
    let frame = protocol::ServerFrame::Presence {
        user,
        online,
        last_seen,
    };
    serde_json::to_string(&frame).unwrap_or_default()
}

/// The `notify_level` frame.
pub fn notify_frame(room: RoomId, level: protocol::rest::NotifyLevel) -> String {
    serde_json::to_string(&protocol::ServerFrame::NotifyLevel { room, level }).unwrap_or_default()
}

/// The `read_marker` frame.
pub fn read_frame(room: RoomId, seq: u64) -> String {
    serde_json::to_string(&protocol::ServerFrame::ReadMarker { room, seq }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let frame = event_frame(RoomId(3), 9, 5, r#"{"kind":"member_left","user":4}"#);
        let msg = room_msg(RoomId(3), 9, Some(MemberRoute::Left(UserId(4))), &frame);
        let (route, body) = parse(&msg).unwrap();
        assert_eq!(
            route,
            Route::Room {
                room: RoomId(3),
                seq: 9,
                member: Some(MemberRoute::Left(UserId(4)))
            }
        );
        assert_eq!(body, frame);
        assert_eq!(
            parse(&room_msg(
                RoomId(3),
                10,
                Some(MemberRoute::RoomDeleted),
                "{}"
            ))
            .unwrap()
            .0,
            Route::Room {
                room: RoomId(3),
                seq: 10,
                member: Some(MemberRoute::RoomDeleted)
            }
        );
        let parsed: protocol::ServerFrame = serde_json::from_str(body).unwrap();
        assert!(matches!(parsed, protocol::ServerFrame::Event(e) if e.seq == 9));

        let msg = presence_msg(UserId(1), &[RoomId(2), RoomId(5)], "{}");
        assert_eq!(
            parse(&msg).unwrap().0,
            Route::Presence {
                user: UserId(1),
                rooms: vec![RoomId(2), RoomId(5)]
            }
        );
        assert_eq!(
            parse(&revoke_msg(UserId(1), "abc")).unwrap().0,
            Route::Revoke {
                user: UserId(1),
                session: "abc".into()
            }
        );
    }

    /// The bytewise reading of a room event's head agrees with the general one, word for word,
    /// on canonical and odd heads alike.
    #[test]
    fn the_fast_room_reading_agrees_with_the_general_one() {
        let frame = "{\"type\":\"event\"}\nsecond line";
        for head in [
            "R 1 2",
            "R 0 0",
            "R 18446744073709551615 18446744073709551615",
            "R 18446744073709551616 1",
            "R 1 18446744073709551616",
            "R 12 345 J 7",
            "R 12 345 L 7",
            "R 12 345 D",
            "R 12 345 Q",
            "R 12 345 ",
            "R 12 345x",
            "R 12 x",
            "R 12",
            "R 12 ",
            "R  12 3",
            "R +12 3",
            "R 12 +3",
            "R -1 3",
            "R",
            "R ",
            "T 1 2",
            "U 1",
        ] {
            for msg in [head.to_owned(), format!("{head}\n{frame}")] {
                assert_eq!(parse(&msg), parse_general(&msg), "{msg:?}");
                let expected = match parse_general(&msg) {
                    Some((Route::Room { room, seq, .. }, _)) => Some((room.0, seq)),
                    _ => None,
                };
                assert_eq!(room_seq(&msg), expected, "{msg:?}");
            }
        }
        let msg = format!("R 3 9\n{frame}");
        assert_eq!(parse(&msg).map(|(_, f)| f), Some(frame));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "X 1", "R x 1", "R 1", "R 1 2 Q 3", "P a"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
