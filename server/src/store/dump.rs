//! A whole data set in plain values: what `chat-server admin export` writes and `import`
//! loads (the JSON-lines encoding is in [`crate::backup`]). Both backends produce it in the
//! same order, so the same data exports to the same bytes whichever store holds it.
//!
//! Left out on purpose: presence (who is online now) and the bus. Kept: everything a client
//! needs to carry on as if nothing happened — accounts, sessions (token hashes, with their
//! expiry), rooms, members, the kept history exactly as stored (edits and deletes included),
//! read markers, bans and blocks, display names and notification levels, the dedupe window (a client's resend after the move is still a duplicate),
//! invite codes, the id counters and the store epoch (clients' resume cursors stay valid), and
//! the upload records of attachments (their files stay in blob storage).

use super::{InviteRecord, SessionRecord, UserRecord};
use protocol::event::Role;
use protocol::rest::{NotifyLevel, RoomKind, Visibility};
use protocol::{RoomId, UserId};

/// Everything a store holds, each list in the documented order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSet {
    /// The store epoch (clients send it with resume cursors).
    pub epoch: String,
    /// Last user and room ids handed out.
    pub last_user: u64,
    pub last_room: u64,
    /// By id.
    pub users: Vec<UserRecord>,
    /// Live sessions with their expiry (ms), by (user, session id).
    pub sessions: Vec<(SessionRecord, i64)>,
    /// By id.
    pub rooms: Vec<RoomRecord>,
    /// By (room, user).
    pub members: Vec<(RoomId, UserId, Role)>,
    /// Stored `event` frames as stored (byte for byte), by (room, seq).
    pub events: Vec<String>,
    /// Read markers, by (user, room); zero markers left out.
    pub reads: Vec<(UserId, RoomId, u64)>,
    /// By code hash; expired ones left out.
    pub invites: Vec<InviteRecord>,
    /// Remembered client message ids, by (room, sender, client id).
    pub dedupe: Vec<DedupeRecord>,
    /// Users banned from rooms, by (room, user).
    pub bans: Vec<(RoomId, UserId)>,
    /// Blocks, by (user, the user they blocked).
    pub blocks: Vec<(UserId, UserId)>,
    /// Display names that are set, by user.
    pub display_names: Vec<(UserId, String)>,
    /// Notification levels other than `all`, by (user, room).
    pub notify: Vec<(UserId, RoomId, NotifyLevel)>,
    /// Upload records of attachments (pending and attached; dead ones left out), by id. The
    /// files stay where they are (`attachments.dir` or the bucket).
    pub uploads: Vec<super::UploadRecord>,
}

/// A room without its derived fields (member count, DM index, public index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub owner: Option<UserId>,
    /// Group rooms: the topic (empty when none).
    pub topic: String,
    pub last_seq: u64,
    /// Timestamp of the newest event ever appended (timestamps never go backwards in a room).
    pub last_ts: i64,
    /// Direct rooms: the two members, lower id first.
    pub pair: Option<(UserId, UserId)>,
}

/// A client message id remembered for idempotent sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeRecord {
    pub room: RoomId,
    pub sender: UserId,
    pub client_id: String,
    pub seq: u64,
    pub ts: i64,
    pub expires_ts: i64,
}

impl DataSet {
    /// Sorts every list into the documented order (backends collect them in any order).
    pub fn sort(&mut self) {
        self.users.sort_by_key(|u| u.id);
        self.sessions
            .sort_by(|(a, _), (b, _)| (a.user, &a.id).cmp(&(b.user, &b.id)));
        self.rooms.sort_by_key(|r| r.id);
        self.members.sort_by_key(|(r, u, _)| (*r, *u));
        self.reads.sort();
        self.invites.sort_by(|a, b| a.code_hash.cmp(&b.code_hash));
        self.dedupe.sort_by(|a, b| {
            (a.room, a.sender, &a.client_id).cmp(&(b.room, b.sender, &b.client_id))
        });
        self.bans.sort();
        self.blocks.sort();
        self.display_names.sort();
        self.notify.sort_by_key(|(u, r, _)| (*u, *r));
        self.uploads.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Whether a store holding this has nothing an import could collide with.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.rooms.is_empty() && self.last_user == 0 && self.last_room == 0
    }
}
