//! Error codes: stable, machine-readable, the same over HTTP and on the socket.

use serde::{Deserialize, Serialize};

/// Every error the server reports. The `snake_case` name is the stable wire code;
/// [`ErrorCode::http_status`] is the status used when the error answers an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or query is not valid for this endpoint.
    BadRequest,
    /// A socket frame is not valid JSON or misses required fields.
    MalformedFrame,
    /// A socket frame has a `type` the server does not know.
    UnknownFrame,
    /// A binary socket frame; the protocol is JSON text only.
    BinaryNotSupported,
    /// A body or message exceeds the configured size limit.
    PayloadTooLarge,
    /// The username breaks the rules (see `validate::username`).
    InvalidUsername,
    /// The password breaks the rules (see `validate::password`).
    InvalidPassword,
    /// The room name breaks the rules (see `validate::room_name`).
    InvalidRoomName,
    /// The message text is empty or contains forbidden characters.
    InvalidMessage,
    /// The client message id breaks the rules (see `validate::client_id`).
    InvalidClientId,
    /// A reaction is not one Unicode emoji (see `validate::emoji`).
    InvalidEmoji,
    /// A room topic breaks the rules (see `validate::topic`).
    InvalidTopic,
    /// A display name breaks the rules (see `validate::display_name`).
    InvalidDisplayName,
    /// Another account already has this username (compared case-insensitively).
    UsernameTaken,
    /// Wrong username or password.
    InvalidCredentials,
    /// No token, or the token is invalid, expired or revoked.
    Unauthorized,
    /// A socket frame other than `hello` arrived before authentication.
    AuthRequired,
    /// A second `hello` on an authenticated socket.
    AlreadyAuthenticated,
    /// The caller is not a member of the room (also for rooms that do not exist, so
    /// non-members learn nothing about private rooms).
    NotAMember,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists but does not take this HTTP method (the `Allow` header lists those
    /// it takes).
    MethodNotAllowed,
    /// The room does not exist or is private and the caller was not invited.
    RoomNotFound,
    /// The user does not exist.
    UserNotFound,
    /// The message (by seq) does not exist in the room, or is not a message.
    MessageNotFound,
    /// The message was deleted; it can no longer be edited.
    MessageDeleted,
    /// Only the author may edit or delete a message.
    NotAuthor,
    /// Only the room owner may do this.
    NotOwner,
    /// The operation does not apply to direct-message rooms (invite, leave, remove).
    DirectRoom,
    /// The session id does not belong to the caller.
    SessionNotFound,
    /// The device label breaks the rules (see `validate::device_name`).
    InvalidDeviceName,
    /// The user is banned from this room: they cannot join or be invited until unbanned.
    Banned,
    /// The other user blocked the caller: no direct room with them, no invites to them.
    Blocked,
    /// A cap on rooms per user or members per room is reached (see the server settings
    /// `max_rooms_per_user` and `max_members_per_room`).
    LimitReached,
    /// Too many requests or frames; slow down. `retry_after_ms` says when to retry.
    RateLimited,
    /// The browser Origin is not in the server's allowlist.
    OriginNotAllowed,
    /// socket: the account already holds `max_sockets_per_user` sockets on this server node;
    /// the socket is closed with 4013. Close another session's socket or retry later.
    TooManyConnections,
    /// The server is overloaded (e.g. too many password hashes in flight); retry later.
    ServerBusy,
    /// The backing store is unreachable; retry later. Nothing was changed.
    StoreUnavailable,
    /// `POST /api/v1/password`: the current password given is wrong. Nothing changed.
    WrongPassword,
    /// login: the account is disabled by an admin (only said after the right password).
    AccountDisabled,
    /// The route is for admins only.
    NotAdmin,
    /// register: the server's `registration` is `closed`; an admin creates accounts.
    RegistrationClosed,
    /// register: the invite code is missing, unknown, used up or expired.
    InvalidInvite,
    /// The store is not empty: an import goes only into an empty store.
    StoreNotEmpty,
    /// An upload is larger than `attachments.max_upload_bytes`, or an image has more pixels
    /// than the server decodes (a decompression bomb).
    TooLarge,
    /// The upload would take the user's stored files past `attachments.quota_bytes`.
    QuotaExceeded,
    /// The server does not accept files of this (sniffed) type.
    UnsupportedType,
    /// No such attachment, or the caller may not see it (same answer for both), or an upload
    /// cannot be attached (unknown, someone else's, another room's, already attached).
    AttachmentNotFound,
    /// A download's `Range` starts past the end of the file (416, with
    /// `Content-Range: bytes */SIZE`).
    RangeNotSatisfiable,
    /// Client updates: this server serves none (`updates_dir` unset), or no such version or
    /// package file.
    UpdateNotFound,
    /// An unexpected server error. Details are in the server log, never in the response.
    Internal,
}

impl ErrorCode {
    /// HTTP status for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | MalformedFrame | UnknownFrame | BinaryNotSupported | InvalidUsername
            | InvalidPassword | InvalidRoomName | InvalidMessage | InvalidClientId
            | InvalidEmoji | DirectRoom | InvalidDeviceName | InvalidTopic | InvalidDisplayName => {
                400
            }
            InvalidCredentials | Unauthorized | AuthRequired => 401,
            NotAMember | NotAuthor | NotOwner | OriginNotAllowed | WrongPassword
            | AccountDisabled | NotAdmin | RegistrationClosed | InvalidInvite | Banned
            | Blocked | LimitReached | QuotaExceeded => 403,
            NotFound | RoomNotFound | UserNotFound | MessageNotFound | SessionNotFound
            | AttachmentNotFound | UpdateNotFound => 404,
            MethodNotAllowed => 405,
            UsernameTaken | MessageDeleted | AlreadyAuthenticated | StoreNotEmpty => 409,
            PayloadTooLarge | TooLarge => 413,
            UnsupportedType => 415,
            RangeNotSatisfiable => 416,
            RateLimited | TooManyConnections => 429,
            Internal => 500,
            ServerBusy | StoreUnavailable => 503,
        }
    }

    /// The wire name of the code, e.g. `"not_a_member"`.
    pub fn as_str(self) -> &'static str {
        // Kept equal to the serde names by the `every_code_has_matching_wire_name` test.
        ERROR_NAMES
            .iter()
            .find(|(code, _)| *code == self)
            .map(|(_, name)| *name)
            .unwrap_or("internal")
    }
}

const ERROR_NAMES: &[(ErrorCode, &str)] = {
    use ErrorCode::*;
    &[
        (BadRequest, "bad_request"),
        (MalformedFrame, "malformed_frame"),
        (UnknownFrame, "unknown_frame"),
        (BinaryNotSupported, "binary_not_supported"),
        (PayloadTooLarge, "payload_too_large"),
        (InvalidUsername, "invalid_username"),
        (InvalidPassword, "invalid_password"),
        (InvalidRoomName, "invalid_room_name"),
        (InvalidMessage, "invalid_message"),
        (InvalidClientId, "invalid_client_id"),
        (InvalidEmoji, "invalid_emoji"),
        (InvalidTopic, "invalid_topic"),
        (InvalidDisplayName, "invalid_display_name"),
        (UsernameTaken, "username_taken"),
        (InvalidCredentials, "invalid_credentials"),
        (Unauthorized, "unauthorized"),
        (AuthRequired, "auth_required"),
        (AlreadyAuthenticated, "already_authenticated"),
        (NotAMember, "not_a_member"),
        (NotFound, "not_found"),
        (MethodNotAllowed, "method_not_allowed"),
        (RoomNotFound, "room_not_found"),
        (UserNotFound, "user_not_found"),
        (MessageNotFound, "message_not_found"),
        (MessageDeleted, "message_deleted"),
        (NotAuthor, "not_author"),
        (NotOwner, "not_owner"),
        (DirectRoom, "direct_room"),
        (SessionNotFound, "session_not_found"),
        (InvalidDeviceName, "invalid_device_name"),
        (Banned, "banned"),
        (Blocked, "blocked"),
        (LimitReached, "limit_reached"),
        (RateLimited, "rate_limited"),
        (OriginNotAllowed, "origin_not_allowed"),
        (TooManyConnections, "too_many_connections"),
        (ServerBusy, "server_busy"),
        (StoreUnavailable, "store_unavailable"),
        (WrongPassword, "wrong_password"),
        (AccountDisabled, "account_disabled"),
        (NotAdmin, "not_admin"),
        (RegistrationClosed, "registration_closed"),
        (InvalidInvite, "invalid_invite"),
        (StoreNotEmpty, "store_not_empty"),
        (TooLarge, "too_large"),
        (QuotaExceeded, "quota_exceeded"),
        (UnsupportedType, "unsupported_type"),
        (AttachmentNotFound, "attachment_not_found"),
        (RangeNotSatisfiable, "range_not_satisfiable"),
        (UpdateNotFound, "update_not_found"),
        (Internal, "internal"),
    ]
};

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every HTTP error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A human-readable explanation, in English.
    pub message: String,
    /// For `rate_limited`: how long to wait before retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_matching_wire_name() {
        for (code, name) in ERROR_NAMES {
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
            assert_eq!(code.as_str(), *name);
        }
    }
}
