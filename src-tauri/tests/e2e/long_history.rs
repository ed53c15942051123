//! A long history in the window (issue 16, the bounded message list): scrolling back through
//! hundreds of messages to the room's first one keeps at most a window of rows in the DOM,
//! and "Jump to latest" comes back to the newest; back at the bottom, the timeline lets go of
//! the messages far above (the bounded timeline), which come back when scrolled to again.

use super::*;

/// Messages in the room: well over the list's window of 150 rows, and over the 400 loaded
/// messages past which the list, following the newest, drops the oldest
/// (`ui/src/state.rs` `TRIM_AT`).
const MESSAGES: usize = 450;
/// What the timeline keeps then (`KEEP_READING`).
const KEPT_AT_BOTTOM: usize = 200;
/// Rows the list draws at most (`ui/src/rows.rs` `WINDOW`), messages being a part of them.
const MOST_DRAWN: usize = 150;

/// What this step reads from the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Page {
    /// Messages drawn (`li.message`).
    drawn: usize,
    /// The first and last drawn message's text.
    first: Option<String>,
    last: Option<String>,
    /// The room's intro ("This is the beginning of the room.") is drawn.
    intro: bool,
    /// An older page is loading.
    loading: bool,
    jump_button: bool,
    /// The message list's scroll position.
    scroll_top: i64,
    /// Messages the timeline holds, drawn or not (the list's `data-loaded`).
    loaded: usize,
}

const PAGE_SCRIPT: &str = r#"
const list = document.querySelector('.message-scroll');
const msgs = Array.from(document.querySelectorAll('.messages li.message .body'));
return {
  drawn: msgs.length,
  first: msgs.length ? msgs[0].textContent.trim() : null,
  last: msgs.length ? msgs[msgs.length - 1].textContent.trim() : null,
  intro: !!document.querySelector('.room-intro'),
  loading: !!document.querySelector('.message-scroll .list-status .spinner'),
  jump_button: !!document.querySelector('.jump-latest'),
  scroll_top: list ? Math.round(list.scrollTop) : 0,
  loaded: list ? Number(list.dataset.loaded || 0) : 0,
};
"#;

async fn read(window: &Window) -> Page {
    window.read_page(PAGE_SCRIPT).await
}

/// Waits for `pick`, checking at every look that the list holds no more than its bound.
async fn wait_for<T>(window: &Window, what: &str, mut pick: impl FnMut(&Page) -> Option<T>) -> T {
    window
        .wait_page(PAGE_SCRIPT, what, UI_WAIT, |page: &Page| {
            assert!(
                page.drawn <= MOST_DRAWN,
                "{} messages drawn at once (at most {MOST_DRAWN}): {page:?}",
                page.drawn
            );
            pick(page)
        })
        .await
}

fn text(i: usize) -> String {
    format!("Archive message {i:03}")
}

/// Bob fills a new room with [`MESSAGES`] messages, then invites alice; she opens it, scrolls
/// back to its first message and jumps back to the latest.
pub(crate) async fn long_history(window: &Window, bob: &Bob, alice: UserId, tag: &str) {
    let name = format!("archive-{tag}");
    let room: protocol::rest::Room = rest(
        bob.api
            .create_room(&name, protocol::rest::Visibility::Private),
    )
    .await;
    // Before alice is in the room: nothing of this notifies her.
    for i in 0..MESSAGES {
        rest(bob.api.send(room.id, &format!("archive-{i}"), &text(i))).await;
    }
    rest(bob.api.invite(room.id, alice)).await;
    let item = format!(".room-item[aria-label='{name}']");
    window
        .wait("the archive room in the list", UI_WAIT, |d| {
            d.rooms.iter().any(|r| r.name == name).then_some(())
        })
        .await;
    window.click(&item).await;
    let newest = text(MESSAGES - 1);
    wait_for(window, "the newest archive message", |p| {
        (p.last.as_deref() == Some(newest.as_str())).then_some(())
    })
    .await;

    scroll_to_first(window).await;
    let top = read(window).await;
    assert!(
        top.jump_button,
        "scrolled back, the list offers to jump to the latest: {top:?}"
    );
    window.shot("13-long-history-top").await;

    window.click(".jump-latest").await;
    wait_for(window, "the newest message again, at the bottom", |p| {
        (p.last.as_deref() == Some(newest.as_str()) && !p.jump_button).then_some(())
    })
    .await;
    window.shot("13b-long-history-latest").await;
    // At the bottom with all of them loaded, the list lets go of the oldest ...
    wait_for(window, "the timeline trimmed at the bottom", |p| {
        (p.loaded == KEPT_AT_BOTTOM).then_some(())
    })
    .await;
    // ... and scrolling back brings them again, from the cache.
    scroll_to_first(window).await;
    window.click(".jump-latest").await;
    wait_for(window, "the newest message, once more", |p| {
        (p.last.as_deref() == Some(newest.as_str()) && !p.jump_button).then_some(())
    })
    .await;
}

/// Back to the first message, a scroll to the top at a time: older pages load and the window
/// of drawn rows moves; it never holds more than its bound.
async fn scroll_to_first(window: &Window) {
    let oldest = text(0);
    let mut steps = 0;
    loop {
        let page = read(window).await;
        if page.intro && page.first.as_deref() == Some(oldest.as_str()) {
            break;
        }
        steps += 1;
        assert!(steps < 100, "still not at the first message: {page:?}");
        let before = page.first.clone();
        window
            .client
            .execute(
                "document.querySelector('.message-scroll').scrollTop = 0;",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot scroll: {e}"));
        // Something earlier gets drawn (or the top is reached).
        wait_for(window, "earlier messages drawn", |p| {
            (!p.loading && (p.first != before || p.intro)).then_some(())
        })
        .await;
    }
}
