//! The window, over WebDriver.

use super::*;

/// What the test reads from the page, in one round trip (see [`DOM_SCRIPT`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Dom {
    pub(crate) server_input: bool,
    pub(crate) username_input: bool,
    pub(crate) card_title: Option<String>,
    pub(crate) me: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) welcome: Option<String>,
    /// "You're not in any rooms yet."
    pub(crate) no_rooms_hint: bool,
    pub(crate) dialog: Option<String>,
    pub(crate) dialog_text: Option<String>,
    /// The composer's emoji shortcode suggestions, as shown (`:thumbsup:`).
    pub(crate) emoji_suggestions: Vec<String>,
    pub(crate) chat_title: Option<String>,
    pub(crate) chat_subtitle: Option<String>,
    pub(crate) composer: bool,
    pub(crate) composer_text: Option<String>,
    pub(crate) banner: Option<String>,
    /// The banner offers "Reconnect now".
    pub(crate) reconnect_button: bool,
    /// The "new messages" line is drawn.
    pub(crate) new_divider: bool,
    /// `document.hasFocus()`: the window is the one being read.
    pub(crate) focused: bool,
    /// The page's size (the window's inner size).
    pub(crate) inner: (u32, u32),
    /// The settings dialog's warning about unsent messages.
    pub(crate) unsent_warning: Option<String>,
    /// The settings dialog's "Start minimized" switch is on.
    pub(crate) start_minimized: bool,
    /// The untrusted-certificate prompt's fingerprint.
    pub(crate) cert_sha256: Option<String>,
    /// The account dialog's session list.
    pub(crate) sessions: Vec<DomSession>,
    /// The change-password form's error under the current password.
    pub(crate) password_error: Option<String>,
    pub(crate) typing: Option<String>,
    pub(crate) messages: Vec<DomMessage>,
    pub(crate) rooms: Vec<DomRoom>,
    pub(crate) members: Vec<DomMember>,
    pub(crate) alerts: Vec<String>,
    /// The notice in place of a room the user was removed or banned from: its explanation.
    pub(crate) removed_text: Option<String>,
    /// The settings dialog's "Show message text in notifications" switch (`None`: not shown).
    pub(crate) notification_text: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DomSession {
    pub(crate) current: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DomMessage {
    pub(crate) body: String,
    /// The text of each code block (`<pre>`).
    pub(crate) code: Vec<String>,
    /// The text of each list item.
    pub(crate) items: Vec<String>,
    /// `(text, title)` of each link: the title is the full target.
    pub(crate) links: Vec<(String, String)>,
    /// Every element inside the message text.
    pub(crate) tags: Vec<String>,
    pub(crate) seq: Option<String>,
    pub(crate) pending: bool,
    pub(crate) failed: bool,
    pub(crate) status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DomRoom {
    pub(crate) name: String,
    pub(crate) active: bool,
    /// The presence dot of a direct room: `Some(online)`; none for group rooms.
    pub(crate) online: Option<bool>,
    /// The dot's state: "online", "offline" or "unknown" (we are offline); "" without a dot.
    pub(crate) presence: String,
    pub(crate) preview: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DomMember {
    pub(crate) name: String,
    pub(crate) online: bool,
    /// The presence dot says we cannot know (we are offline).
    pub(crate) unknown: bool,
    pub(crate) status: String,
    pub(crate) owner: bool,
    /// The name is cut off (ellipsis) in the panel.
    pub(crate) name_clipped: bool,
}

pub(crate) const DOM_SCRIPT: &str = r#"
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const text = (sel, root) => {
  const el = (root || document).querySelector(sel);
  return el ? el.textContent.trim() : null;
};
const composer = document.querySelector('#composer');
return {
  server_input: !!document.querySelector('#server-url'),
  cert_sha256: text('#cert-sha256'),
  sessions: all('.session-row').map(r => ({ current: r.classList.contains('current') })),
  password_error: text('#current-password-error') || null,
  username_input: !!document.querySelector('#username'),
  card_title: text('.auth-card h1'),
  me: text('.me-name'),
  status: text('.me-status'),
  welcome: text('.welcome h1'),
  no_rooms_hint: all('.room-list .empty-hint').some(e => e.textContent.includes('not in any rooms')),
  dialog: text('.modal #modal-title'),
  dialog_text: text('.modal .modal-body'),
  emoji_suggestions: all('.emoji-suggestion .shortcode').map(e => e.textContent),
  chat_title: text('.chat-title h1'),
  chat_subtitle: text('.chat-subtitle'),
  composer: !!composer,
  composer_text: composer ? composer.value : null,
  banner: text('.banner .banner-text'),
  reconnect_button: all('.banner button').some(b => b.textContent.trim() === 'Reconnect now'),
  new_divider: !!document.querySelector('.new-divider'),
  focused: document.hasFocus(),
  inner: [window.innerWidth, window.innerHeight],
  unsent_warning: text('.unsent-warning'),
  start_minimized: all('.switch-row').some(r => r.textContent.includes('Start minimized')
    && r.querySelector('input') && r.querySelector('input').checked),
  typing: text('.typing') || null,
  messages: all('.messages li.message').map(li => ({
    body: text('.body', li) || '',
    code: all('.body pre', li).map(e => e.textContent),
    items: all('.body li', li).map(e => e.textContent.trim()),
    links: all('.body a', li).map(a => [a.textContent, a.title]),
    tags: all('.body *', li).map(e => e.tagName.toLowerCase()),
    seq: li.getAttribute('data-seq'),
    pending: li.classList.contains('pending'),
    failed: li.classList.contains('failed'),
    status: text('.status', li) || '',
  })),
  rooms: all('.room-item').map(b => {
    const dot = b.querySelector('.presence-dot');
    return {
      name: text('.room-name', b) || '',
      active: b.classList.contains('active'),
      online: dot ? dot.classList.contains('online') : null,
      presence: dot ? (dot.classList.contains('online') ? 'online'
        : dot.classList.contains('unknown') ? 'unknown' : 'offline') : '',
      preview: text('.room-preview', b) || '',
    };
  }),
  members: all('.member-list .member').map(b => {
    const name = b.querySelector('.member-name-text');
    return {
      name: text('.member-name', b) || '',
      online: !!b.querySelector('.presence-dot.online'),
      unknown: !!b.querySelector('.presence-dot.unknown'),
      status: text('.member-presence', b) || '',
      owner: !!b.querySelector('.owner-badge'),
      name_clipped: name ? name.scrollWidth > name.clientWidth : false,
    };
  }),
  alerts: all('[role=alert], .toast').map(e => e.textContent.trim()).filter(t => t),
  removed_text: text('.removed-text'),
  notification_text: (() => {
    const s = document.querySelector('.switch.notification-text');
    return s ? s.checked : null;
  })(),
};
"#;

pub(crate) struct Window {
    pub(crate) client: Client,
    pub(crate) shots: Shots,
}

impl Window {
    /// Starts the app through the driver (a new WebDriver session launches it).
    pub(crate) async fn open(driver: &Driver, app: &Path, shots: Shots) -> Window {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert("tauri:options".into(), json!({ "application": app }));
        let url = format!("http://127.0.0.1:{}", driver.port);
        let connect = async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        };
        let client = tokio::time::timeout(SESSION_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| {
                panic!("the app did not start through tauri-driver within {SESSION_TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("cannot start a WebDriver session with the app: {e}"));
        note("app started");
        Window { client, shots }
    }

    pub(crate) async fn dom(&self) -> Dom {
        let value = self
            .client
            .execute(DOM_SCRIPT, vec![])
            .await
            .unwrap_or_else(|e| panic!("cannot read the page: {e}"));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("unexpected page summary: {e}"))
    }

    /// Polls the page until `pick` finds what it wants; on timeout, saves a screenshot and
    /// fails with what the page showed last.
    pub(crate) async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Dom) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let dom = match self.client.execute(DOM_SCRIPT, vec![]).await {
                Ok(value) => serde_json::from_value::<Dom>(value).ok(),
                Err(_) => None,
            };
            if let Some(found) = dom.as_ref().and_then(&pick) {
                note(&format!(
                    "saw {what} ({} ms)",
                    started.elapsed().as_millis()
                ));
                return found;
            }
            if Instant::now() >= deadline {
                let shot = self.failure_shot(what).await;
                panic!(
                    "no {what} within {timeout:?} (screenshot: {shot}); the page showed: {dom:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` in the page and reads what it returns as `T`: one round trip for all a
    /// step looks at (each feature module has its own script and page type).
    pub(crate) async fn read_page<T: serde::de::DeserializeOwned>(&self, script: &str) -> T {
        let value = self
            .client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("cannot read the page: {e}"));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("unexpected page data: {e}"))
    }

    /// Reads the page with `script` until `pick` finds what it wants; a screenshot and the page
    /// data when `timeout` passes first.
    pub(crate) async fn wait_page<P, T>(
        &self,
        script: &str,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&P) -> Option<T>,
    ) -> T
    where
        P: serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let page: P = self.read_page(script).await;
            if let Some(found) = pick(&page) {
                return found;
            }
            if Instant::now() > deadline {
                let shot = self.failure_shot(what).await;
                panic!("no {what} within {timeout:?} (screenshot {shot}); the page: {page:#?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn failure_shot(&self, what: &str) -> String {
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self.shots.dir.join(format!("failed-{name}.png"));
        match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&path, png) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("not saved: {e}"),
            },
            Err(e) => format!("not taken: {e}"),
        }
    }

    /// Waits for an element; the UI renders asynchronously.
    pub(crate) async fn find(
        &self,
        locator: Locator<'_>,
        what: &str,
    ) -> fantoccini::elements::Element {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            match self.client.find(locator).await {
                Ok(element) => return element,
                Err(e) if Instant::now() >= deadline => {
                    let shot = self.failure_shot(what).await;
                    panic!("no element {what} within {UI_WAIT:?}: {e} (screenshot: {shot})");
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    pub(crate) async fn click_xpath(&self, xpath: &str) {
        let element = self.find(Locator::XPath(xpath), xpath).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {xpath}: {e}"));
    }

    /// Clicks if the element is there and still clickable (it may go away by itself).
    pub(crate) async fn try_click_xpath(&self, xpath: &str) {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => match element.click().await {
                Ok(_) => note(&format!("clicked {xpath}")),
                Err(e) => note(&format!("{xpath} went away before the click: {e}")),
            },
            Err(_) => note(&format!("no {xpath} to click")),
        }
    }

    pub(crate) async fn clear(&self, css: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css}: {e}"));
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(Locator::Css(css), css).await;
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Waits until the current DOM has been painted at rest: every finite CSS animation or
    /// transition (a dialog's pop/fade-in) has finished, then two frames. A WebDriver screenshot
    /// shows the last painted frame, which can lag behind the DOM the waits just checked, and a
    /// shot taken mid-animation shows a half-transparent dialog. Infinite animations (spinners)
    /// are not waited for.
    pub(crate) async fn painted(&self) {
        let script = "const done = arguments[arguments.length - 1]; \
                      const finite = document.getAnimations().filter(a => \
                        isFinite(a.effect ? a.effect.getComputedTiming().endTime : Infinity)); \
                      Promise.all(finite.map(a => a.finished.catch(() => null))).then(() => \
                        requestAnimationFrame(() => requestAnimationFrame(() => done(true))));";
        match tokio::time::timeout(UI_WAIT, self.client.execute_async(script, vec![])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("cannot wait for a paint: {e}"),
            Err(_) => panic!("the window painted no frame within {UI_WAIT:?}"),
        }
    }

    pub(crate) async fn shot(&self, name: &str) {
        self.painted().await;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("cannot take screenshot {name}: {e}"));
        let path = self.shots.dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        note(&format!("screenshot {}", path.display()));
    }

    /// Ends the WebDriver session (the app quits).
    pub(crate) async fn close(self) {
        if let Err(e) = tokio::time::timeout(UI_WAIT, self.client.close()).await {
            note(&format!("closing the session timed out: {e}"));
        }
    }
}
