//! A reply's quoted preview: the original's author and first line, "deleted message" once it
//! is deleted, "original message" when it is not known here. Clicking it jumps to the
//! original (the list loads older history until it is there). The composer shows the same
//! line for the message being answered, with a button to stop replying.

use super::icon::{Icon, IconView};
use protocol::ipc::Quote;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ReplyQuoteProps {
    pub quote: Option<Quote>,
    /// Go to the original.
    pub onjump: Callback<()>,
}

fn quote_line(quote: Option<&Quote>) -> Html {
    match quote {
        Some(q) if q.deleted => html! {
            <>
                <span class="quote-author"><bdi>{ q.sender_name.clone() }</bdi></span>
                <span class="quote-text deleted">{ "deleted message" }</span>
            </>
        },
        Some(q) => html! {
            <>
                <span class="quote-author"><bdi>{ q.sender_name.clone() }</bdi></span>
                <span class="quote-text"><bdi>{ q.text.clone() }</bdi></span>
            </>
        },
        None => html! { <span class="quote-text deleted">{ "original message" }</span> },
    }
}

#[function_component]
pub fn ReplyQuote(props: &ReplyQuoteProps) -> Html {
    let onclick = {
        let onjump = props.onjump.clone();
        Callback::from(move |_: MouseEvent| onjump.emit(()))
    };
    html! {
        <button type="button" class="reply-quote" title="Go to the original message" {onclick}>
            <IconView icon={Icon::Reply} />
            { quote_line(props.quote.as_ref()) }
        </button>
    }
}

#[derive(Properties, PartialEq)]
pub struct ReplyingProps {
    pub quote: Quote,
    pub oncancel: Callback<()>,
}

/// Above the composer: "Replying to bob: first line" and ✕.
#[function_component]
pub fn Replying(props: &ReplyingProps) -> Html {
    let onclick = {
        let oncancel = props.oncancel.clone();
        Callback::from(move |_: MouseEvent| oncancel.emit(()))
    };
    html! {
        <div class="replying" role="status">
            <IconView icon={Icon::Reply} />
            <span class="replying-label">{ "Replying to" }</span>
            { quote_line(Some(&props.quote)) }
            <button type="button" class="icon-button small" title="Cancel reply (Esc)"
                aria-label="Cancel reply" {onclick}>
                <IconView icon={Icon::Close} />
            </button>
        </div>
    }
}
