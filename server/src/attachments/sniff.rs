//! The type of a file from its first bytes (magic numbers, the `infer` crate); the client's
//! Content-Type is never believed.

use super::AttachmentConfig;
use crate::error::{ApiError, ApiResult};
use protocol::ErrorCode;

/// What a file whose type is not recognized is stored and served as.
pub const UNKNOWN: &str = "application/octet-stream";

/// The media type of a file starting with `head`.
pub fn sniff(head: &[u8]) -> &'static str {
    infer::get(head).map_or(UNKNOWN, |t| t.mime_type())
}

/// The sniffed type, if `config.allowed_types` accepts it (`unsupported_type` otherwise).
pub fn accept(config: &AttachmentConfig, head: &[u8]) -> ApiResult<&'static str> {
    let found = sniff(head);
    if config.allows(found) {
        Ok(found)
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedType,
            format!("this server does not accept files of type {found}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0"), "image/jpeg");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"just some text"), UNKNOWN);
        assert_eq!(sniff(b""), UNKNOWN);
    }

    #[test]
    fn allowed_types_filter() {
        let config = AttachmentConfig {
            allowed_types: vec!["image/*".into(), "application/pdf".into()],
            ..Default::default()
        };
        assert!(accept(&config, b"\x89PNG\r\n\x1a\n").is_ok());
        assert!(accept(&config, b"%PDF-1.7\n").is_ok());
        let e = accept(&config, b"PK\x03\x04\x14\0\0\0").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedType);
        assert!(accept(&AttachmentConfig::default(), b"PK\x03\x04").is_ok());
    }
}
