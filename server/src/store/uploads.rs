//! Upload records of attachments (issue 14), on both stores: what was uploaded, by whom, for
//! which room, and which message it is attached to. The files themselves are in blob storage
//! (`crate::attachments`); a record exists only once its file is complete there.
//!
//! Life of an upload: *pending* (created by [`Store::create_upload`]) → *attached* to one
//! message (in the same atomic step as the message's append, see [`super::NewMessage`]) →
//! *dead* (the message was deleted or trimmed by retention, or it stayed pending past the grace
//! period: [`Store::condemn_uploads`]) → gone ([`Store::forget_upload`], after the collector
//! deleted its files). A dead upload is never attachable or served again, so the collector can
//! delete its files before the record without a message ever pointing to a missing file.

use super::{Store, CALLS};
use crate::error::{ApiError, StoreError, StoreResult};
use protocol::{ErrorCode, RoomId, UserId};

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: String,
    pub owner: UserId,
    pub room: RoomId,
    pub name: String,
    /// Bytes stored (counted against the owner's quota).
    pub size: u64,
    pub content_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: bool,
    pub created_ts: i64,
    /// The seq of the message it is attached to; `None` while pending.
    pub seq: Option<u64>,
    /// Condemned: its files are being deleted. Read only (set by the store).
    pub dead: bool,
}

impl UploadRecord {
    /// The attachment as clients see it.
    pub fn view(&self) -> protocol::Attachment {
        protocol::Attachment {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            width: self.width,
            height: self.height,
            thumbnail: self.thumbnail,
        }
    }
}

/// The refusal of an upload that cannot be attached: unknown, someone else's, for another
/// room, already attached, or dead (both stores).
pub(crate) fn not_attachable() -> ApiError {
    ApiError::new(
        ErrorCode::AttachmentNotFound,
        "no such upload of yours in this room, or it is already attached to a message",
    )
}

/// The refusal of an upload past the owner's quota (both stores).
pub(crate) fn quota_exceeded() -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        "this upload would exceed your storage quota; delete messages with files to free space",
    )
}

delegate! {
    /// Records a complete upload as pending, adding its size to the owner's usage, unless
    /// that would pass `quota_bytes` (0: no quota): then `quota_exceeded`.
    fn create_upload(&self, record: &UploadRecord, quota_bytes: u64) -> StoreResult<()>;
    /// The records of `ids`, in order (`None` where unknown).
    fn uploads(&self, ids: &[String]) -> StoreResult<Vec<Option<UploadRecord>>>;
    /// Bytes of uploads `user` has stored (pending, attached or not yet collected).
    fn upload_usage(&self, user: UserId) -> StoreResult<u64>;
    /// Condemns pending uploads created at or before `pending_until` (ms), and attached ones whose
    /// message retention dropped. Idempotent; any node may run it at any time.
    fn condemn_uploads(&self, pending_until: i64) -> StoreResult<()>;
    /// Up to `limit` dead uploads whose files are still to be deleted.
    fn dead_uploads(&self, limit: usize) -> StoreResult<Vec<String>>;
    /// Removes the record of a dead upload (its files are deleted) and frees its bytes from
    /// the owner's usage. No-op for an upload that is not dead.
    fn forget_upload(&self, id: &str) -> StoreResult<()>;
}
