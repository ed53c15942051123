//! A message's text with its Markdown formatting: the tree from [`markup::parse`] mapped to DOM
//! nodes one by one (each element is the node's own [`markup::Node::tag`]; text is always a
//! text node, never parsed as HTML).
//!
//! Links open in the system browser (through [`ipc::open_url`]) only from here: the full target
//! shows on hover (`title`), a link whose text is not its target asks first and shows the real
//! target, and anything but `http`, `https` and `mailto` is refused (the parser never makes
//! such a link; checked again before opening). The `<a>` has no `href`, so neither the web
//! view nor any script can follow it without this handler.

use super::modal::Modal;
use crate::ipc;
use crate::mentions::{self, Piece};
use markup::{Element, Node};
use std::rc::Rc;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MessageTextProps {
    /// The message's source text (Markdown).
    pub text: AttrValue,
    /// Shown after the last block (e.g. "(edited)").
    #[prop_or_default]
    pub children: Html,
    /// Usernames the message mentions (from its `mentions` ids): their `@name` is highlighted.
    #[prop_or_default]
    pub mentions: Rc<Vec<String>>,
    /// The message says `@room` (highlighted as the reader's own).
    #[prop_or_default]
    pub mention_room: bool,
    /// The reader's username: their own mention stands out.
    #[prop_or_default]
    pub my_name: Option<AttrValue>,
}

/// What rendering text nodes needs besides the node.
struct Ctx<'a> {
    on_link: &'a Callback<Activated>,
    mentions: &'a [String],
    mention_room: bool,
    my_name: Option<&'a str>,
}

/// A link the user activated: its visible text and its target.
#[derive(Clone, PartialEq)]
struct Activated {
    text: String,
    href: String,
}

fn open(href: String, error: UseStateHandle<Option<String>>) {
    spawn_local(async move {
        if let Err(e) = ipc::open_url(&href).await {
            error.set(Some(format!("Could not open the link: {e}")));
        }
    });
}

#[function_component]
pub fn MessageText(props: &MessageTextProps) -> Html {
    let nodes = use_memo(props.text.clone(), |text| markup::parse(text));
    let confirm = use_state(|| None::<Activated>);
    let error = use_state(|| None::<String>);

    let on_link = {
        let (confirm, error) = (confirm.clone(), error.clone());
        Callback::from(move |link: Activated| {
            error.set(None);
            if markup::safe_href(&link.href).is_none() {
                error.set(Some("This link can't be opened.".into()));
            } else if markup::needs_confirm(&link.text, &link.href) {
                confirm.set(Some(link));
            } else {
                open(link.href, error.clone());
            }
        })
    };
    let close = {
        let confirm = confirm.clone();
        Callback::from(move |()| confirm.set(None))
    };
    let cancel = {
        let confirm = confirm.clone();
        Callback::from(move |_: MouseEvent| confirm.set(None))
    };
    let dialog = (*confirm).clone().map(|link| {
        let go = {
            let (confirm, error, href) = (confirm.clone(), error.clone(), link.href.clone());
            Callback::from(move |_: MouseEvent| {
                confirm.set(None);
                open(href.clone(), error.clone());
            })
        };
        html! {
            <Modal title="Open this link?" onclose={close}>
                <p>{ "The link says " }<bdi class="link-text">{ link.text.clone() }</bdi>
                    { " but goes to:" }</p>
                <p class="link-target" dir="ltr">{ link.href.clone() }</p>
                <div class="dialog-actions">
                    <button type="button" class="button" onclick={cancel} data-autofocus="true">{ "Cancel" }</button>
                    <button type="button" class="button primary" onclick={go}>{ "Open link" }</button>
                </div>
            </Modal>
        }
    });

    let ctx = Ctx {
        on_link: &on_link,
        mentions: &props.mentions,
        mention_room: props.mention_room,
        my_name: props.my_name.as_deref(),
    };
    html! {
        <>
            <div class="body rich" dir="auto">
                { for nodes.iter().map(|n| view(n, &ctx)) }
                { props.children.clone() }
            </div>
            if let Some(text) = &*error {
                <p class="error-text link-error" role="alert">{ text.clone() }</p>
            }
            { dialog.unwrap_or_default() }
        </>
    }
}

fn view(node: &Node, ctx: &Ctx) -> Html {
    let children = |nodes: &[Node]| -> Html { nodes.iter().map(|n| view(n, ctx)).collect() };
    let on_link = ctx.on_link;
    match node {
        Node::Text(text) if ctx.mentions.is_empty() && !ctx.mention_room => {
            html! { { text.clone() } }
        }
        Node::Text(text) => mentions::pieces(text, ctx.mentions, ctx.mention_room, ctx.my_name)
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(t) => html! { { t.to_owned() } },
                Piece::Mention { text, mine } => html! {
                    <span class={classes!("mention", mine.then_some("mine"))}>{ text.to_owned() }</span>
                },
            })
            .collect(),
        Node::Break => html! { <br /> },
        Node::Code(code) => html! { <code class="inline-code">{ code.clone() }</code> },
        Node::CodeBlock { text, .. } => html! {
            <pre class="code-block"><code>{ text.clone() }</code></pre>
        },
        Node::Element(Element::List { start: Some(start) }, items) => html! {
            <ol start={start.to_string()}>{ children(items) }</ol>
        },
        Node::Element(Element::Link { href }, content) => {
            let link = Activated {
                text: node.text(),
                href: href.clone(),
            };
            let onclick = {
                let (on_link, link) = (on_link.clone(), link.clone());
                Callback::from(move |e: MouseEvent| {
                    e.prevent_default();
                    on_link.emit(link.clone());
                })
            };
            let onkeydown = {
                let on_link = on_link.clone();
                Callback::from(move |e: KeyboardEvent| {
                    if e.key() == "Enter" {
                        e.prevent_default();
                        on_link.emit(link.clone());
                    }
                })
            };
            html! {
                <a class="link" role="link" tabindex="0" title={href.clone()} data-href={href.clone()}
                    onclick={onclick} onkeydown={onkeydown}>{ children(content) }</a>
            }
        }
        Node::Element(_, content) => {
            let tag = node.tag().unwrap_or("span");
            html! { <@{tag}>{ children(content) }</@> }
        }
    }
}
