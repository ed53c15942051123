//! Attachments in the window (issue 14).

use super::*;

/// What these steps read from the page, in one round trip.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Files {
    messages: Vec<FilesMessage>,
    /// The image viewer, when open: its title and whether its image is decoded (natural width).
    viewer: Option<(String, u32)>,
    /// The drop overlay is shown.
    drop_overlay: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilesMessage {
    seq: Option<String>,
    pending: bool,
    /// `(attachment id, natural width once decoded, src scheme)` of each inline image.
    images: Vec<(String, u32, String)>,
    /// `(attachment id, name, meta line)` of each file card.
    cards: Vec<(String, String, String)>,
    /// Names of files still uploading.
    uploads: Vec<String>,
    /// The upload's progress bar: percent done.
    percent: Option<u32>,
}

const FILES_SCRIPT: &str = r#"
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const text = (sel, root) => {
  const el = (root || document).querySelector(sel);
  return el ? el.textContent.trim() : null;
};
const viewer = document.querySelector('.modal.image-viewer');
const full = viewer ? viewer.querySelector('img.viewer-image') : null;
return {
  viewer: viewer ? [text('#modal-title', viewer) || '', full && full.complete ? full.naturalWidth : 0] : null,
  drop_overlay: !!document.querySelector('.drop-overlay'),
  messages: all('.messages li.message').map(li => {
    const bar = li.querySelector('.upload-progress progress');
    return {
      seq: li.getAttribute('data-seq'),
      pending: li.classList.contains('pending'),
      images: all('.attachment-image', li).map(b => {
        const img = b.querySelector('img.attachment-thumb');
        const src = img ? (img.getAttribute('src') || '') : '';
        return [b.getAttribute('data-attachment') || '',
          img && img.complete && src ? img.naturalWidth : 0, src.split(':')[0]];
      }),
      cards: all('.attachments > .file-card', li).map(c => [c.getAttribute('data-attachment') || '',
        text('.file-name', c) || '', text('.file-meta', c) || '']),
      uploads: all('.upload-list .file-name', li).map(e => e.textContent.trim()),
      percent: bar ? parseInt(bar.getAttribute('data-percent') || '0', 10) : null,
    };
  }),
};
"#;

/// Waits until `pick` finds what it wants (see `Window::wait_page`), and says so.
async fn wait_for<T>(
    window: &Window,
    what: &str,
    timeout: Duration,
    pick: impl FnMut(&Files) -> Option<T>,
) -> T {
    let found = window.wait_page(FILES_SCRIPT, what, timeout, pick).await;
    note(&format!("saw {what}"));
    found
}

/// Drops files on the window as the window manager would: the app's drag-and-drop events
/// (the UI's own path from there on: the drop handler sends them). A WebDriver session cannot
/// drive the system's file picker or a real drag from another application.
async fn drop_files(window: &Window, paths: &[&Path]) {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    window
        .client
        .execute(
            "const [paths] = arguments; const ev = window.__TAURI__.event; \
             return ev.emit('tauri://drag-enter', {paths, position: {x: 300, y: 300}}) \
               .then(() => ev.emit('tauri://drag-drop', {paths, position: {x: 300, y: 300}}));",
            vec![json!(paths)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot drop files on the window: {e}"));
}

/// A real PNG: a colour gradient in bands, `w` × `h`.
fn picture(w: u32, h: u32) -> Vec<u8> {
    common::png::encode(w, h, |x, y| {
        let band = (y * 8 / h) % 2 == 0;
        [
            (x * 200 / w) as u8 + 40,
            if band { 120 } else { 60 },
            (y * 200 / h) as u8 + 40,
        ]
    })
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The attachments of the room's messages, as the server has them: (body, attachments).
async fn server_files(bob: &Bob, room: RoomId) -> Vec<(String, Vec<protocol::Attachment>)> {
    bob.history(room)
        .await
        .events
        .into_iter()
        .filter_map(|e| match e.event {
            EventBody::Message {
                body, attachments, ..
            } if !attachments.is_empty() => Some((body, attachments)),
            _ => None,
        })
        .collect()
}

async fn bob_download(bob: &Bob, id: &str) -> Vec<u8> {
    let response = rest(bob.api.download(id, false, None)).await;
    response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("bob's download of {id}: {e}"))
        .to_vec()
}

/// Bob uploads a file and sends it as a message.
async fn bob_sends_file(
    bob: &Bob,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> protocol::Attachment {
    let attachment: protocol::Attachment =
        rest(bob.api.upload(room, name, bytes, None, None)).await;
    let message = SendMessage {
        id: format!("file-{}", short_tag()),
        body: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_room: false,
        attachments: vec![attachment.id.clone()],
    };
    rest(bob.api.send_message(room, &message)).await;
    attachment
}

/// Attachments (issue 14): alice drops a picture and a large file on the window. The large
/// one's upload shows its progress bar (uploads run slowed down in this run, see the app
/// launcher) and is sent once done; the picture shows inline, decoded from bytes the backend
/// fetched (`blob:` URL: the page loads nothing from the server). Bob downloads both byte for
/// byte. Bob sends a file: alice sees its card (name, size, type). Clicking the picture opens
/// the viewer with the whole image.
pub(crate) async fn attachments(window: &Window, bob: &Bob, room: RoomId, dir: &Path) {
    let photo = picture(640, 360);
    let photo_path = dir.join("trailhead.png");
    let big = noise(6_000_000, 14);
    let big_path = dir.join("route-gpx-export.bin");
    std::fs::write(&photo_path, &photo)
        .and_then(|()| std::fs::write(&big_path, &big))
        .unwrap_or_else(|e| panic!("cannot write the files to attach: {e}"));

    // The large file first: its upload is slow enough to be seen.
    drop_files(window, &[&big_path]).await;
    let percent = wait_for(window, "the upload's progress bar mid-way", UI_WAIT, |p| {
        p.messages
            .iter()
            .find(|m| m.uploads == ["route-gpx-export.bin"] && m.pending)
            .and_then(|m| m.percent)
            // Well inside 1..99 %, so the bar shows it.
            .filter(|pc| (20..=80).contains(pc))
    })
    .await;
    note(&format!("upload at {percent} %"));
    window.shot("12-upload-progress").await;
    // Still uploading after the shot: the shot shows the bar mid-way.
    let page: Files = window.read_page(FILES_SCRIPT).await;
    assert!(
        page.messages
            .iter()
            .any(|m| m.uploads == ["route-gpx-export.bin"] && m.percent.is_some_and(|pc| pc < 100)),
        "the upload finished before the screenshot; the page: {page:#?}"
    );
    drop_files(window, &[&photo_path]).await;
    let (big_id, image_id) = wait_for(
        window,
        "both messages sent, the picture shown inline",
        RECONNECT_WAIT,
        |p| {
            let card = p
                .messages
                .iter()
                .filter(|m| m.seq.is_some() && !m.pending)
                .flat_map(|m| m.cards.iter())
                .find(|c| c.1 == "route-gpx-export.bin")
                .map(|c| c.0.clone())?;
            let image = p
                .messages
                .iter()
                .filter(|m| m.seq.is_some())
                .flat_map(|m| m.images.iter())
                .find(|(_, width, scheme)| *width > 0 && scheme == "blob")
                .map(|i| i.0.clone())?;
            Some((card, image))
        },
    )
    .await;
    window.shot("13-inline-image").await;

    // Bob: each file once, byte for byte.
    let on_server = server_files(bob, room).await;
    let ids: Vec<&str> = on_server
        .iter()
        .flat_map(|(_, a)| a.iter().map(|a| a.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [big_id.as_str(), image_id.as_str()],
        "each file sent once"
    );
    assert_eq!(
        bob_download(bob, &big_id).await,
        big,
        "the large file, byte for byte"
    );
    assert_eq!(
        bob_download(bob, &image_id).await,
        photo,
        "the picture, byte for byte"
    );

    // Bob sends a file: a card with its name, size and type.
    let agenda = noise(48_213, 3);
    let sent = bob_sends_file(bob, room, "meeting-agenda.pdf.bin", agenda).await;
    wait_for(window, "bob's file card", UI_WAIT, |p| {
        p.messages
            .iter()
            .flat_map(|m| m.cards.iter())
            .find(|c| c.0 == sent.id && c.2 == "48 KB · File")
            .map(|_| ())
    })
    .await;
    window.shot("14-file-card").await;

    // The viewer: the whole picture.
    window
        .click(&format!(".attachment-image[data-attachment='{image_id}']"))
        .await;
    wait_for(
        window,
        "the image viewer with the whole picture",
        UI_WAIT,
        |p| {
            p.viewer
                .as_ref()
                .filter(|(title, width)| title == "trailhead.png" && *width == 640)
                .map(|_| ())
        },
    )
    .await;
    window.shot("15-image-viewer").await;
    window
        .click(".modal.image-viewer button[aria-label='Close']")
        .await;
    wait_for(window, "the viewer closed", UI_WAIT, |p| {
        p.viewer.is_none().then_some(())
    })
    .await;

    // A screenshot pasted into the composer (a paste event carrying an image file, as the
    // clipboard gives it) is sent as "Pasted image.png".
    let shot = picture(200, 120);
    window
        .client
        .execute(
            "const [bytes] = arguments; const dt = new DataTransfer(); \
             dt.items.add(new File([new Uint8Array(bytes)], 'image.png', {type: 'image/png'})); \
             document.querySelector('#composer').dispatchEvent(new ClipboardEvent('paste', \
               {clipboardData: dt, bubbles: true, cancelable: true}));",
            vec![json!(shot)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot paste an image: {e}"));
    let pasted = wait_for(window, "the pasted image, sent and shown", UI_WAIT, |p| {
        p.messages
            .iter()
            .filter(|m| m.seq.is_some())
            .flat_map(|m| m.images.iter())
            .find(|(id, width, _)| *id != image_id && *width > 0)
            .map(|i| i.0.clone())
    })
    .await;
    let named: Vec<(String, String)> = server_files(bob, room)
        .await
        .into_iter()
        .flat_map(|(_, a)| a.into_iter().map(|a| (a.id, a.name)))
        .filter(|(id, _)| *id == pasted)
        .collect();
    assert_eq!(named, [(pasted.clone(), "Pasted image.png".to_owned())]);
    assert_eq!(
        bob_download(bob, &pasted).await,
        shot,
        "the pasted image, byte for byte"
    );
}
