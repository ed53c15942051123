//! Attachments (issue 14): files uploaded over REST, then referenced by a message.
//!
//! A client uploads a file to `POST /api/v1/rooms/{room}/attachments` and gets an
//! [`Attachment`] back; its `id` goes into the `attachments` of a `send` (socket) or
//! `POST .../messages` (REST). The message then carries the same [`Attachment`] objects in
//! history, resume and live events. Files are downloaded from `GET /api/v1/attachments/{id}`.

use serde::{Deserialize, Serialize};

/// Most attachments one message may reference, whatever the server's setting.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;

/// A stored file: what an upload answers and what a message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// Opaque id (32 lowercase hex digits).
    pub id: String,
    /// The file name the uploader gave (shown, never used as a path).
    pub name: String,
    /// Size in bytes of the file as served (images: without their metadata).
    pub size: u64,
    /// Media type sniffed by the server from the file's first bytes
    /// (`application/octet-stream` when it is not recognized).
    pub content_type: String,
    /// Images: width and height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A thumbnail is at `GET /api/v1/attachments/{id}/thumbnail`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub thumbnail: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Query of `POST /api/v1/rooms/{room}/attachments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UploadQuery {
    /// The file's name, 1 to 255 bytes, no control characters or `/` `\`.
    pub name: String,
}

/// Whether `id` looks like an attachment id (32 lowercase hex digits).
pub fn is_attachment_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
