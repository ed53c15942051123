//! The export format: a [`DataSet`] as JSON lines, one record per line, each with a `type`.
//!
//! ```text
//! {"type":"chat-export","version":1,"epoch":"…","last_user":3,"last_room":2}   always first
//! {"type":"user",…}      by id                      {"type":"session",…}  by (user, id)
//! {"type":"room",…}      by id                      {"type":"member",…}   by (room, user)
//! {"type":"event",…}     by (room, seq): the stored frame byte for byte (edits and deletes
//!                        are already applied to the message they change, and follow as events)
//! {"type":"read",…}      by (user, room)            {"type":"invite",…}   by code hash
//! {"type":"dedupe",…}    by (room, sender, client id)
//! {"type":"ban",…}       by (room, user)            {"type":"block",…}    by (user, blocked)
//! {"type":"display_name",…} by user                 {"type":"notify",…}   by (user, room)
//! ```
//!
//! Added after version 1 was first written, without a version change (older files simply have
//! none of them): `ban`, `block`, `display_name`, `notify` lines and a room's `topic`.
//!
//! The same data set encodes to the same bytes, whichever backend it came from.

use crate::store::dump::{DataSet, DedupeRecord, RoomRecord};
use crate::store::{InviteRecord, SessionRecord, UserRecord};
use protocol::event::Role;
use protocol::rest::{NotifyLevel, RoomKind, Visibility};
use protocol::{RoomEvent, RoomId, UserId};
use serde::{Deserialize, Serialize};

/// The `type` of the first line, and the format version this server writes and reads.
pub const FORMAT: &str = "chat-export";
pub const VERSION: u32 = 1;

/// A file that is not an export this server can load.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BackupError {
    pub line: usize,
    pub message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    #[serde(rename = "chat-export")]
    Header {
        version: u32,
        epoch: String,
        last_user: u64,
        last_room: u64,
    },
    User {
        id: UserId,
        username: String,
        password_hash: String,
        created_ts: i64,
        admin: bool,
        disabled: bool,
    },
    Session {
        user: UserId,
        id: String,
        token_hash: String,
        device: Option<String>,
        created_ts: i64,
        last_used_ts: i64,
        expires_ts: i64,
    },
    Room {
        id: RoomId,
        name: String,
        kind: RoomKind,
        visibility: Visibility,
        owner: Option<UserId>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        topic: String,
        last_seq: u64,
        last_ts: i64,
        pair: Option<(UserId, UserId)>,
    },
    Member {
        room: RoomId,
        user: UserId,
        role: Role,
    },
    Read {
        user: UserId,
        room: RoomId,
        seq: u64,
    },
    Invite {
        code_hash: String,
        uses_left: u32,
        expires_ts: i64,
        created_by: Option<UserId>,
        created_ts: i64,
    },
    Dedupe {
        room: RoomId,
        sender: UserId,
        client_id: String,
        seq: u64,
        ts: i64,
        expires_ts: i64,
    },
    Ban {
        room: RoomId,
        user: UserId,
    },
    Block {
        user: UserId,
        blocked: UserId,
    },
    DisplayName {
        user: UserId,
        name: String,
    },
    Notify {
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
    },
    /// An attachment's upload record (the file itself is not in the export).
    Upload {
        id: String,
        owner: UserId,
        room: RoomId,
        name: String,
        size: u64,
        content_type: String,
        width: Option<u32>,
        height: Option<u32>,
        thumbnail: bool,
        created_ts: i64,
        seq: Option<u64>,
    },
}

/// Only the tag of a line, to recognize events (kept as raw text).
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

fn push(out: &mut String, line: &Line) {
    // Serializing these plain structs cannot fail.
    if let Ok(text) = serde_json::to_string(line) {
        out.push_str(&text);
        out.push('\n');
    }
}

/// The data set as JSON lines.
pub fn encode(data: &DataSet) -> String {
    let mut out = String::new();
    push(
        &mut out,
        &Line::Header {
            version: VERSION,
            epoch: data.epoch.clone(),
            last_user: data.last_user,
            last_room: data.last_room,
        },
    );
    for u in &data.users {
        push(
            &mut out,
            &Line::User {
                id: u.id,
                username: u.username.clone(),
                password_hash: u.password_hash.clone(),
                created_ts: u.created_ts,
                admin: u.admin,
                disabled: u.disabled,
            },
        );
    }
    for (s, expires_ts) in &data.sessions {
        push(
            &mut out,
            &Line::Session {
                user: s.user,
                id: s.id.clone(),
                token_hash: s.token_hash.clone(),
                device: s.device.clone(),
                created_ts: s.created_ts,
                last_used_ts: s.last_used_ts,
                expires_ts: *expires_ts,
            },
        );
    }
    for r in &data.rooms {
        push(
            &mut out,
            &Line::Room {
                id: r.id,
                name: r.name.clone(),
                kind: r.kind,
                visibility: r.visibility,
                owner: r.owner,
                topic: r.topic.clone(),
                last_seq: r.last_seq,
                last_ts: r.last_ts,
                pair: r.pair,
            },
        );
    }
    for (room, user, role) in &data.members {
        push(
            &mut out,
            &Line::Member {
                room: *room,
                user: *user,
                role: *role,
            },
        );
    }
    for frame in &data.events {
        out.push_str(frame);
        out.push('\n');
    }
    for (user, room, seq) in &data.reads {
        push(
            &mut out,
            &Line::Read {
                user: *user,
                room: *room,
                seq: *seq,
            },
        );
    }
    for i in &data.invites {
        push(
            &mut out,
            &Line::Invite {
                code_hash: i.code_hash.clone(),
                uses_left: i.uses_left,
                expires_ts: i.expires_ts,
                created_by: i.created_by,
                created_ts: i.created_ts,
            },
        );
    }
    for d in &data.dedupe {
        push(
            &mut out,
            &Line::Dedupe {
                room: d.room,
                sender: d.sender,
                client_id: d.client_id.clone(),
                seq: d.seq,
                ts: d.ts,
                expires_ts: d.expires_ts,
            },
        );
    }
    for (room, user) in &data.bans {
        push(
            &mut out,
            &Line::Ban {
                room: *room,
                user: *user,
            },
        );
    }
    for (user, blocked) in &data.blocks {
        push(
            &mut out,
            &Line::Block {
                user: *user,
                blocked: *blocked,
            },
        );
    }
    for (user, name) in &data.display_names {
        push(
            &mut out,
            &Line::DisplayName {
                user: *user,
                name: name.clone(),
            },
        );
    }
    for (user, room, level) in &data.notify {
        push(
            &mut out,
            &Line::Notify {
                user: *user,
                room: *room,
                level: *level,
            },
        );
    }
    for u in &data.uploads {
        push(
            &mut out,
            &Line::Upload {
                id: u.id.clone(),
                owner: u.owner,
                room: u.room,
                name: u.name.clone(),
                size: u.size,
                content_type: u.content_type.clone(),
                width: u.width,
                height: u.height,
                thumbnail: u.thumbnail,
                created_ts: u.created_ts,
                seq: u.seq,
            },
        );
    }
    out
}

/// Reads an export. Checks the header, every line's shape, and that members, events and bans
/// name rooms of the file.
pub fn decode(text: &str) -> Result<DataSet, BackupError> {
    let mut data = DataSet::default();
    let mut rooms = std::collections::HashSet::new();
    let mut header = false;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let err = |message: String| BackupError { line, message };
        if raw.trim().is_empty() {
            continue;
        }
        let tag: Tag = serde_json::from_str(raw).map_err(|e| err(e.to_string()))?;
        if !header && tag.kind != FORMAT {
            return Err(err(format!(
                "not a chat-server export (the first line must have type {FORMAT:?})"
            )));
        }
        if tag.kind == "event" {
            let event: RoomEvent = serde_json::from_str(raw).map_err(|e| err(e.to_string()))?;
            if !rooms.contains(&event.room) {
                return Err(err(format!("event of room {} before its room", event.room)));
            }
            data.events.push(raw.to_owned());
            continue;
        }
        let parsed: Line = serde_json::from_str(raw).map_err(|e| err(e.to_string()))?;
        match parsed {
            Line::Header {
                version,
                epoch,
                last_user,
                last_room,
            } => {
                if header {
                    return Err(err("a second header".into()));
                }
                if version != VERSION {
                    return Err(err(format!(
                        "format version {version}; this server reads version {VERSION}"
                    )));
                }
                header = true;
                data.epoch = epoch;
                data.last_user = last_user;
                data.last_room = last_room;
            }
            Line::User {
                id,
                username,
                password_hash,
                created_ts,
                admin,
                disabled,
            } => {
                if id.0 == 0 || id.0 > data.last_user {
                    return Err(err(format!("user id {id} above last_user")));
                }
                data.users.push(UserRecord {
                    id,
                    username,
                    password_hash,
                    created_ts,
                    admin,
                    disabled,
                });
            }
            Line::Session {
                user,
                id,
                token_hash,
                device,
                created_ts,
                last_used_ts,
                expires_ts,
            } => data.sessions.push((
                SessionRecord {
                    id,
                    token_hash,
                    user,
                    device,
                    created_ts,
                    last_used_ts,
                },
                expires_ts,
            )),
            Line::Room {
                id,
                name,
                kind,
                visibility,
                owner,
                topic,
                last_seq,
                last_ts,
                pair,
            } => {
                if id.0 == 0 || id.0 > data.last_room {
                    return Err(err(format!("room id {id} above last_room")));
                }
                rooms.insert(id);
                data.rooms.push(RoomRecord {
                    id,
                    name,
                    kind,
                    visibility,
                    owner,
                    topic,
                    last_seq,
                    last_ts,
                    pair,
                });
            }
            Line::Member { room, user, role } => {
                if !rooms.contains(&room) {
                    return Err(err(format!("member of room {room} before its room")));
                }
                data.members.push((room, user, role));
            }
            Line::Read { user, room, seq } => data.reads.push((user, room, seq)),
            Line::Invite {
                code_hash,
                uses_left,
                expires_ts,
                created_by,
                created_ts,
            } => data.invites.push(InviteRecord {
                code_hash,
                uses_left,
                expires_ts,
                created_by,
                created_ts,
            }),
            Line::Dedupe {
                room,
                sender,
                client_id,
                seq,
                ts,
                expires_ts,
            } => data.dedupe.push(DedupeRecord {
                room,
                sender,
                client_id,
                seq,
                ts,
                expires_ts,
            }),
            Line::Ban { room, user } => {
                if !rooms.contains(&room) {
                    return Err(err(format!("ban in room {room} before its room")));
                }
                data.bans.push((room, user));
            }
            Line::Block { user, blocked } => data.blocks.push((user, blocked)),
            Line::DisplayName { user, name } => data.display_names.push((user, name)),
            Line::Upload {
                id,
                owner,
                room,
                name,
                size,
                content_type,
                width,
                height,
                thumbnail,
                created_ts,
                seq,
            } => {
                if !rooms.contains(&room) || !protocol::attachment::is_attachment_id(&id) {
                    return Err(err(format!("upload {id:?} before its room, or a bad id")));
                }
                data.uploads.push(crate::store::UploadRecord {
                    id,
                    owner,
                    room,
                    name,
                    size,
                    content_type,
                    width,
                    height,
                    thumbnail,
                    created_ts,
                    seq,
                    dead: false,
                });
            }
            Line::Notify { user, room, level } => {
                if !rooms.contains(&room) {
                    return Err(err(format!(
                        "notification level in room {room} before its room"
                    )));
                }
                data.notify.push((user, room, level));
            }
        }
    }
    if !header {
        return Err(BackupError {
            line: 0,
            message: "empty file: not a chat-server export".into(),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_export() {
        assert!(decode("").is_err());
        assert!(decode("{\"type\":\"user\"}\n").is_err());
        let header = "{\"type\":\"chat-export\",\"version\":1,\"epoch\":\"e\",\"last_user\":0,\"last_room\":0}\n";
        assert!(decode(header).is_ok());
        let future = header.replace("\"version\":1", "\"version\":2");
        assert!(decode(&future).is_err());
        let orphan =
            format!("{header}{{\"type\":\"member\",\"room\":1,\"user\":1,\"role\":\"owner\"}}\n");
        assert!(decode(&orphan)
            .unwrap_err()
            .to_string()
            .starts_with("line 2"));
    }

    #[test]
    fn encodes_and_decodes_the_same() {
        let data = DataSet {
            epoch: "abc".into(),
            last_user: 1,
            last_room: 1,
            users: vec![UserRecord {
                id: UserId(1),
                username: "Ann".into(),
                password_hash: "$argon2id$x".into(),
                created_ts: 5,
                admin: true,
                disabled: false,
            }],
            rooms: vec![RoomRecord {
                id: RoomId(1),
                name: "r".into(),
                kind: RoomKind::Group,
                visibility: Visibility::Public,
                owner: Some(UserId(1)),
                topic: "weekend plans".into(),
                last_seq: 1,
                last_ts: 7,
                pair: None,
            }],
            members: vec![(RoomId(1), UserId(1), Role::Owner)],
            bans: vec![(RoomId(1), UserId(2))],
            blocks: vec![(UserId(1), UserId(2))],
            display_names: vec![(UserId(1), "Ann ✓".into())],
            notify: vec![(UserId(1), RoomId(1), NotifyLevel::Mentions)],
            events: vec![crate::store::bus::event_frame(
                RoomId(1),
                1,
                7,
                r#"{"kind":"member_joined","user":1,"username":"Ann","role":"owner"}"#,
            )],
            ..DataSet::default()
        };
        let text = encode(&data);
        assert_eq!(decode(&text).unwrap(), data);
        assert_eq!(encode(&decode(&text).unwrap()), text);
    }
}
