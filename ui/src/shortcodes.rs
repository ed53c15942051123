//! Emoji shortcodes in the composer (`:thumbsup:` → 👍), from the `emojis` crate's GitHub
//! (gemoji) shortcode table, taken at build time (`build.rs` writes [`SHORTCODES`]). Pure
//! functions over the text, so the host tests cover them; the composer calls them while
//! typing (suggestions, completion when the closing `:` is typed) and on send.

include!(concat!(env!("OUT_DIR"), "/shortcodes.rs"));

/// Suggestions shown at most.
pub const MAX_SUGGESTIONS: usize = 6;
/// Letters typed after the `:` before suggestions show (`:d` would match half the table).
pub const MIN_TYPED: usize = 2;

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')
}

/// Emoji the picker shows: with no query the first `limit` in Unicode order (smileys first);
/// otherwise those whose shortcode or name contains every word of `query`, the ones whose
/// shortcode starts with it first. `(emoji, label)`, the label being `:shortcode:` or the name.
pub fn picker(query: &str, limit: usize) -> Vec<(&'static str, String)> {
    let words: Vec<String> = query
        .split_whitespace()
        .map(|w| w.trim_matches(':').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let label = |code: &str, name: &str| {
        if code.is_empty() {
            name.to_owned()
        } else {
            format!(":{code}:")
        }
    };
    if words.is_empty() {
        return PICKER
            .iter()
            .take(limit)
            .map(|(e, code, name)| (*e, label(code, name)))
            .collect();
    }
    let mut found: Vec<(bool, usize, &(&str, &str, &str))> = PICKER
        .iter()
        .enumerate()
        .filter(|(_, (_, code, name))| {
            let name = name.to_lowercase();
            words
                .iter()
                .all(|w| code.contains(w.as_str()) || name.contains(w.as_str()))
        })
        .map(|(i, entry)| (!entry.1.starts_with(words[0].as_str()), i, entry))
        .collect();
    found.sort_by_key(|(later, i, _)| (*later, *i));
    found
        .into_iter()
        .take(limit)
        .map(|(_, _, (e, code, name))| (*e, label(code, name)))
        .collect()
}

/// The emoji for a shortcode name (without colons).
pub fn emoji(name: &str) -> Option<&'static str> {
    SHORTCODES
        .binary_search_by(|(code, _)| (*code).cmp(name))
        .ok()
        .map(|i| SHORTCODES[i].1)
}

/// Every known `:name:` in `text` replaced by its emoji, except inside code (between
/// backticks). Unknown names stay as typed.
pub fn replace_all(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Odd-numbered pieces between backticks are code (`x`, ```block```).
    for (i, piece) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(piece);
        } else {
            replace_outside_code(piece, &mut out);
        }
    }
    out
}

fn replace_outside_code(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(open) = rest.find(':') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !is_code_char(c))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let closed = after[name_len..].starts_with(':');
        match (closed, emoji(name)) {
            (true, Some(e)) if !name.is_empty() => {
                out.push_str(&rest[..open]);
                out.push_str(e);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// The shortcode being typed just before `cursor` (a byte offset): the `:` where it starts and
/// the letters typed so far. `None` unless the `:` starts a word (so "10:30" is no shortcode)
/// and at least [`MIN_TYPED`] letters follow it.
pub fn typing_at(text: &str, cursor: usize) -> Option<(usize, &str)> {
    let before = text.get(..cursor)?;
    let colon = before.rfind(':')?;
    let name = &before[colon + 1..];
    if name.len() < MIN_TYPED || !name.chars().all(is_code_char) {
        return None;
    }
    let starts_word = before[..colon]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '"' | '\'' | '*' | '_'));
    starts_word.then_some((colon, name))
}

/// Shortcodes starting with `typed`, the exact one first, then the shortest; each with its
/// emoji.
pub fn suggestions(typed: &str) -> Vec<(&'static str, &'static str)> {
    let typed = typed.to_ascii_lowercase();
    let from = SHORTCODES.partition_point(|(code, _)| *code < typed.as_str());
    let mut found: Vec<(&'static str, &'static str)> = SHORTCODES[from..]
        .iter()
        .take_while(|(code, _)| code.starts_with(typed.as_str()))
        .copied()
        .collect();
    found.sort_by_key(|(code, _)| (*code != typed, code.len(), *code));
    found.truncate(MAX_SUGGESTIONS);
    found
}

/// `text` with the shortcode typed at `colon..cursor` replaced by `emoji`; the new text and
/// where the cursor goes (after the emoji).
pub fn complete(text: &str, colon: usize, cursor: usize, emoji: &str) -> (String, usize) {
    let mut end = cursor;
    // A closing colon typed already belongs to the shortcode.
    if text[cursor..].starts_with(':') {
        end += 1;
    }
    let new = format!("{}{}{}", &text[..colon], emoji, &text[end..]);
    (new, colon + emoji.len())
}

/// When the text before `cursor` ends with a complete known `:name:`, the text with it replaced
/// and the new cursor (typing the closing colon completes the shortcode).
pub fn complete_closed(text: &str, cursor: usize) -> Option<(String, usize)> {
    let before = text.get(..cursor)?.strip_suffix(':')?;
    let (colon, name) = typing_at(before, before.len()).or_else(|| {
        // Shorter names (":+1:", ":ok:") count once closed.
        let colon = before.rfind(':')?;
        let name = &before[colon + 1..];
        let starts_word = before[..colon]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        (starts_word && !name.is_empty() && name.chars().all(is_code_char)).then_some((colon, name))
    })?;
    let e = emoji(name)?;
    Some(complete(text, colon, cursor - 1, e))
}

/// The byte offset in `text` of a position the DOM counts in UTF-16 code units (a textarea's
/// `selectionStart`).
pub fn byte_offset(text: &str, utf16: u32) -> usize {
    let mut units = 0u32;
    for (i, c) in text.char_indices() {
        if units >= utf16 {
            return i;
        }
        units += c.len_utf16() as u32;
    }
    text.len()
}

/// The UTF-16 position of byte offset `byte` in `text` (for `setSelectionRange`).
pub fn utf16_offset(text: &str, byte: usize) -> u32 {
    text.get(..byte)
        .unwrap_or(text)
        .chars()
        .map(|c| c.len_utf16() as u32)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picker_searches_shortcodes_and_names() {
        assert_eq!(picker("", 3).len(), 3);
        let first = picker("thumbs", 5);
        assert!(first.iter().any(|(e, _)| *e == "👍"), "{first:?}");
        let party = picker(":tada:", 5);
        assert_eq!(party.first().map(|(e, _)| *e), Some("🎉"));
        assert!(picker("no such emoji at all", 5).is_empty());
    }

    #[test]
    fn known_shortcodes_become_emoji_on_send() {
        assert_eq!(replace_all("great :thumbsup: :+1:"), "great 👍 👍");
        assert_eq!(replace_all(":tada::tada:"), "🎉🎉");
        assert_eq!(replace_all("at 10:30 :nope: :"), "at 10:30 :nope: :");
        assert_eq!(
            replace_all("`:tada:` and ```\n:tada:\n``` but :tada:"),
            "`:tada:` and ```\n:tada:\n``` but 🎉"
        );
    }

    #[test]
    fn suggestions_while_typing() {
        let text = "nice :thu";
        let (colon, typed) = typing_at(text, text.len()).unwrap_or((0, ""));
        assert_eq!((colon, typed), (5, "thu"));
        let list = suggestions(typed);
        assert_eq!(list.first(), Some(&("thumbsup", "👍")));
        assert!(list.len() <= MAX_SUGGESTIONS);
        assert!(list.iter().all(|(code, _)| code.starts_with("thu")));
        // Picking one.
        assert_eq!(
            complete(text, colon, text.len(), "👍"),
            ("nice 👍".into(), 9)
        );
        // Not a shortcode: a time, one letter, inside a word.
        assert_eq!(typing_at("at 10:30", 8), None);
        assert_eq!(typing_at(":t", 2), None);
        assert_eq!(typing_at("a:thu", 5), None);
        assert!(suggestions("zzzz").is_empty());
        // The exact name first.
        assert_eq!(suggestions("ok").first().map(|s| s.0), Some("ok"));
    }

    #[test]
    fn dom_positions_count_utf16() {
        let text = "👍 :ta";
        assert_eq!(byte_offset(text, 6), text.len());
        assert_eq!(byte_offset(text, 2), 4);
        assert_eq!(utf16_offset(text, 4), 2);
        assert_eq!(utf16_offset(text, text.len()), 6);
    }

    #[test]
    fn typing_the_closing_colon_completes() {
        assert_eq!(
            complete_closed("yes :thumbsup:", 14),
            Some(("yes 👍".into(), 8))
        );
        assert_eq!(complete_closed(":+1: more", 4), Some(("👍 more".into(), 4)));
        assert_eq!(complete_closed("yes :nothing_known:", 19), None);
        assert_eq!(complete_closed("10:30:", 6), None);
    }
}
