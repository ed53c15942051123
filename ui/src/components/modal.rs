//! A modal dialog frame: title, close button, backdrop. Esc or a click on the backdrop closes
//! it; the first field (or button) gets the focus when it opens.

use super::icon::{Icon, IconView};
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ModalProps {
    pub title: AttrValue,
    pub onclose: Callback<()>,
    #[prop_or_default]
    pub children: Html,
    /// Extra classes for the panel (e.g. `wide`).
    #[prop_or_default]
    pub class: Classes,
}

#[function_component]
pub fn Modal(props: &ModalProps) -> Html {
    let panel = use_node_ref();
    {
        let panel = panel.clone();
        let onclose = props.onclose.clone();
        use_effect_with((), move |_| {
            if let Some(el) = panel.cast::<web_sys::Element>() {
                let first = el
                    .query_selector("[data-autofocus], input, textarea, select, .modal-body button")
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
                if let Some(first) = first {
                    let _ = first.focus();
                }
            }
            let keys = gloo::events::EventListener::new_with_options(
                &gloo::utils::document(),
                "keydown",
                gloo::events::EventListenerOptions::enable_prevent_default(),
                move |e| {
                    if let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() {
                        if e.key() == "Escape" {
                            e.prevent_default();
                            onclose.emit(());
                        }
                    }
                },
            );
            move || drop(keys)
        });
    }
    let on_backdrop = {
        let onclose = props.onclose.clone();
        Callback::from(move |e: MouseEvent| {
            if e.target() == e.current_target() {
                onclose.emit(());
            }
        })
    };
    let on_close = {
        let onclose = props.onclose.clone();
        Callback::from(move |_: MouseEvent| onclose.emit(()))
    };
    html! {
        <div class="backdrop" onmousedown={on_backdrop}>
            <div ref={panel} class={classes!("modal", props.class.clone())} role="dialog"
                aria-modal="true" aria-labelledby="modal-title">
                <header class="modal-header">
                    <h2 id="modal-title">{ props.title.clone() }</h2>
                    <button class="icon-button" type="button" aria-label="Close" title="Close (Esc)"
                        onclick={on_close}>
                        <IconView icon={Icon::Close} />
                    </button>
                </header>
                <div class="modal-body">{ props.children.clone() }</div>
            </div>
        </div>
    }
}
