//! `@username` mentions: what the composer suggests while one is typed (members of the room
//! first), which user ids a text mentions when it is sent (protocol §1.9: mentions travel as
//! ids, the `@name` text is for people), and the pieces of a text node to highlight. Pure
//! functions over text, tested on the host.

use protocol::UserId;

/// Suggestions shown at most.
pub const MAX_SUGGESTIONS: usize = 6;
/// `@room`: mentions every member (owners only).
pub const ROOM: &str = "room";

/// A user who can be mentioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: UserId,
    pub username: String,
    /// The name they chose to be shown, if any (matched as well as the username).
    pub display_name: Option<String>,
    /// A member of the room (listed before others).
    pub member: bool,
}

/// One line of the `@` suggestions: a user, or `@room` (every member; owners only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suggestion {
    User(Candidate),
    Room,
}

impl Suggestion {
    /// What completing it inserts after the `@`.
    pub fn word(&self) -> &str {
        match self {
            Suggestion::User(c) => &c.username,
            Suggestion::Room => ROOM,
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The mention being typed just before `cursor` (a byte offset): the `@`'s offset and the
/// letters typed after it (possibly none). `None` unless the `@` starts a word (so an e-mail
/// address is no mention).
pub fn typing_at(text: &str, cursor: usize) -> Option<(usize, &str)> {
    let before = text.get(..cursor)?;
    let at = before.rfind('@')?;
    let name = &before[at + 1..];
    if !name.chars().all(is_name_char) {
        return None;
    }
    let starts_word = before[..at]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '"' | '\'' | '*' | '_'));
    starts_word.then_some((at, name))
}

/// Who matches what was typed, by username or display name: names starting with it before
/// names containing it, members of the room before others, then by name; without `me`; at
/// most [`MAX_SUGGESTIONS`]. `@room` comes first for an owner (`room_too`) when it matches.
pub fn suggestions(
    typed: &str,
    candidates: &[Candidate],
    me: Option<UserId>,
    room_too: bool,
) -> Vec<Suggestion> {
    let typed = typed.to_lowercase();
    let mut found: Vec<(bool, bool, &Candidate)> = candidates
        .iter()
        .filter(|c| Some(c.id) != me)
        .filter_map(|c| {
            let names = [Some(&c.username), c.display_name.as_ref()];
            let names = names.iter().flatten().map(|n| n.to_lowercase());
            let (mut starts, mut contains) = (false, false);
            for name in names {
                starts |= name.starts_with(&typed)
                    || name.split_whitespace().any(|w| w.starts_with(&typed));
                contains |= name.contains(&typed);
            }
            if starts {
                Some((false, !c.member, c))
            } else if contains {
                Some((true, !c.member, c))
            } else {
                None
            }
        })
        .collect();
    found.sort_by(|a, b| {
        (a.0, a.1, a.2.username.to_lowercase()).cmp(&(b.0, b.1, b.2.username.to_lowercase()))
    });
    found.dedup_by(|a, b| a.2.id == b.2.id);
    let room = (room_too && ROOM.starts_with(&typed)).then_some(Suggestion::Room);
    room.into_iter()
        .chain(
            found
                .into_iter()
                .map(|(_, _, c)| Suggestion::User(c.clone())),
        )
        .take(MAX_SUGGESTIONS)
        .collect()
}

/// Replaces the `@typed` between `at` and `cursor` with `@username ` ; returns the new text
/// and the cursor after it.
pub fn complete(text: &str, at: usize, cursor: usize, username: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len() + username.len() + 2);
    out.push_str(&text[..at]);
    out.push('@');
    out.push_str(username);
    out.push(' ');
    let end = out.len();
    out.push_str(&text[cursor..]);
    (out, end)
}

/// Every `@word` of `text` that starts a word, outside code (between backticks), with its
/// byte range.
fn mention_words(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == '`' {
            in_code = !in_code;
        } else if c == '@'
            && !in_code
            && prev.is_none_or(|p| {
                p.is_whitespace() || matches!(p, '(' | '[' | '"' | '\'' | '*' | '_')
            })
        {
            let start = i + 1;
            let mut end = start;
            while let Some(&(j, d)) = iter.peek() {
                if !is_name_char(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            // A name does not end in punctuation ("@bob." at the end of a sentence).
            let name = text[start..end].trim_end_matches(['.', '-']);
            if !name.is_empty() {
                out.push((i, start + name.len(), name));
            }
            prev = text[..end].chars().next_back();
            continue;
        }
        prev = Some(c);
    }
    out
}

/// The ids of the users `text` mentions: each `@username` (case-insensitive) of a candidate,
/// in order of first mention, once each; and whether it says `@room`.
pub fn resolve(text: &str, candidates: &[Candidate]) -> (Vec<UserId>, bool) {
    let mut ids = Vec::new();
    let mut room = false;
    for (_, _, name) in mention_words(text) {
        if name.eq_ignore_ascii_case(ROOM) {
            room = true;
            continue;
        }
        if let Some(c) = candidates
            .iter()
            .find(|c| c.username.eq_ignore_ascii_case(name))
        {
            if !ids.contains(&c.id) {
                ids.push(c.id);
            }
        }
    }
    (ids, room)
}

/// A piece of a text node: plain text, or a mention to highlight (`mine`: it names the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Mention { text: &'a str, mine: bool },
}

/// Splits a text node of a message into plain text and the mentions it holds: `@name` of a
/// mentioned user (`names`, as the message's `mentions` resolve), and `@room` when the message
/// has `mention_room`. `my_name` marks the reader's own.
pub fn pieces<'a>(
    text: &'a str,
    names: &[String],
    mention_room: bool,
    my_name: Option<&str>,
) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let mut last = 0;
    for (start, end, name) in mention_words(text) {
        let is_room = mention_room && name.eq_ignore_ascii_case(ROOM);
        let named = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if !is_room && !named {
            continue;
        }
        let mine = is_room || my_name.is_some_and(|me| me.eq_ignore_ascii_case(name));
        if start > last {
            out.push(Piece::Text(&text[last..start]));
        }
        out.push(Piece::Mention {
            text: &text[start..end],
            mine,
        });
        last = end;
    }
    if last < text.len() || out.is_empty() {
        out.push(Piece::Text(&text[last..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u64, name: &str, member: bool) -> Candidate {
        Candidate {
            id: UserId(id),
            username: name.into(),
            display_name: None,
            member,
        }
    }

    fn words(found: &[Suggestion]) -> Vec<&str> {
        found.iter().map(Suggestion::word).collect()
    }

    #[test]
    fn typing_a_mention() {
        assert_eq!(typing_at("hi @bo", 6), Some((3, "bo")));
        assert_eq!(typing_at("@", 1), Some((0, "")));
        assert_eq!(typing_at("mail a@b", 8), None, "an address");
        assert_eq!(typing_at("@bob hi", 7), None, "a space ended it");
    }

    #[test]
    fn members_come_first_then_by_name() {
        let all = [
            c(1, "ann", true),
            c(2, "bob", false),
            c(3, "Bobby", true),
            c(4, "rob", true),
            c(5, "me", true),
        ];
        let me = Some(UserId(5));
        assert_eq!(words(&suggestions("bo", &all, me, false)), ["Bobby", "bob"]);
        assert_eq!(
            words(&suggestions("ob", &all, me, false)),
            ["Bobby", "rob", "bob"]
        );
        assert!(suggestions("m", &all, me, false).is_empty(), "not me");
    }

    #[test]
    fn display_names_match_too() {
        let mut ann = c(1, "ann", true);
        ann.display_name = Some("Annie Smith".into());
        let all = [ann, c(2, "sam", true)];
        assert_eq!(words(&suggestions("smi", &all, None, false)), ["ann"]);
        assert_eq!(words(&suggestions("s", &all, None, false)), ["ann", "sam"]);
    }

    #[test]
    fn room_is_offered_to_owners_only() {
        let all = [c(1, "rob", true), c(2, "ann", true)];
        assert_eq!(words(&suggestions("r", &all, None, true)), ["room", "rob"]);
        assert_eq!(words(&suggestions("", &all, None, true))[0], "room");
        assert_eq!(words(&suggestions("r", &all, None, false)), ["rob"]);
        assert_eq!(words(&suggestions("ann", &all, None, true)), ["ann"]);
    }

    #[test]
    fn completing_puts_the_name_and_a_space() {
        assert_eq!(complete("hi @bo!", 3, 6, "bob"), ("hi @bob !".into(), 8));
    }

    #[test]
    fn resolving_finds_known_names_once_and_room() {
        let all = [c(1, "ann", true), c(2, "bob", true)];
        assert_eq!(
            resolve(
                "@Bob and @ann, @bob again, @carl, mail x@ann `@ann` @room.",
                &all
            ),
            (vec![UserId(2), UserId(1)], true)
        );
        assert_eq!(resolve("no one", &all), (vec![], false));
    }

    #[test]
    fn pieces_mark_mentions_and_mine() {
        let names = vec!["bob".to_owned(), "ann".to_owned()];
        assert_eq!(
            pieces("hey @bob, @ann and @zed.", &names, false, Some("ann")),
            vec![
                Piece::Text("hey "),
                Piece::Mention {
                    text: "@bob",
                    mine: false
                },
                Piece::Text(", "),
                Piece::Mention {
                    text: "@ann",
                    mine: true
                },
                Piece::Text(" and @zed."),
            ]
        );
        assert_eq!(
            pieces("plain", &names, false, None),
            vec![Piece::Text("plain")]
        );
        assert_eq!(
            pieces("@room hi", &[], true, None),
            vec![
                Piece::Mention {
                    text: "@room",
                    mine: true
                },
                Piece::Text(" hi")
            ]
        );
    }
}
