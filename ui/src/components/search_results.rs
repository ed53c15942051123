//! Local full-text search results in the side bar; the matching words are highlighted (as
//! text, never as HTML) and a click opens the room.

use crate::format::short_time;
use protocol::ipc::SearchHit;
use protocol::RoomId;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct SearchResultsProps {
    pub hits: Rc<Vec<SearchHit>>,
    pub query: AttrValue,
    pub now: i64,
    /// `(room, seq)` of the chosen hit.
    pub onopen: Callback<(RoomId, u64)>,
}

/// Splits `text` into `(piece, is_match)` parts for the words of `query` (case-insensitive).
pub fn highlight(text: &str, query: &str) -> Vec<(String, bool)> {
    let words: Vec<String> = query
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let lower: Vec<(usize, char)> = text.char_indices().collect();
    let folded: String = text.chars().flat_map(char::to_lowercase).collect();
    // Only highlight when lowercasing kept char boundaries aligned (true for most text).
    if words.is_empty() || folded.len() != text.len() || lower.is_empty() {
        return vec![(text.to_string(), false)];
    }
    let mut marks = vec![false; text.len()];
    for w in &words {
        let mut from = 0;
        while let Some(at) = folded[from..].find(w.as_str()) {
            let start = from + at;
            marks[start..start + w.len()]
                .iter_mut()
                .for_each(|m| *m = true);
            from = start + w.len();
        }
    }
    let mut parts: Vec<(String, bool)> = Vec::new();
    for (i, c) in lower {
        let m = marks[i];
        match parts.last_mut() {
            Some((s, last)) if *last == m => s.push(c),
            _ => parts.push((c.to_string(), m)),
        }
    }
    parts
}

#[function_component]
pub fn SearchResults(props: &SearchResultsProps) -> Html {
    if props.hits.is_empty() {
        return html! {
            <div class="search-status muted" role="status">{ format!("No messages match “{}”", props.query) }</div>
        };
    }
    html! {
        <div class="search-results">
            <h2 class="section-title" role="status">
                { format!("{} result{}", props.hits.len(), if props.hits.len() == 1 { "" } else { "s" }) }
            </h2>
            <ul role="list">
            { for props.hits.iter().map(|hit| {
                let (room, seq) = (hit.room, hit.seq);
                let onopen = props.onopen.clone();
                let onclick = Callback::from(move |_: MouseEvent| onopen.emit((room, seq)));
                html! {
                    <li key={format!("{}-{}", hit.room.0, hit.seq)}>
                        <button type="button" class="search-hit" onclick={onclick}>
                            <span class="room-line">
                                <span class="hit-room"><bdi>{ hit.room_name.clone() }</bdi></span>
                                <span class="room-time">{ short_time(hit.ts, props.now) }</span>
                            </span>
                            <span class="hit-sender"><bdi>{ hit.sender_name.clone() }</bdi></span>
                            <span class="hit-body" dir="auto">
                                { for highlight(&hit.body, &props.query).into_iter().map(|(text, m)| {
                                    if m { html! { <mark>{ text }</mark> } } else { html! { { text } } }
                                }) }
                            </span>
                        </button>
                    </li>
                }
            }) }
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn marks_each_word_case_insensitively() {
        assert_eq!(
            highlight("Lunch at noon? lunch!", "LUNCH noon"),
            vec![
                ("Lunch".to_string(), true),
                (" at ".to_string(), false),
                ("noon".to_string(), true),
                ("? ".to_string(), false),
                ("lunch".to_string(), true),
                ("!".to_string(), false),
            ]
        );
        assert_eq!(highlight("abc", ""), vec![("abc".to_string(), false)]);
    }
}
