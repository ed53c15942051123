//! "alice is typing…" under the messages. The line keeps its height when empty so the
//! layout does not jump.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct TypingIndicatorProps {
    pub names: Vec<String>,
}

/// The sentence for a list of names.
pub fn typing_text(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [a] => Some(format!("{a} is typing…")),
        [a, b] => Some(format!("{a} and {b} are typing…")),
        [a, b, c] => Some(format!("{a}, {b} and {c} are typing…")),
        _ => Some("Several people are typing…".into()),
    }
}

/// [`typing_text`] as markup, each name isolated (`<bdi>`) so that a right-to-left name
/// cannot reorder the sentence. Same text.
fn typing_html(names: &[String]) -> Option<Html> {
    let b = |n: &String| html! { <bdi>{ n.clone() }</bdi> };
    Some(match names {
        [] => return None,
        [a] => html! { <>{ b(a) }{ " is typing…" }</> },
        [a, c] => html! { <>{ b(a) }{ " and " }{ b(c) }{ " are typing…" }</> },
        [a, c, d] => html! { <>{ b(a) }{ ", " }{ b(c) }{ " and " }{ b(d) }{ " are typing…" }</> },
        _ => html! { "Several people are typing…" },
    })
}

#[function_component]
pub fn TypingIndicator(props: &TypingIndicatorProps) -> Html {
    html! {
        <div class="typing" aria-live="polite">
            if let Some(text) = typing_html(&props.names) {
                <span class="typing-dots" aria-hidden="true"><span></span><span></span><span></span></span>
                <span>{ text }</span>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::typing_text;

    #[test]
    fn sentences() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(typing_text(&n(&[])), None);
        assert_eq!(typing_text(&n(&["al"])).unwrap(), "al is typing…");
        assert_eq!(
            typing_text(&n(&["al", "bo"])).unwrap(),
            "al and bo are typing…"
        );
        assert_eq!(
            typing_text(&n(&["a", "b", "c", "d"])).unwrap(),
            "Several people are typing…"
        );
    }
}
