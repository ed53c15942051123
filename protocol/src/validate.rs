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
///
/// On the hot path of every send, so it looks at bytes, eight at a time, never decoding
/// characters: in UTF-8 every control character (`char::is_control`, general category Cc) is
/// one byte below 0x20, the byte 0x7F, or the C1 range U+0080..U+009F, which is 0xC2 followed
/// by 0x80..=0x9F. The decisions are those of `str::trim` and `char::is_control` (a test
/// checks them against that char-by-char form).
pub fn message_body(body: &str, max_bytes: usize) -> Result<(), RuleError> {
    if body.len() > max_bytes {
        return fail(
            ErrorCode::PayloadTooLarge,
            "message is larger than the server's limit",
        );
    }
    if is_blank(body) {
        return fail(ErrorCode::InvalidMessage, "message must not be empty");
    }
    if has_control(body.as_bytes()) {
        return fail(
            ErrorCode::InvalidMessage,
            "message must not contain control characters",
        );
    }
    Ok(())
}

/// Whether `text` is empty or only white space (what `str::trim` removes, Unicode's
/// White_Space). ASCII white space is skipped a byte at a time; the first other ASCII byte
/// settles it; from a non-ASCII character on (a char boundary: everything before is ASCII)
/// the rest is decoded.
fn is_blank(text: &str) -> bool {
    // U+0009..U+000D and U+0020, as `char::is_whitespace` has them (`u8::is_ascii_whitespace`
    // leaves out U+000B).
    match text
        .bytes()
        .position(|b| !matches!(b, b'\t'..=b'\r' | b' '))
    {
        None => true,
        Some(i) if text.as_bytes()[i].is_ascii() => false,
        Some(i) => text[i..].chars().all(char::is_whitespace),
    }
}

/// Whether UTF-8 `bytes` hold a control character other than newline and tab.
fn has_control(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Any byte of `v` below `n` (n <= 0x80), exactly: a borrow only starts at such a byte.
    let has_less = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH != 0;
    let has_byte = |v: u64, b: u8| has_less(v ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        // A word with a byte that may start a control character (tab and newline included)
        // is looked at byte by byte.
        if (has_less(w, 0x20) || has_byte(w, 0x7F) || has_byte(w, 0xC2))
            && (at..at + 8).any(|i| control_at(bytes, i))
        {
            return true;
        }
        at += 8;
    }
    (at..bytes.len()).any(|i| control_at(bytes, i))
}

/// Whether a control character other than newline and tab starts at `bytes[i]` (valid UTF-8).
fn control_at(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        b'\t' | b'\n' => false,
        0x00..=0x1F | 0x7F => true,
        // 0xC2 only ever leads a two-byte character; U+0080..U+009F are C1 controls.
        0xC2 => bytes.get(i + 1).is_some_and(|next| *next <= 0x9F),
        _ => false,
    }
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

    /// `message_body` as it was before the bytewise scan: `str::trim` and `char::is_control`,
    /// character by character. The new form must decide exactly as this one does.
    fn message_body_by_chars(body: &str, max_bytes: usize) -> Result<(), RuleError> {
        if body.len() > max_bytes {
            return fail(
                ErrorCode::PayloadTooLarge,
                "message is larger than the server's limit",
            );
        }
        if body.trim().is_empty() {
            return fail(ErrorCode::InvalidMessage, "message must not be empty");
        }
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return fail(
                ErrorCode::InvalidMessage,
                "message must not contain control characters",
            );
        }
        Ok(())
    }

    fn same_as_by_chars(body: &str, max_bytes: usize) {
        assert_eq!(
            message_body(body, max_bytes),
            message_body_by_chars(body, max_bytes),
            "{body:?} with max {max_bytes}"
        );
    }

    /// Characters at the edges of the rules: C0 and C1 controls and their neighbours, every
    /// kind of white space, bidi controls, zero-width and combining characters, 0xC2-led
    /// characters that are not controls, the widest characters.
    const EDGES: &[char] = &[
        '\0',
        '\u{1}',
        '\t',
        '\n',
        '\u{B}',
        '\u{C}',
        '\r',
        '\u{1F}',
        ' ',
        '!',
        'a',
        '~',
        '\u{7F}',
        '\u{80}',
        '\u{85}',
        '\u{9F}',
        '\u{A0}',
        '\u{A9}',
        '\u{BF}',
        '\u{C0}',
        'é',
        '\u{300}',
        '\u{34F}',
        '\u{61C}',
        '\u{1680}',
        '\u{180E}',
        '\u{2000}',
        '\u{200A}',
        '\u{200B}',
        '\u{200D}',
        '\u{200E}',
        '\u{2028}',
        '\u{2029}',
        '\u{202A}',
        '\u{202E}',
        '\u{202F}',
        '\u{205F}',
        '\u{2066}',
        '\u{2069}',
        '\u{3000}',
        '\u{D7FF}',
        '\u{E000}',
        '\u{FE0F}',
        '\u{FEFF}',
        '\u{FFFD}',
        '\u{FFFF}',
        '😀',
        '\u{1F3FD}',
        '\u{E0001}',
        '\u{10FFFF}',
    ];

    #[test]
    fn message_body_table() {
        let long_ascii = "x".repeat(100);
        let long_wide = "😀".repeat(25); // 100 bytes, 25 characters
        let cases: &[(&str, usize)] = &[
            ("", 10),
            (" ", 10),
            ("\t\n\u{B}\u{C}\r ", 10),
            ("\u{85}", 10),         // NEL: white space and a C1 control; blank wins
            ("\u{A0}\u{3000}", 10), // white space only, not ASCII
            ("\u{200B}", 10),       // zero-width space is not white space
            ("\u{202E}abc", 10),    // bidi override: allowed in message text
            ("e\u{301}", 10),       // combining mark
            ("a\u{80}", 10),
            ("a\u{9F}", 10),
            ("a\u{A0}", 10),
            ("a\u{7F}", 10),
            ("a\r\nb", 10),
            ("a\n\tb", 10),
            (" \u{1}", 10),
            ("\u{1} ", 10),
            ("1234567\u{80}", 10), // C1 control across an 8-byte word
            ("12345678\u{0}", 20),
            ("1234567\u{A9}x", 20),
            (&long_ascii, 100),
            (&long_ascii, 99),
            (&long_wide, 100),
            (&long_wide, 99),
        ];
        for (body, max) in cases {
            same_as_by_chars(body, *max);
        }
        assert_eq!(
            message_body(&long_wide, 99).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            message_body("\u{85}", 10).unwrap_err().message,
            "message must not be empty"
        );
        assert_eq!(
            message_body("a\u{9F}", 10).unwrap_err().message,
            "message must not contain control characters"
        );
        assert!(message_body("a\u{A0}", 10).is_ok());
    }

    #[test]
    fn message_body_every_character_at_every_word_offset() {
        // Each Unicode scalar value alone, and after 0..8 ASCII bytes so that it sits at every
        // position of an 8-byte word (and straddles two), with text after it and without.
        let mut body = String::new();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for pad in [0, 1, 7, 9] {
                for tail in ["", "z"] {
                    body.clear();
                    body.extend(std::iter::repeat_n('p', pad));
                    body.push(c);
                    body.push_str(tail);
                    let (new, old) = (message_body(&body, 64), message_body_by_chars(&body, 64));
                    assert_eq!(new, old, "{body:?}");
                }
            }
        }
    }

    #[test]
    fn message_body_random_edge_strings() {
        // A fixed-seed xorshift over the edge characters: lengths 0..40, limits around the
        // length.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut body = String::new();
        for _ in 0..50_000 {
            body.clear();
            let len = next() % 40;
            for _ in 0..len {
                body.push(EDGES[(next() % EDGES.len() as u64) as usize]);
            }
            let max = body.len().saturating_sub(2) + (next() % 5) as usize;
            same_as_by_chars(&body, max);
        }
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
