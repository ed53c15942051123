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
    /// S3-compatible object storage instead of `dir` (`[attachments.s3]`): every node uses the
    /// same bucket. Unset: `dir`.
    pub s3: Option<S3Config>,
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
            s3: None,
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

/// An S3-compatible bucket (AWS S3, MinIO, Garage, Ceph RGW, s3s-fs, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (it must exist).
    pub bucket: String,
    /// The service's URL, e.g. `https://s3.example.org` or `http://127.0.0.1:9000`; unset:
    /// AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region name; most S3-compatible servers take any.
    #[serde(default = "default_region")]
    pub region: String,
    /// Credentials. Prefer the environment (`CHAT_ATTACHMENTS__S3__SECRET_ACCESS_KEY`) to a file.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (a server on the same host or private network only).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl AttachmentConfig {
    /// The reason this configuration cannot be used.
    pub fn problem(&self) -> Option<&'static str> {
        if self.dir.is_some() && self.s3.is_some() {
            return Some("attachments: set dir or s3, not both");
        }
        if let Some(s3) = &self.s3 {
            if s3.bucket.is_empty()
                || s3.access_key_id.is_empty()
                || s3.secret_access_key.is_empty()
            {
                return Some("attachments.s3 needs bucket, access_key_id and secret_access_key");
            }
            if s3
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
                && !s3.allow_http
            {
                return Some(
                    "attachments.s3.endpoint is plain http: set allow_http = true if that is meant",
                );
            }
        }
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
