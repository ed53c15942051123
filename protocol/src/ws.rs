//! WebSocket frames (`GET /ws`): JSON text frames tagged by `type`, one enum per direction.
//!
//! A session: the client opens the socket and sends `hello` with its token and, when resuming,
//! the last seq it has per room. The server answers `welcome`, replays what was missed, sends
//! `ready`, then streams live events. Every room event reaches each connection exactly once,
//! in seq order.

use crate::error::ErrorCode;
use crate::event::RoomEvent;
use crate::ids::{RoomId, UserId};
use crate::limits::Limits;
use crate::rest::{NotifyLevel, Room, SendAck, User};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The last seq a client holds for a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub room: RoomId,
    pub seq: u64,
}

/// Frames from client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame: authenticate and, optionally, resume. Rooms missing from `resume` start at
    /// their newest event (nothing is replayed for them).
    Hello {
        token: String,
        #[serde(default)]
        resume: Vec<Cursor>,
        /// The `epoch` of the `welcome` under which the cursors in `resume` were taken. If the
        /// server's store has another one (it lost data since), the server closes with 4010
        /// instead of resuming: the client drops its cursors and history and connects afresh.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    /// Send a message. Answered by `ack` (or `error` with the same `room` and `id`).
    Send {
        room: RoomId,
        id: String,
        body: String,
        /// The seq of the message of the same room this one answers (`message_not_found` when
        /// there is no such message, `message_deleted` when it was deleted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Users this message mentions (`@name` in the text; the client resolves names to ids).
        /// The server keeps only those who are members of the room.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<UserId>,
        /// `@room`: notifies every member. Room owners (and server admins) only, rate limited.
        #[serde(default, skip_serializing_if = "is_false")]
        mention_room: bool,
        /// Ids of uploads to attach (`POST /api/v1/rooms/{room}/attachments`); `body` may then
        /// be empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    /// Edit an own message. Answered by `ok` (or `error`) with `ref` when given.
    Edit {
        room: RoomId,
        seq: u64,
        body: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Delete an own message. Answered by `ok` (or `error`) with `ref` when given.
    Delete {
        room: RoomId,
        seq: u64,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Add (or, with `remove`, take back) the caller's `emoji` reaction to message `seq`.
    /// Idempotent: adding a reaction the caller already has, or removing one they do not
    /// have, changes nothing and succeeds. Answered by `ok` (or `error`) with `ref` when given.
    React {
        room: RoomId,
        seq: u64,
        emoji: String,
        #[serde(default, skip_serializing_if = "is_false")]
        remove: bool,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// "I am typing in this room." Repeat every few seconds while typing; it expires by itself.
    Typing { room: RoomId },
    /// Move the read marker forward to `seq` (never backwards). Synced to the user's other devices.
    Read { room: RoomId, seq: u64 },
    /// Page history over the socket. Answered by `history` with the same `ref`.
    History {
        room: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Keep-alive / latency probe. Answered by `pong` with the same `ref`.
    Ping {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

/// A `send` frame read in place: the same fields as [`ClientFrame::Send`], with the id and body
/// borrowed from the frame's text (unless they hold JSON escapes), and without the buffering of
/// every field that reading the tagged [`ClientFrame`] takes. The server's hot path: it tries
/// this first and reads the frame as a `ClientFrame` when this says `None`, so every error (and
/// every frame this does not take) gets the one reading of `ClientFrame`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SendFrame<'a> {
    /// `"send"` (checked by [`SendFrame::parse`]); a second `type` key is a duplicate field.
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    pub room: RoomId,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
    #[serde(default)]
    pub reply_to: Option<u64>,
    #[serde(default)]
    pub mentions: Vec<UserId>,
    #[serde(default)]
    pub mention_room: bool,
    #[serde(default)]
    pub attachments: Vec<String>,
}

impl<'a> SendFrame<'a> {
    /// The same frame as [`ClientFrame`] reads it (owned): what the in-place reading must
    /// agree with (tests and the fuzz target compare the two).
    pub fn to_client_frame(&self) -> ClientFrame {
        ClientFrame::Send {
            room: self.room,
            id: self.id.clone().into_owned(),
            body: self.body.clone().into_owned(),
            reply_to: self.reply_to,
            mentions: self.mentions.clone(),
            mention_room: self.mention_room,
            attachments: self.attachments.clone(),
        }
    }

    /// `Some` when `text` is a well-formed `send` frame that starts with its type, as every
    /// client writes it; `None` for anything else (another type, a malformed frame), which the
    /// caller reads as a [`ClientFrame`]. Where it is `Some`, reading `text` as a
    /// `ClientFrame` gives `ClientFrame::Send` with the same fields.
    pub fn parse(text: &'a str) -> Option<Self> {
        if !text.starts_with(r#"{"type":"send","#) {
            return None;
        }
        serde_json::from_str::<SendFrame<'a>>(text)
            .ok()
            .filter(|frame| frame.kind == "send")
    }
}

/// Frames from server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication succeeded.
    Welcome {
        protocol: u32,
        user: User,
        session_id: String,
        /// The user's rooms, with read markers and unread counts.
        rooms: Vec<Room>,
        limits: Limits,
        /// Identifies the data set the seqs in this session belong to. It changes when the
        /// server's store loses data (see close code 4010); clients send it back in `hello`
        /// with their cursors.
        #[serde(default)]
        epoch: String,
    },
    /// Resume replay is complete: from here on, events are live.
    Ready,
    /// A room event (message, edit, delete, membership).
    Event(RoomEvent),
    /// The server will not replay events `after+1 ..= until` of `room` (too many, or no longer
    /// kept). Page them with `history` if needed; live events continue after `until`.
    Gap {
        room: RoomId,
        after: u64,
        until: u64,
        reason: GapReason,
    },
    /// A `send` was accepted (or was a duplicate of an accepted one).
    Ack(SendAck),
    /// An `edit` or `delete` with a `ref` was applied.
    Ok {
        #[serde(rename = "ref")]
        reference: String,
    },
    /// Reply to `history`.
    History {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        room: RoomId,
        events: Vec<RoomEvent>,
        has_more: bool,
        first_seq: u64,
        last_seq: u64,
    },
    /// A user sharing a room with you came online or went offline.
    Presence {
        user: UserId,
        online: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen: Option<i64>,
    },
    /// Someone is typing in a room. Hide it after `ttl_ms` unless refreshed.
    Typing {
        room: RoomId,
        user: UserId,
        username: String,
        ttl_ms: u64,
    },
    /// Your read marker moved (from this or another of your devices).
    ReadMarker { room: RoomId, seq: u64 },
    /// Your notification level for a room changed (from this or another of your devices).
    NotifyLevel { room: RoomId, level: NotifyLevel },
    /// A user sharing a room with you (or you) changed their profile. `display_name` absent:
    /// they removed it.
    UserUpdated {
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
    },
    /// Reply to `ping`.
    Pong {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// A frame failed. The socket stays open unless a close frame follows.
    Error {
        code: ErrorCode,
        message: String,
        /// The `ref` of the failed request, if it had one.
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// For a failed `send`: its room and client message id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a `gap` frame was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// More events were missed than the server replays (`limits.max_replay`).
    TooLarge,
    /// The events fell out of the room's history retention.
    Truncated,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventBody;

    #[test]
    fn event_frame_is_flat() {
        let frame = ServerFrame::Event(RoomEvent {
            room: RoomId(7),
            seq: 3,
            ts: 1_700_000_000_000,
            event: EventBody::Delete {
                target: 2,
                sender: UserId(1),
            },
        });
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"type":"event","room":7,"seq":3,"ts":1700000000000,"event":{"kind":"delete","target":2,"sender":1}}"#
        );
        assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
    }

    /// What `SendFrame::parse` must agree with: the `ClientFrame` reading of the same text.
    fn send_by_client_frame(text: &str) -> Option<ClientFrame> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame @ ClientFrame::Send { .. }) => Some(frame),
            _ => None,
        }
    }

    #[test]
    fn send_frame_reads_what_client_frame_reads() {
        let taken = [
            r#"{"type":"send","room":3,"id":"a-1","body":"hi"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"tab\there \"q\" \u00e9 \ud83d\ude00"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"","attachments":["u1","u2"]}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"x","reply_to":7,"mentions":[1,2],"mention_room":true}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"x","reply_to":null,"extra":{"a":[1]}}"#,
            r#"{"type":"send","body":"x","id":"a-1","room":3} "#,
        ];
        for text in taken {
            let fast = SendFrame::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                send_by_client_frame(text).unwrap(),
                fast.to_client_frame(),
                "{text}"
            );
        }
        // Borrowed from the frame when there is nothing to unescape.
        let plain = SendFrame::parse(taken[0]).unwrap();
        assert!(matches!(
            (&plain.id, &plain.body),
            (Cow::Borrowed(_), Cow::Borrowed(_))
        ));
        // Left to `ClientFrame` (which reads or refuses them): other types, other layouts,
        // malformed or incomplete frames, a second type.
        let left = [
            r#"{"type":"edit","room":3,"seq":1,"body":"x"}"#,
            r#"{ "type":"send","room":3,"id":"a-1","body":"hi"}"#,
            r#"{"room":3,"type":"send","id":"a-1","body":"hi"}"#,
            r#"{"type":"send","room":3,"id":"a-1"}"#,
            r#"{"type":"send","room":-3,"id":"a-1","body":"hi"}"#,
            r#"{"type":"send","room":3.5,"id":"a-1","body":"hi"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi","type":"edit"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi","type":"send"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi","body":"again"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi"}x"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi""#,
            r#"{"type":"send","room":3,"id":7,"body":"hi"}"#,
            r#"{"type":"send","room":3,"id":"a-1","body":"hi","mentions":null}"#,
        ];
        for text in left {
            assert_eq!(SendFrame::parse(text), None, "{text}");
        }
        // Where the fast reading refuses, `ClientFrame` refuses too, unless the frame is not
        // laid out with its type first.
        for text in &left[3..] {
            assert_eq!(send_by_client_frame(text), None, "{text}");
        }
    }

    #[test]
    fn hello_resume_defaults_to_empty() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"hello","token":"t"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Hello {
                token: "t".into(),
                resume: vec![],
                epoch: None,
            }
        );
    }
}
