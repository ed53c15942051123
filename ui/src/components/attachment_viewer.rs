//! The image viewer: an image attachment at full size (as large as the window allows) in a
//! dialog, with its name, size and Save. Esc, the close button or a click beside it closes it.

use super::attachment_list::{human_size, save_file, use_attachment_url};
use super::icon::{Icon, IconView};
use super::modal::Modal;
use crate::state::AppContext;
use protocol::Attachment;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct AttachmentViewerProps {
    pub attachment: Attachment,
    pub onclose: Callback<()>,
}

#[function_component]
pub fn AttachmentViewer(props: &AttachmentViewerProps) -> Html {
    let state = use_context::<AppContext>();
    let a = &props.attachment;
    let url = use_attachment_url(
        AttrValue::from(a.id.clone()),
        false,
        AttrValue::from(a.content_type.clone()),
    );
    let save = {
        let a = a.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(state) = &state {
                save_file(state, &a);
            }
        })
    };
    let image = match url {
        Some(Ok(src)) => html! {
            <img class="viewer-image" {src} alt={a.name.clone()}
                width={a.width.map(|w| w.to_string())} height={a.height.map(|h| h.to_string())} />
        },
        Some(Err(e)) => html! { <p class="viewer-error" role="alert">{ e }</p> },
        None => html! { <p class="viewer-loading">{ "Loading…" }</p> },
    };
    let dims = match (a.width, a.height) {
        (Some(w), Some(h)) => format!(" · {w} × {h}"),
        _ => String::new(),
    };
    html! {
        <Modal title={a.name.clone()} onclose={props.onclose.clone()} class={classes!("image-viewer")}>
            <div class="viewer-stage">{ image }</div>
            <div class="viewer-footer">
                <span class="file-meta">{ format!("{}{dims}", human_size(a.size)) }</span>
                <button type="button" class="button small" onclick={save}>
                    <IconView icon={Icon::Download} />{ "Save" }
                </button>
            </div>
        </Modal>
    }
}
