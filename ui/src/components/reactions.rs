//! Reactions under a message: each emoji with its count, who reacted in the tooltip, the
//! reader's own marked; clicking one toggles the reader's reaction. Also the quick-reaction
//! buttons of the hover bar ([`QUICK`]).

use protocol::event::Reaction;
use protocol::UserId;
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;

/// The hover bar's one-click reactions.
pub const QUICK: [&str; 5] = ["👍", "❤️", "😂", "🎉", "👀"];

#[derive(Properties, PartialEq)]
pub struct ReactionsProps {
    pub reactions: Vec<Reaction>,
    pub me: Option<UserId>,
    /// Names of users, for the tooltip.
    pub names: Rc<HashMap<UserId, String>>,
    /// `(emoji, remove)`: add the reader's reaction, or take it back.
    pub ontoggle: Callback<(String, bool)>,
    /// Open the emoji picker.
    pub onadd: Callback<()>,
}

/// "ann, bob and 2 others reacted with 👍" — "You" for the reader.
pub fn who_reacted(
    reaction: &Reaction,
    me: Option<UserId>,
    names: &HashMap<UserId, String>,
) -> String {
    const NAMED: usize = 8;
    let mut who: Vec<String> = reaction
        .users
        .iter()
        .take(NAMED)
        .map(|u| {
            if Some(*u) == me {
                "You".to_owned()
            } else {
                names.get(u).cloned().unwrap_or_else(|| "someone".into())
            }
        })
        .collect();
    let others = reaction.users.len().saturating_sub(NAMED);
    if others > 0 {
        who.push(format!(
            "{others} other{}",
            if others == 1 { "" } else { "s" }
        ));
    }
    let list = match who.len() {
        0 => String::new(),
        1 => who[0].clone(),
        n => format!("{} and {}", who[..n - 1].join(", "), who[n - 1]),
    };
    format!("{list} reacted with {}", reaction.emoji)
}

#[function_component]
pub fn Reactions(props: &ReactionsProps) -> Html {
    if props.reactions.is_empty() {
        return Html::default();
    }
    let add = {
        let onadd = props.onadd.clone();
        Callback::from(move |_: MouseEvent| onadd.emit(()))
    };
    html! {
        <div class="reactions" role="group" aria-label="Reactions">
            { for props.reactions.iter().map(|r| {
                let mine = props.me.is_some_and(|me| r.users.contains(&me));
                let title = who_reacted(r, props.me, &props.names);
                let onclick = {
                    let (ontoggle, emoji) = (props.ontoggle.clone(), r.emoji.clone());
                    Callback::from(move |_: MouseEvent| ontoggle.emit((emoji.clone(), mine)))
                };
                html! {
                    <button type="button" class={classes!("reaction", mine.then_some("mine"))}
                        title={title.clone()} aria-label={title} aria-pressed={mine.to_string()}
                        data-emoji={r.emoji.clone()} {onclick}>
                        <span class="reaction-emoji">{ r.emoji.clone() }</span>
                        <span class="reaction-count">{ r.users.len() }</span>
                    </button>
                }
            }) }
            <button type="button" class="reaction add-reaction" title="Add reaction"
                aria-label="Add reaction" onclick={add}>{ "+" }</button>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltip_names_who_reacted() {
        let names: HashMap<_, _> = [(UserId(2), "bob".to_owned()), (UserId(3), "cy".to_owned())]
            .into_iter()
            .collect();
        let r = Reaction {
            emoji: "👍".into(),
            users: vec![UserId(2), UserId(1), UserId(3)],
        };
        assert_eq!(
            who_reacted(&r, Some(UserId(1)), &names),
            "bob, You and cy reacted with 👍"
        );
        let r = Reaction {
            emoji: "🎉".into(),
            users: (1..=10).map(UserId).collect(),
        };
        assert!(who_reacted(&r, None, &names).ends_with("and 2 others reacted with 🎉"));
    }
}
