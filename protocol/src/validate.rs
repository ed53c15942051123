//! Input rules shared by server and clients. The server enforces them; clients may check early.

use crate::error::ErrorCode;

/// A broken rule: the code to report and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub code: ErrorCode,
    pub message: &'static str,
}

fn fail(code: ErrorCode, message: &'static str) -> Result<(), RuleError> {
    Err(RuleError { code, message })
}

/// Usernames: 3–32 characters from `a-z A-Z 0-9 _ . -`, starting with a letter or digit.
/// Unique case-insensitively (`Alice` and `alice` are the same account name).
pub fn username(name: &str) -> Result<(), RuleError> {
    let code = ErrorCode::InvalidUsername;
    if !(3..=32).contains(&name.len()) {
        return fail(code, "username must be 3 to 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return fail(
            code,
            "username may contain only letters a-z, digits, '_', '.' and '-'",
        );
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return fail(code, "username must start with a letter or digit");
    }
    Ok(())
}

/// Passwords: 8–256 bytes, anything else goes.
pub fn password(password: &str) -> Result<(), RuleError> {
    if password.chars().count() < 8 {
        return fail(
            ErrorCode::InvalidPassword,
            "password must be at least 8 characters",
        );
    }
    if password.len() > 256 {
        return fail(
            ErrorCode::InvalidPassword,
            "password must be at most 256 bytes",
        );
    }
    Ok(())
}

/// Characters that are invisible or change the direction of the text around them: bidi
/// embeddings, overrides, isolates and marks; zero-width spaces and joiners; the BOM; other
/// invisible format characters and fillers. Refused in names (a name could otherwise
/// impersonate another or reorder the text it is shown in); message text may contain them
/// (clients isolate user text when they show it).
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'               // soft hyphen
        | '\u{034F}'             // combining grapheme joiner
        | '\u{061C}'             // Arabic letter mark
        | '\u{115F}' | '\u{1160}' // Hangul fillers
        | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{2028}'..='\u{202E}' // line/paragraph separators; LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, LRI, RLI, FSI, PDI, ...
        | '\u{3164}'             // Hangul filler
        | '\u{FE00}'..='\u{FE0F}' // variation selectors
        | '\u{FEFF}'             // zero-width no-break space (BOM)
        | '\u{FFA0}'             // halfwidth Hangul filler
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}' // musical format characters
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// Device labels (shown in the session list): at most 64 characters, no control characters,
/// no bidi controls or zero-width characters.
pub fn device_name(name: &str) -> Result<(), RuleError> {
    let code = ErrorCode::InvalidDeviceName;
    if name.chars().count() > 64 {
        return fail(code, "device name must be at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return fail(code, "device name must not contain control characters");
    }
    if name.chars().any(is_invisible_or_bidi) {
        return fail(
            code,
            "device name must not contain bidi controls or zero-width characters",
        );
    }
    Ok(())
}

/// Room names: 1–64 characters after trimming, no control characters, no bidi controls or
/// zero-width characters.
pub fn room_name(name: &str) -> Result<(), RuleError> {
    let code = ErrorCode::InvalidRoomName;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() != name.len() {
        return fail(
            code,
            "room name must be non-empty without leading or trailing spaces",
        );
    }
    if name.chars().count() > 64 {
        return fail(code, "room name must be at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return fail(code, "room name must not contain control characters");
    }
    if name.chars().any(is_invisible_or_bidi) {
        return fail(
            code,
            "room name must not contain bidi controls or zero-width characters",
        );
    }
    Ok(())
}

/// Room topics (issue 13): at most 256 characters, one line (no control characters), no bidi
/// controls or zero-width characters. Empty clears the topic.
pub fn topic(topic: &str) -> Result<(), RuleError> {
    let code = ErrorCode::InvalidTopic;
    if topic.chars().count() > 256 {
        return fail(code, "topic must be at most 256 characters");
    }
    if topic.chars().any(char::is_control) {
        return fail(code, "topic must be one line without control characters");
    }
    if topic.chars().any(is_invisible_or_bidi) {
        return fail(
            code,
            "topic must not contain bidi controls or zero-width characters",
        );
    }
    Ok(())
}

/// Display names (issue 13): 1–64 characters without leading or trailing spaces, no control
/// characters, no bidi controls or zero-width characters (the rules of room names). Clients
/// show the username next to it, so a display name cannot pass for another account.
pub fn display_name(name: &str) -> Result<(), RuleError> {
    let code = ErrorCode::InvalidDisplayName;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() != name.len() {
        return fail(
            code,
            "display name must be non-empty without leading or trailing spaces",
        );
    }
    if name.chars().count() > 64 {
        return fail(code, "display name must be at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return fail(code, "display name must not contain control characters");
    }
    if name.chars().any(is_invisible_or_bidi) {
        return fail(
            code,
            "display name must not contain bidi controls or zero-width characters",
        );
    }
    Ok(())
}

/// Client message ids: 1–64 characters from `a-z A-Z 0-9 _ -` (a UUID fits).
pub fn client_id(id: &str) -> Result<(), RuleError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return fail(
            ErrorCode::InvalidClientId,
            "message id must be 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'",
        );
    }
    Ok(())
}

/// Message text: not blank, at most `max_bytes` bytes, no control characters other than
/// newline and tab.
pub fn message_body(body: &str, max_bytes: usize) -> Result<(), RuleError> {
    if body.len() > max_bytes {
        return fail(
            ErrorCode::PayloadTooLarge,
            "message is larger than the server's limit",
        );
    }
    if body.trim().is_empty() {
        return fail(ErrorCode::InvalidMessage, "message must not be empty");
    }
    // Bytes for ASCII text (the common case, and on the hot path of every send); chars
    // otherwise, for the C1 controls U+0080..U+009F.
    let control = if body.is_ascii() {
        body.bytes()
            .any(|b| (b < 0x20 || b == 0x7f) && b != b'\n' && b != b'\t')
    } else {
        body.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    if control {
        return fail(
            ErrorCode::InvalidMessage,
            "message must not contain control characters",
        );
    }
    Ok(())
}

/// A reaction: exactly one Unicode emoji (any the `emojis` crate knows, with or without its
/// variation selector, any skin tone). Returns its fully qualified form, so the same emoji
/// sent two ways counts once.
pub fn emoji(emoji: &str) -> Result<&'static str, RuleError> {
    // The longest emoji (family and flag sequences) are well under this.
    if emoji.len() > 64 {
        return Err(RuleError {
            code: ErrorCode::InvalidEmoji,
            message: "a reaction must be one emoji",
        });
    }
    match emojis::get(emoji) {
        Some(found) => Ok(found.as_str()),
        None => Err(RuleError {
            code: ErrorCode::InvalidEmoji,
            message: "a reaction must be one emoji",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["bob", "Alice_1", "a.b-c", "123"] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "_bob", "bob smith", "bób", "", &"x".repeat(33)] {
            assert_eq!(
                username(bad).unwrap_err().code,
                ErrorCode::InvalidUsername,
                "{bad}"
            );
        }
    }

    #[test]
    fn room_names() {
        assert!(room_name("général 🎉").is_ok());
        for bad in ["", " x", "x ", "a\u{7}b", &"x".repeat(65)] {
            assert_eq!(
                room_name(bad).unwrap_err().code,
                ErrorCode::InvalidRoomName,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bidi_and_zero_width_are_refused_in_names_only() {
        for bad in [
            "a\u{202E}b",
            "\u{2067}x",
            "x\u{200B}",
            "a\u{FEFF}b",
            "a\u{2066}b\u{2069}",
        ] {
            assert_eq!(
                room_name(bad).unwrap_err().code,
                ErrorCode::InvalidRoomName,
                "{bad:?}"
            );
            assert_eq!(
                device_name(bad).unwrap_err().code,
                ErrorCode::InvalidDeviceName,
                "{bad:?}"
            );
            assert_eq!(username(bad).unwrap_err().code, ErrorCode::InvalidUsername);
            assert!(message_body(bad, 100).is_ok(), "{bad:?}");
        }
        assert!(room_name("שלום עולם").is_ok());
        assert!(device_name("Laptop 💻").is_ok());
    }

    #[test]
    fn topics_and_display_names() {
        assert!(topic("").is_ok());
        assert!(topic("Weekly sync — notes in the wiki 📝").is_ok());
        for bad in ["a\nb", "x\u{202E}y", "z\u{200B}", &"t".repeat(257)] {
            assert_eq!(
                topic(bad).unwrap_err().code,
                ErrorCode::InvalidTopic,
                "{bad:?}"
            );
        }
        assert!(display_name("Alice Liddell").is_ok());
        assert!(display_name("Zoë 🌸").is_ok());
        for bad in [
            "",
            " a",
            "a ",
            "a\u{7}",
            "al\u{202E}ice",
            "b\u{200D}",
            &"n".repeat(65),
        ] {
            assert_eq!(
                display_name(bad).unwrap_err().code,
                ErrorCode::InvalidDisplayName,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_bodies() {
        assert!(message_body("hi\nthere\t!", 10).is_ok());
        assert_eq!(
            message_body("   \n", 10).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            message_body("a\u{0}", 10).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            message_body("12345678901", 10).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn emoji_reactions() {
        for ok in ["👍", "🎉", "❤️", "👍🏽", "🇫🇷", "👨‍👩‍👧"] {
            assert!(emoji(ok).is_ok(), "{ok:?}");
        }
        // Without its variation selector, the heart is the same reaction.
        assert_eq!(emoji("\u{2764}"), emoji("❤️"));
        for bad in [
            "",
            "a",
            ":+1:",
            "👍👍",
            "👍 ",
            "<b>",
            "\u{200D}",
            &"👍".repeat(40),
        ] {
            assert_eq!(
                emoji(bad).unwrap_err().code,
                ErrorCode::InvalidEmoji,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_ids() {
        assert!(client_id("0b7c1e2a-1f4e-4d1b-9a65-2f7d3c9e8a10").is_ok());
        assert!(client_id("").is_err());
        assert!(client_id("a b").is_err());
        assert!(client_id(&"x".repeat(65)).is_err());
    }
}
