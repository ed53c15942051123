//! The `[attachments]` settings.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where files go and how much of them a user may store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentConfig {
    /// Directory for uploaded files (created if missing). Several nodes must share it (or use
    /// object storage). Unset: attachments are off and uploads answer `not_found`.
    pub dir: Option<PathBuf>,
    /// Largest upload in bytes; larger ones are refused with `too_large` (413).
    pub max_upload_bytes: u64,
    /// Bytes of files one user may keep stored (0 = no quota); beyond it `quota_exceeded`.
    pub quota_bytes: u64,
    /// Most attachments on one message (at most 10).
    pub max_per_message: usize,
    /// Media types accepted, e.g. `["image/*", "application/pdf"]` (sniffed from the bytes).
    /// Empty: any type. Refused uploads get `unsupported_type`.
    pub allowed_types: Vec<String>,
    /// Images (PNG, JPEG, GIF, WebP) larger than this many bytes are refused (`too_large`):
    /// the server reads an image whole to strip its metadata and make the thumbnail.
    pub max_image_bytes: u64,
    /// Images with more pixels than this are refused (`too_large`): a small file can decode to
    /// gigabytes (a decompression bomb).
    pub max_image_pixels: u64,
    /// Longest side of thumbnails, in pixels.
    pub thumbnail_px: u32,
    /// Uploads not attached to a message within this many seconds are deleted.
    pub orphan_grace_secs: u64,
    /// Seconds between passes of the collector (orphans, deleted messages, retention).
    pub collect_every_secs: u64,
}

impl Default for AttachmentConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_upload_bytes: 50 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            max_per_message: 10,
            allowed_types: Vec::new(),
            max_image_bytes: 25 * 1024 * 1024,
            max_image_pixels: 50_000_000,
            thumbnail_px: 320,
            orphan_grace_secs: 24 * 3600,
            collect_every_secs: 600,
        }
    }
}

impl AttachmentConfig {
    /// The reason this configuration cannot be used.
    pub fn problem(&self) -> Option<&'static str> {
        if self.max_upload_bytes == 0 || self.max_image_bytes == 0 || self.max_image_pixels == 0 {
            return Some("attachments.max_upload_bytes, max_image_bytes and max_image_pixels must be positive");
        }
        if self.max_per_message == 0
            || self.max_per_message > protocol::attachment::MAX_ATTACHMENTS_PER_MESSAGE
        {
            return Some("attachments.max_per_message must be between 1 and 10");
        }
        if !(16..=2048).contains(&self.thumbnail_px) {
            return Some("attachments.thumbnail_px must be between 16 and 2048");
        }
        if self.collect_every_secs == 0 {
            return Some("attachments.collect_every_secs must be positive");
        }
        if self
            .allowed_types
            .iter()
            .any(|t| t.split('/').count() != 2 || t.starts_with('*'))
        {
            return Some(
                "attachments.allowed_types entries look like \"image/png\" or \"image/*\"",
            );
        }
        None
    }

    /// Whether a sniffed media type is accepted.
    pub fn allows(&self, content_type: &str) -> bool {
        self.allowed_types.is_empty()
            || self
                .allowed_types
                .iter()
                .any(|t| match t.strip_suffix("/*") {
                    Some(top) => content_type.split('/').next() == Some(top),
                    None => t == content_type,
                })
    }
}
