//! Attaching files from the composer: the paperclip button (the system's file picker), files
//! dropped on the window (an overlay says where they go while they are dragged over it), and
//! images pasted from the clipboard ([`use_paste_files`]). Each sends its files at once as one
//! message of the open room; the message then shows its upload (`AttachmentList`).

use super::icon::{Icon, IconView};
use crate::format::now_ms;
use crate::ipc::{self, Drag};
use crate::state::{Action, AppContext};
use protocol::RoomId;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use yew::platform::spawn_local;
use yew::prelude::*;

/// A second drop event with the same files this soon after the first is the same drop.
const SAME_DROP_MS: i64 = 1000;

/// The files of the last drop and when (ms since the epoch).
type LastDrop = (Vec<String>, i64);

/// Sends `paths` to `room`; the pending message appears through its event.
fn send_paths(state: &AppContext, room: RoomId, paths: Vec<String>) {
    if paths.is_empty() {
        return;
    }
    let d = state.dispatcher();
    spawn_local(async move {
        match ipc::send_files(room, paths).await {
            Ok(message) => d.dispatch(Action::Message(message)),
            Err(e) => d.dispatch(Action::Toast(e.user_message())),
        }
    });
}

#[derive(Properties, PartialEq)]
pub struct AttachButtonProps {
    pub room: RoomId,
}

/// The paperclip button, and the drop target while files are dragged over the window.
#[function_component]
pub fn AttachButton(props: &AttachButtonProps) -> Html {
    let state = use_context::<AppContext>();
    let dragging = use_state_eq(|| false);
    {
        let (dragging, state, room) = (dragging.clone(), state.clone(), props.room);
        use_effect_with(room, move |_| {
            let last: Rc<RefCell<Option<LastDrop>>> = Rc::default();
            let subs = ipc::listen_drags(move |drag| match drag {
                Drag::Over => dragging.set(true),
                Drag::Left => dragging.set(false),
                Drag::Dropped(paths) => {
                    dragging.set(false);
                    let now = now_ms();
                    let repeat = last
                        .borrow()
                        .as_ref()
                        .is_some_and(|(p, at)| *p == paths && now - at < SAME_DROP_MS);
                    if repeat {
                        return;
                    }
                    *last.borrow_mut() = Some((paths.clone(), now));
                    if let Some(state) = &state {
                        send_paths(state, room, paths);
                    }
                }
            });
            move || drop(subs)
        });
    }
    let pick = {
        let (state, room) = (state.clone(), props.room);
        Callback::from(move |_: MouseEvent| {
            let Some(state) = state.clone() else {
                return;
            };
            spawn_local(async move {
                match ipc::pick_files().await {
                    Ok(paths) => send_paths(&state, room, paths),
                    Err(e) => state.dispatch(Action::Toast(e.user_message())),
                }
            });
        })
    };
    html! {
        <>
            <button type="button" class="icon-button attach-button" aria-label="Attach files"
                title="Attach files (or drop them here, or paste an image)" onclick={pick}>
                <IconView icon={Icon::Paperclip} />
            </button>
            if *dragging {
                <div class="drop-overlay" aria-live="polite">
                    <div class="drop-box">
                        <IconView icon={Icon::Paperclip} />
                        <span>{ "Drop files to send them here" }</span>
                    </div>
                </div>
            }
        </>
    }
}

/// The composer's `onpaste`: an image (or other file) on the clipboard is sent as a file of
/// `room`; text pastes as usual.
#[hook]
pub fn use_paste_files(room: RoomId) -> Callback<Event> {
    let state = use_context::<AppContext>();
    use_callback((room, state), |e: Event, (room, state)| {
        let Some(state) = state.clone() else {
            return;
        };
        let Some(files) = e
            .dyn_ref::<web_sys::ClipboardEvent>()
            .and_then(|e| e.clipboard_data())
            .and_then(|data| data.files())
        else {
            return;
        };
        let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
        if files.is_empty() {
            return;
        }
        e.prevent_default();
        let room = *room;
        spawn_local(async move {
            for file in files {
                let name = pasted_name(&file.name(), &file.type_());
                let bytes = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                    Ok(buffer) => js_sys::Uint8Array::new(&buffer).to_vec(),
                    Err(_) => {
                        state.dispatch(Action::Toast(format!("Cannot read the pasted {name}")));
                        continue;
                    }
                };
                match ipc::send_bytes(room, name, bytes).await {
                    Ok(message) => state.dispatch(Action::Message(message)),
                    Err(e) => state.dispatch(Action::Toast(e.user_message())),
                }
            }
        });
    })
}

/// A pasted file's name: its own, or "Pasted image.png" (screenshots have none or a generic
/// one).
fn pasted_name(name: &str, content_type: &str) -> String {
    if !name.is_empty() && name != "image.png" {
        return name.to_string();
    }
    let ext = match content_type {
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "png",
    };
    format!("Pasted image.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_images_get_a_name() {
        assert_eq!(pasted_name("", "image/png"), "Pasted image.png");
        assert_eq!(pasted_name("image.png", "image/png"), "Pasted image.png");
        assert_eq!(pasted_name("", "image/jpeg"), "Pasted image.jpg");
        assert_eq!(pasted_name("plan.pdf", "application/pdf"), "plan.pdf");
    }
}
