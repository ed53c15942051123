//! The files of a message. Images show inline as thumbnails (a click opens the viewer with the
//! whole image); other files as a card (name, size, type) with Save. A message still in the
//! outbox shows its files with the upload's progress bar and Cancel.
//!
//! Bytes come from the backend only ([`ipc::attachment_url`] makes a `blob:` URL of them): the
//! page never loads a server URL, so the CSP needs nothing beyond `img-src blob:`.

use super::attachment_viewer::AttachmentViewer;
use super::icon::{Icon, IconView};
use crate::ipc;
use crate::state::{Action, AppContext};
use protocol::ipc::{MessageStatus, MessageView, UploadView};
use protocol::Attachment;
use std::cell::RefCell;
use std::rc::Rc;
use yew::platform::spawn_local;
use yew::prelude::*;

/// Longest side of an inline image, in CSS pixels (the server's thumbnails are 320).
const INLINE_MAX: u32 = 320;

/// "812 B", "48 KB", "3.4 MB".
pub fn human_size(bytes: u64) -> String {
    const KB: f64 = 1000.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{} MB", one_decimal(b / (KB * KB)))
    } else {
        format!("{} GB", one_decimal(b / (KB * KB * KB)))
    }
}

/// "3.4", "250" (no ".0").
fn one_decimal(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A short name for a media type: "PNG image", "PDF", "ZIP", "file".
pub fn kind_label(content_type: &str) -> String {
    let (top, sub) = content_type.split_once('/').unwrap_or((content_type, ""));
    let sub = sub.split(';').next().unwrap_or("").trim();
    match (top, sub) {
        ("image", s) if !s.is_empty() => format!("{} image", s.to_uppercase()),
        ("application", "octet-stream") | ("", _) => "File".into(),
        ("application", "pdf") => "PDF".into(),
        ("application", "zip") => "ZIP".into(),
        ("text", "plain") => "Text".into(),
        (t, s) if !s.is_empty() => format!("{} ({t})", s.to_uppercase()),
        (t, _) => t.to_string(),
    }
}

/// The size an image is shown at: at most [`INLINE_MAX`] on its longer side.
fn inline_size(a: &Attachment) -> (u32, u32) {
    match (a.width, a.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => {
            let scale = (INLINE_MAX as f64 / w.max(h) as f64).min(1.0);
            (
                ((w as f64 * scale).round() as u32).max(1),
                ((h as f64 * scale).round() as u32).max(1),
            )
        }
        _ => (INLINE_MAX, INLINE_MAX * 3 / 4),
    }
}

fn is_image(a: &Attachment) -> bool {
    a.content_type.starts_with("image/") && a.thumbnail
}

/// Loads an attachment's bytes as a `blob:` URL while mounted (revoked when it goes or
/// changes). `None` while loading; `Err` with a message when it failed.
#[hook]
pub fn use_attachment_url(
    id: AttrValue,
    thumbnail: bool,
    content_type: AttrValue,
) -> Option<Result<String, String>> {
    let url = use_state(|| None::<Result<String, String>>);
    {
        let url = url.clone();
        use_effect_with((id, thumbnail), move |(id, thumbnail)| {
            let alive = Rc::new(RefCell::new(true));
            let made = Rc::new(RefCell::new(None::<String>));
            {
                let (alive, made, id, thumbnail) =
                    (alive.clone(), made.clone(), id.clone(), *thumbnail);
                spawn_local(async move {
                    let result = ipc::attachment_url(&id, thumbnail, &content_type).await;
                    if !*alive.borrow() {
                        if let Ok(u) = &result {
                            ipc::revoke_url(u);
                        }
                        return;
                    }
                    if let Ok(u) = &result {
                        *made.borrow_mut() = Some(u.clone());
                    }
                    url.set(Some(result.map_err(|e| e.user_message())));
                });
            }
            move || {
                *alive.borrow_mut() = false;
                if let Some(u) = made.borrow_mut().take() {
                    ipc::revoke_url(&u);
                }
            }
        });
    }
    (*url).clone()
}

/// Asks where to save `attachment`, saves it there, and says how it went.
pub fn save_file(state: &AppContext, attachment: &Attachment) {
    let (d, id, name) = (
        state.dispatcher(),
        attachment.id.clone(),
        attachment.name.clone(),
    );
    spawn_local(async move {
        let path = match ipc::pick_save_path(&name).await {
            Ok(Some(path)) => path,
            Ok(None) => return,
            Err(e) => return d.dispatch(Action::Toast(e.user_message())),
        };
        match ipc::save_attachment(id, path).await {
            Ok(_) => d.dispatch(Action::Toast(format!("Saved {name}"))),
            Err(e) => d.dispatch(Action::Toast(format!(
                "{name} was not saved: {}",
                e.user_message()
            ))),
        }
    });
}

#[derive(Properties, PartialEq)]
pub struct AttachmentListProps {
    pub message: MessageView,
}

/// The files of a message (nothing when it has none).
#[function_component]
pub fn AttachmentList(props: &AttachmentListProps) -> Html {
    let state = use_context::<AppContext>();
    let viewing = use_state(|| None::<Attachment>);
    let Some(state) = state else {
        return Html::default();
    };
    let m = &props.message;
    if m.deleted || (m.attachments.is_empty() && m.uploads.is_empty()) {
        return Html::default();
    }
    let open = {
        let viewing = viewing.clone();
        Callback::from(move |a: Attachment| viewing.set(Some(a)))
    };
    let close = {
        let viewing = viewing.clone();
        Callback::from(move |()| viewing.set(None))
    };
    let (images, files): (Vec<&Attachment>, Vec<&Attachment>) =
        m.attachments.iter().partition(|a| is_image(a));
    let uploading = (!m.uploads.is_empty()).then(|| {
        let progress = state.uploads.get(&m.client_id).copied();
        html! {
            <UploadList uploads={m.uploads.clone()} client_id={m.client_id.clone()} room={m.room.0}
                pending={m.status == MessageStatus::Pending} {progress} />
        }
    });
    html! {
        <div class="attachments">
            if !images.is_empty() {
                <div class="attachment-images">
                    { for images.into_iter().map(|a| html! {
                        <AttachmentImage key={a.id.clone()} attachment={a.clone()} onopen={open.clone()} />
                    }) }
                </div>
            }
            { for files.into_iter().map(|a| html! { <FileCard key={a.id.clone()} attachment={a.clone()} /> }) }
            { uploading.unwrap_or_default() }
            if let Some(a) = &*viewing {
                <AttachmentViewer attachment={a.clone()} onclose={close} />
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct AttachmentImageProps {
    pub attachment: Attachment,
    pub onopen: Callback<Attachment>,
}

/// An image's thumbnail at its shown size (the space is kept while it loads).
#[function_component]
pub fn AttachmentImage(props: &AttachmentImageProps) -> Html {
    let a = &props.attachment;
    let url = use_attachment_url(AttrValue::from(a.id.clone()), true, AttrValue::from(""));
    let (w, h) = inline_size(a);
    let onclick = {
        let (onopen, a) = (props.onopen.clone(), a.clone());
        Callback::from(move |_: MouseEvent| onopen.emit(a.clone()))
    };
    let label = format!("{} — open", a.name);
    let img = match url {
        Some(Ok(src)) => html! {
            <img class="attachment-thumb" {src} alt={a.name.clone()} width={w.to_string()}
                height={h.to_string()} draggable="false" />
        },
        Some(Err(e)) => html! {
            <span class="attachment-thumb missing" title={e}>
                <IconView icon={Icon::File} /><span>{ a.name.clone() }</span>
            </span>
        },
        None => html! {
            <img class="attachment-thumb loading" alt="" width={w.to_string()} height={h.to_string()} />
        },
    };
    html! {
        <button type="button" class="attachment-image" title={label.clone()} aria-label={label}
            data-attachment={a.id.clone()} {onclick}>
            { img }
        </button>
    }
}

#[derive(Properties, PartialEq)]
pub struct FileCardProps {
    pub attachment: Attachment,
}

/// A file that is not shown inline: name, size and type, and Save.
#[function_component]
pub fn FileCard(props: &FileCardProps) -> Html {
    let state = use_context::<AppContext>();
    let a = &props.attachment;
    let save = {
        let a = a.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(state) = &state {
                save_file(state, &a);
            }
        })
    };
    html! {
        <div class="file-card" data-attachment={a.id.clone()}>
            <span class="file-icon"><IconView icon={Icon::File} /></span>
            <div class="file-info">
                <span class="file-name" title={a.name.clone()}><bdi>{ a.name.clone() }</bdi></span>
                <span class="file-meta">{ format!("{} · {}", human_size(a.size), kind_label(&a.content_type)) }</span>
            </div>
            <button type="button" class="chip" title={format!("Save {}", a.name)}
                aria-label={format!("Save {}", a.name)} onclick={save}>
                <IconView icon={Icon::Download} />{ "Save" }
            </button>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct UploadListProps {
    pub uploads: Vec<UploadView>,
    pub client_id: AttrValue,
    pub room: u64,
    /// Still to be sent (not failed).
    pub pending: bool,
    /// Bytes sent and the total, once the upload started.
    pub progress: Option<(u64, u64)>,
}

/// A pending message's files: their names and sizes, the progress bar and Cancel.
#[function_component]
pub fn UploadList(props: &UploadListProps) -> Html {
    let state = use_context::<AppContext>();
    let cancel = {
        let (client_id, room) = (props.client_id.to_string(), props.room);
        Callback::from(move |_: MouseEvent| {
            let Some(state) = &state else {
                return;
            };
            let (d, client_id) = (state.dispatcher(), client_id.clone());
            spawn_local(async move {
                match ipc::cancel_upload(client_id.clone()).await {
                    Ok(()) => d.dispatch(Action::Discarded {
                        room: protocol::RoomId(room),
                        client_id,
                    }),
                    Err(e) => d.dispatch(Action::Toast(e.user_message())),
                }
            });
        })
    };
    let total: u64 = props.uploads.iter().map(|u| u.size).sum();
    let (sent, total) = props.progress.unwrap_or((0, total));
    let percent = (sent.saturating_mul(100))
        .checked_div(total)
        .unwrap_or(100)
        .min(100);
    let status = if props.progress.is_some() {
        format!(
            "Uploading… {} of {} ({percent} %)",
            human_size(sent),
            human_size(total)
        )
    } else {
        "Waiting to upload…".to_string()
    };
    html! {
        <div class="upload-list">
            { for props.uploads.iter().map(|u| html! {
                <div class="file-card uploading">
                    <span class="file-icon"><IconView icon={Icon::File} /></span>
                    <div class="file-info">
                        <span class="file-name" title={u.name.clone()}><bdi>{ u.name.clone() }</bdi></span>
                        <span class="file-meta">{ human_size(u.size) }</span>
                    </div>
                </div>
            }) }
            if props.pending {
                <div class="upload-progress" role="status">
                    <progress max={total.max(1).to_string()} value={sent.to_string()}
                        aria-label="Upload progress" data-percent={percent.to_string()}></progress>
                    <span class="upload-status">{ status }</span>
                    <button type="button" class="chip" onclick={cancel}>
                        <IconView icon={Icon::Close} />{ "Cancel" }
                    </button>
                </div>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_kinds_read_well() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(48_213), "48 KB");
        assert_eq!(human_size(3_400_000), "3.4 MB");
        assert_eq!(human_size(250_000_000), "250 MB");
        assert_eq!(human_size(1_000_000_000), "1 GB");
        assert_eq!(kind_label("image/png"), "PNG image");
        assert_eq!(kind_label("application/pdf"), "PDF");
        assert_eq!(kind_label("application/octet-stream"), "File");
    }

    #[test]
    fn images_fit_the_inline_box() {
        let a = |w, h| Attachment {
            id: "0".repeat(32),
            name: "x.png".into(),
            size: 1,
            content_type: "image/png".into(),
            width: Some(w),
            height: Some(h),
            thumbnail: true,
        };
        assert_eq!(inline_size(&a(800, 400)), (320, 160));
        assert_eq!(inline_size(&a(64, 48)), (64, 48));
        assert_eq!(inline_size(&a(100, 1000)), (32, 320));
    }
}
