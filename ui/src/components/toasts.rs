//! Short notices at the bottom of the window for errors of background actions; each goes away
//! by itself after a few seconds or when dismissed.

use super::icon::{Icon, IconView};
use crate::state::{Action, AppContext, Toast};
use yew::prelude::*;

const SHOW_MS: u32 = 6_000;

#[derive(Properties, PartialEq)]
struct ToastItemProps {
    toast: Toast,
    ondismiss: Callback<u32>,
}

#[function_component]
fn ToastItem(props: &ToastItemProps) -> Html {
    {
        let id = props.toast.id;
        let ondismiss = props.ondismiss.clone();
        use_effect_with(id, move |_| {
            let timer = gloo::timers::callback::Timeout::new(SHOW_MS, move || ondismiss.emit(id));
            move || drop(timer)
        });
    }
    let dismiss = {
        let id = props.toast.id;
        let ondismiss = props.ondismiss.clone();
        Callback::from(move |_: MouseEvent| ondismiss.emit(id))
    };
    html! {
        <div class="toast">
            <IconView icon={Icon::Alert} class="toast-icon" />
            <span class="toast-text">{ props.toast.text.clone() }</span>
            <button class="icon-button small" type="button" aria-label="Dismiss" onclick={dismiss}>
                <IconView icon={Icon::Close} />
            </button>
        </div>
    }
}

#[function_component]
pub fn Toasts() -> Html {
    let Some(state) = use_context::<AppContext>() else {
        return Html::default();
    };
    let ondismiss = {
        let d = state.dispatcher();
        Callback::from(move |id| d.dispatch(Action::DismissToast(id)))
    };
    html! {
        <div class="toasts" role="status" aria-live="polite">
            { for state.toasts.iter().map(|t| html! {
                <ToastItem key={t.id} toast={t.clone()} ondismiss={ondismiss.clone()} />
            }) }
        </div>
    }
}
