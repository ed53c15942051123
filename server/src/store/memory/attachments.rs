//! Upload records on the embedded store (see `store/uploads.rs` for their life cycle).

use super::{MemoryStore, State};
use crate::error::StoreResult;
use crate::store::{not_attachable, quota_exceeded, UploadRecord};
use protocol::{RoomId, UserId};
use std::collections::{BTreeSet, HashMap};

/// Every upload record, the bytes each user stores, and the dead ones.
#[derive(Default)]
pub(super) struct Uploads {
    records: HashMap<String, UploadRecord>,
    usage: HashMap<UserId, u64>,
    dead: BTreeSet<String>,
}

impl Uploads {
    /// Whether every id is a pending upload of `sender` for `room`.
    pub(super) fn check(&self, room: RoomId, sender: UserId, ids: &[String]) -> StoreResult<()> {
        for id in ids {
            match self.records.get(id) {
                Some(r) if r.owner == sender && r.room == room && r.seq.is_none() && !r.dead => {}
                _ => return Err(not_attachable().into()),
            }
        }
        Ok(())
    }

    /// Attaches checked uploads to message `seq`.
    pub(super) fn attach(&mut self, ids: &[String], seq: u64) {
        for id in ids {
            if let Some(r) = self.records.get_mut(id) {
                r.seq = Some(seq);
            }
        }
    }

    /// Live records, for an export.
    pub(super) fn export(&self) -> Vec<UploadRecord> {
        self.records.values().filter(|r| !r.dead).cloned().collect()
    }

    /// Records from an export (into an empty store).
    pub(super) fn import(&mut self, records: &[UploadRecord]) {
        for r in records {
            *self.usage.entry(r.owner).or_default() += r.size;
            self.records.insert(r.id.clone(), r.clone());
        }
    }

    /// The uploads of a deleted message are dead.
    pub(super) fn condemn(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Some(r) = self.records.get_mut(&id) {
                r.dead = true;
                self.dead.insert(id);
            }
        }
    }
}

impl MemoryStore {
    pub async fn create_upload(&self, record: &UploadRecord, quota_bytes: u64) -> StoreResult<()> {
        self.with(|s| {
            let used = s.uploads.usage.entry(record.owner).or_default();
            if quota_bytes > 0 && used.saturating_add(record.size) > quota_bytes {
                return Err(quota_exceeded().into());
            }
            *used += record.size;
            let record = UploadRecord {
                seq: None,
                dead: false,
                ..record.clone()
            };
            s.uploads.records.insert(record.id.clone(), record);
            Ok(())
        })
    }

    pub async fn uploads(&self, ids: &[String]) -> StoreResult<Vec<Option<UploadRecord>>> {
        self.with(|s| {
            Ok(ids
                .iter()
                .map(|id| s.uploads.records.get(id).cloned())
                .collect())
        })
    }

    pub async fn upload_usage(&self, user: UserId) -> StoreResult<u64> {
        self.with(|s| Ok(s.uploads.usage.get(&user).copied().unwrap_or(0)))
    }

    pub async fn condemn_uploads(&self, pending_until: i64) -> StoreResult<()> {
        self.with(|s| {
            let State { uploads, rooms, .. } = s;
            for r in uploads.records.values_mut().filter(|r| !r.dead) {
                let gone = match r.seq {
                    None => r.created_ts <= pending_until,
                    // Retention dropped the message (the log starts after it).
                    Some(seq) => rooms.get(&r.room).is_none_or(|room| {
                        let first = room
                            .log
                            .front()
                            .map_or(room.meta.last_seq + 1, |(e, _)| e.seq);
                        seq < first
                    }),
                };
                if gone {
                    r.dead = true;
                    uploads.dead.insert(r.id.clone());
                }
            }
            Ok(())
        })
    }

    pub async fn dead_uploads(&self, limit: usize) -> StoreResult<Vec<String>> {
        self.with(|s| Ok(s.uploads.dead.iter().take(limit).cloned().collect()))
    }

    pub async fn forget_upload(&self, id: &str) -> StoreResult<()> {
        self.with(|s| {
            if !s.uploads.dead.remove(id) {
                return Ok(());
            }
            if let Some(r) = s.uploads.records.remove(id) {
                if let Some(used) = s.uploads.usage.get_mut(&r.owner) {
                    *used = used.saturating_sub(r.size);
                }
            }
            Ok(())
        })
    }
}
