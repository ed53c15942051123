//! The room event stream: everything that happens in a room is an event with a per-room `seq`.
//!
//! Messages, edits, deletes and membership changes all take the next `seq` of their room, so a
//! client that knows "I have everything up to seq N" can ask for exactly what it missed.
//! History keeps the events; a stored `message` also reflects later edits and deletes
//! (`edited_ts`, `deleted`), so paging back shows current text without replaying edits.

use crate::ids::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// One event of a room's stream, as stored in history and as sent on the socket
/// (inside a `{"type":"event", ...}` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomEvent {
    pub room: RoomId,
    /// Per-room sequence number: 1, 2, 3, ... with no holes.
    pub seq: u64,
    /// Server time when the event was accepted, milliseconds since the Unix epoch.
    pub ts: i64,
    pub event: EventBody,
}

/// What happened. Tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A new message.
    Message {
        /// The sender's client message id (idempotency key).
        id: String,
        sender: UserId,
        sender_name: String,
        /// Plain text. Empty when `deleted`.
        #[serde(default)]
        body: String,
        /// Set when the message was edited (history shows the latest text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_ts: Option<i64>,
        /// Set when the author deleted the message; `body` is then empty.
        #[serde(default, skip_serializing_if = "is_false")]
        deleted: bool,
        /// The seq of the message (same room) this one replies to. It stays when that message
        /// is deleted later: clients then show "deleted message" (its stored `message` has
        /// `deleted: true`, and a `delete` event with `target` = this seq went by live).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Current reactions, in the order each emoji was first used. Kept up to date in
        /// history (like `edited_ts`), so a page shows the final state; live clients follow
        /// `reaction_added` / `reaction_removed`. Empty (absent) when deleted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<Reaction>,
        /// Members of the room this message mentions (checked by the server when it was sent).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<UserId>,
        /// `@room`: the message mentions every member.
        #[serde(default, skip_serializing_if = "is_false")]
        mention_room: bool,
        /// Files attached when it was sent (see [`crate::attachment`]). Empty (absent) when
        /// deleted: the files are deleted with the message.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<crate::Attachment>,
    },
    /// The author changed the text of message `target`.
    Edit {
        target: u64,
        sender: UserId,
        body: String,
    },
    /// The author deleted message `target`.
    Delete { target: u64, sender: UserId },
    /// A user became a member (created the room, joined, was invited).
    MemberJoined {
        user: UserId,
        username: String,
        role: Role,
        /// Who added them, when it was someone else (invite).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
    },
    /// A user stopped being a member (left, or was removed by the owner).
    MemberLeft {
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
        /// The removal is a ban (`by` banned them): they cannot rejoin until unbanned.
        #[serde(default, skip_serializing_if = "is_false")]
        banned: bool,
    },
    /// Ownership moved to another member (the owner left).
    OwnerChanged { user: UserId },
    /// `user` reacted to message `target` with `emoji`. Only sent when it changed something
    /// (a second add of the same reaction, from any device, appends nothing).
    ReactionAdded {
        target: u64,
        user: UserId,
        emoji: String,
    },
    /// `user` took back their `emoji` reaction to message `target`.
    ReactionRemoved {
        target: u64,
        user: UserId,
        emoji: String,
    },
    /// The owner changed the room's name and/or topic (issue 13). Only what changed is
    /// present; an empty `topic` clears it. Kept in history like any event, so a client that
    /// was away replays it on resume.
    RoomUpdated {
        by: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// The owner deleted the room: the last event of its stream. The server has dropped its
    /// history and members; clients drop the room and what they cached of it. A client that
    /// was away never sees this event: the room is simply missing from its next `welcome`.
    RoomDeleted { by: UserId },
    /// An event kind this version of the crate does not know (sent by a newer server).
    /// Clients skip it; its seq still counts as delivered.
    #[serde(other)]
    Unknown,
}

/// The `message` event of a new message, borrowing its text: what [`EventBody::Message`]
/// serializes to while nothing is edited, deleted or reacted yet, written without first
/// copying the id, the sender's name and the body into an owned `EventBody` (the server builds
/// one per send). Serialize-only; readers get an `EventBody`. The fields are those of
/// `EventBody::Message` in the same order, and a test holds the two to the same bytes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename = "message")]
pub struct SentMessage<'a> {
    pub id: &'a str,
    pub sender: UserId,
    pub sender_name: &'a str,
    pub body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    #[serde(skip_serializing_if = "<[UserId]>::is_empty")]
    pub mentions: &'a [UserId],
    #[serde(skip_serializing_if = "is_false")]
    pub mention_room: bool,
    #[serde(skip_serializing_if = "<[crate::Attachment]>::is_empty")]
    pub attachments: &'a [crate::Attachment],
}

impl SentMessage<'_> {
    /// The same event, owned.
    pub fn to_event(&self) -> EventBody {
        EventBody::Message {
            id: self.id.to_owned(),
            sender: self.sender,
            sender_name: self.sender_name.to_owned(),
            body: self.body.to_owned(),
            edited_ts: None,
            deleted: false,
            reply_to: self.reply_to,
            reactions: Vec::new(),
            mentions: self.mentions.to_vec(),
            mention_room: self.mention_room,
            attachments: self.attachments.to_vec(),
        }
    }

    /// Its JSON, written once into a buffer sized for it (no growing on the way).
    pub fn to_json(&self) -> serde_json::Result<String> {
        // The fixed part (keys, the kind, numbers) is under 160 bytes; each mention and
        // attachment adds its own.
        let capacity = 160
            + self.id.len()
            + self.sender_name.len()
            + self.body.len()
            + 24 * self.mentions.len()
            + 256 * self.attachments.len();
        let mut json = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut json, self)?;
        // serde_json writes UTF-8; the check is one fast pass over mostly ASCII.
        String::from_utf8(json).map_err(serde::ser::Error::custom)
    }
}

/// One emoji on a message and who reacted with it (the count is `users.len()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    /// The emoji, in the form [`crate::validate::emoji`] returns (fully qualified).
    pub emoji: String,
    /// Who reacted, in the order they did.
    pub users: Vec<UserId>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Applies one reaction change to a message's reactions as a set operation (protocol §1.8):
/// adds `user` to `emoji`'s list when absent (a new emoji goes last), or removes them and drops
/// an emoji nobody is left on. Returns whether anything changed, so replayed events are no-ops.
pub fn apply_reaction(reactions: &mut Vec<Reaction>, user: UserId, emoji: &str, add: bool) -> bool {
    let at = reactions.iter().position(|r| r.emoji == emoji);
    match (at, add) {
        (Some(i), true) => {
            if reactions[i].users.contains(&user) {
                return false;
            }
            reactions[i].users.push(user);
            true
        }
        (None, true) => {
            reactions.push(Reaction {
                emoji: emoji.to_owned(),
                users: vec![user],
            });
            true
        }
        (Some(i), false) => {
            let Some(pos) = reactions[i].users.iter().position(|u| *u == user) else {
                return false;
            };
            reactions[i].users.remove(pos);
            if reactions[i].users.is_empty() {
                reactions.remove(i);
            }
            true
        }
        (None, false) => false,
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Member,
}

impl RoomEvent {
    /// Whether `user` wrote this message or this is `user` joining: everything before it
    /// counts as read for them.
    pub fn is_own_activity(&self, user: UserId) -> bool {
        match &self.event {
            EventBody::Message { sender, .. } => *sender == user,
            EventBody::MemberJoined { user: joined, .. } => *joined == user,
            _ => false,
        }
    }

    /// Whether this event is a message that counts toward `user`'s unread count.
    pub fn is_unread_for(&self, user: UserId) -> bool {
        matches!(&self.event, EventBody::Message { sender, deleted: false, .. } if *sender != user)
    }

    /// Whether this event is an unread message (see [`RoomEvent::is_unread_for`]) that
    /// mentions `user`, by id or with `@room`.
    pub fn mentions(&self, user: UserId) -> bool {
        match &self.event {
            EventBody::Message {
                mentions,
                mention_room,
                ..
            } => self.is_unread_for(user) && (*mention_room || mentions.contains(&user)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_message_writes_what_the_owned_event_writes() {
        let attachment = crate::Attachment {
            id: "a1".into(),
            name: "cat \"1\".png".into(),
            size: 3,
            content_type: "image/png".into(),
            width: Some(2),
            height: None,
            thumbnail: true,
        };
        let mentions = [UserId(4), UserId(5)];
        let attachments = [attachment];
        let plain = SentMessage {
            id: "0b7c1e2a-1f4e",
            sender: UserId(7),
            sender_name: "zoë",
            body: "hi \"there\"\n\t\u{202E}\\ 😀",
            reply_to: None,
            mentions: &[],
            mention_room: false,
            attachments: &[],
        };
        let full = SentMessage {
            reply_to: Some(3),
            mentions: &mentions,
            mention_room: true,
            attachments: &attachments,
            ..plain
        };
        let long = "x".repeat(5000);
        let long = SentMessage {
            body: &long,
            ..plain
        };
        for sent in [plain, full, long] {
            let json = sent.to_json().unwrap();
            assert_eq!(json, serde_json::to_string(&sent.to_event()).unwrap());
            let back: EventBody = serde_json::from_str(&json).unwrap();
            assert_eq!(back, sent.to_event());
        }
        assert_eq!(
            plain.to_json().unwrap(),
            concat!(
                r#"{"kind":"message","id":"0b7c1e2a-1f4e","sender":7,"sender_name":"zoë","#,
                r#""body":"hi \"there\"\n\t"#,
                "\u{202E}",
                r#"\\ 😀"}"#
            )
        );
    }

    #[test]
    fn reaction_changes_are_set_operations() {
        let mut r = Vec::new();
        assert!(apply_reaction(&mut r, UserId(2), "👍", true));
        assert!(
            !apply_reaction(&mut r, UserId(2), "👍", true),
            "a second add"
        );
        assert!(apply_reaction(&mut r, UserId(1), "🎉", true));
        assert!(apply_reaction(&mut r, UserId(1), "👍", true));
        assert_eq!(r[0].users, [UserId(2), UserId(1)]);
        assert!(
            !apply_reaction(&mut r, UserId(3), "👍", false),
            "not theirs"
        );
        assert!(apply_reaction(&mut r, UserId(1), "🎉", false));
        assert_eq!(r.len(), 1, "an emoji nobody is left on goes");
        assert!(!apply_reaction(&mut r, UserId(1), "🎉", false));
    }
}
