//! The emoji picker: a search field over every emoji (by shortcode and name, from the same
//! build-time table as the composer's shortcodes) and a grid to click. Opens beside a message
//! to react with any emoji; Esc or a click outside closes it.

use crate::shortcodes;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Emoji shown at once (the search narrows it).
const SHOWN: usize = 160;

#[derive(Properties, PartialEq)]
pub struct EmojiPickerProps {
    /// The emoji chosen (the picker stays open; the owner closes it).
    pub onpick: Callback<String>,
    pub onclose: Callback<()>,
}

#[function_component]
pub fn EmojiPicker(props: &EmojiPickerProps) -> Html {
    let query = use_state(String::new);
    let input_ref = use_node_ref();
    {
        let input_ref = input_ref.clone();
        use_effect_with((), move |_| {
            if let Some(el) = input_ref.cast::<HtmlInputElement>() {
                let _ = el.focus();
            }
        });
    }
    let found = use_memo((*query).clone(), |q| shortcodes::picker(q, SHOWN));
    let oninput = {
        let query = query.clone();
        Callback::from(move |e: InputEvent| {
            query.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onkeydown = {
        let (onclose, onpick, found) = (props.onclose.clone(), props.onpick.clone(), found.clone());
        Callback::from(move |e: KeyboardEvent| match e.key().as_str() {
            "Escape" => {
                e.prevent_default();
                e.stop_propagation();
                onclose.emit(());
            }
            "Enter" => {
                e.prevent_default();
                if let Some((emoji, _)) = found.first() {
                    onpick.emit((*emoji).to_owned());
                }
            }
            _ => {}
        })
    };
    let close = {
        let onclose = props.onclose.clone();
        Callback::from(move |_: MouseEvent| onclose.emit(()))
    };
    let stop = Callback::from(|e: MouseEvent| e.stop_propagation());
    html! {
        <>
            <div class="picker-backdrop" onclick={close}></div>
            <div class="emoji-picker" role="dialog" aria-label="Choose a reaction" onclick={stop}>
                <input ref={input_ref} type="search" class="picker-search" placeholder="Search emoji"
                    aria-label="Search emoji" value={(*query).clone()} {oninput} {onkeydown} />
                if found.is_empty() {
                    <p class="picker-empty muted">{ "No emoji found" }</p>
                } else {
                    <div class="picker-grid" role="listbox" aria-label="Emoji">
                        { for found.iter().map(|(emoji, label)| {
                            let onclick = {
                                let (onpick, emoji) = (props.onpick.clone(), (*emoji).to_owned());
                                Callback::from(move |_: MouseEvent| onpick.emit(emoji.clone()))
                            };
                            html! {
                                <button type="button" class="picker-emoji" role="option" title={label.clone()}
                                    aria-label={label.clone()} data-emoji={*emoji} {onclick}>{ *emoji }</button>
                            }
                        }) }
                    </div>
                }
            </div>
        </>
    }
}
