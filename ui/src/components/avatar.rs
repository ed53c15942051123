//! A round avatar with the name's initial, a colour picked from the name, and an optional
//! presence dot (green online, grey offline, hollow when unknown because we are offline).

use crate::state::Status;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct AvatarProps {
    pub name: AttrValue,
    /// `Some` draws a presence dot.
    #[prop_or_default]
    pub status: Option<Status>,
    /// Extra classes, e.g. `small`.
    #[prop_or_default]
    pub class: Classes,
}

/// One of eight colour classes, stable for a name.
pub fn hue_class(name: &str) -> String {
    let hash = name
        .to_lowercase()
        .bytes()
        .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    format!("hue-{}", hash % 8)
}

#[function_component]
pub fn Avatar(props: &AvatarProps) -> Html {
    let initial: String = props
        .name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into());
    let dot = props.status.map(|status| {
        let (label, class) = match status {
            Status::Online => ("online", Some("online")),
            Status::Offline => ("offline", None),
            Status::Unknown => ("presence unknown", Some("unknown")),
        };
        html! {
            <span class={classes!("presence-dot", class)} title={label}>
                <span class="sr-only">{ label }</span>
            </span>
        }
    });
    html! {
        <span class={classes!("avatar", hue_class(&props.name), props.class.clone())}>
            <span class="avatar-initial" aria-hidden="true">{ initial }</span>
            { dot }
        </span>
    }
}
