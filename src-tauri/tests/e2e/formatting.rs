//! Markdown and links in the window (issue 13).

use super::*;

/// Markdown (issue 13): alice sends a message with a list, a code block, links and raw HTML;
/// the window shows them as such (raw HTML as text), bob receives the source text. A link whose
/// text is not its target asks first and shows the target; one whose text is its target opens
/// at once in the browser (the stand-in xdg-open records it); the capability refuses any other
/// scheme even when asked directly.
pub(crate) async fn formatting_and_links(
    window: &Window,
    bob: &mut Bob,
    room: RoomId,
    tag: &str,
    home: &Path,
) {
    let trail = format!("https://maps.example/trail-{tag}");
    let bare = format!("https://example.org/weather-{tag}");
    let formatted = format!(
        "Packing list for **Saturday**:\n- boots\n- water\n\n```\nmeet --at 09:00 <trailhead>\n```\n\
         Map: [the trail]({trail}) and {bare}\n<b>not bold</b>"
    );
    // Multi-line text goes in as one input event (Enter would send each line).
    window
        .client
        .execute(
            "const el = document.querySelector('#composer'); el.value = arguments[0]; \
             el.dispatchEvent(new InputEvent('input', {bubbles: true}));",
            vec![json!(formatted)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot fill the composer: {e}"));
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, &formatted, UI_WAIT).await;
    window
        .wait("the formatted message", UI_WAIT, |d| {
            d.messages
                .iter()
                .find(|m| m.body.starts_with("Packing list") && m.seq.is_some())
                .filter(|m| {
                    m.items == ["boots", "water"]
                        && m.code == ["meet --at 09:00 <trailhead>"]
                        && m.links
                            == [
                                ("the trail".to_string(), trail.clone()),
                                (bare.clone(), bare.clone()),
                            ]
                        && m.body.contains("<b>not bold</b>")
                        && m.tags.iter().any(|t| t == "strong")
                        && m.tags
                            .iter()
                            .all(|t| markup::ALLOWED_TAGS.contains(&t.as_str()))
                })
                .map(|_| ())
        })
        .await;
    // Hostile text from someone else stays text: no image, no script link.
    let hostile = "<img src=x onerror=alert(1)> [click](javascript:alert(1))";
    bob.send(room, hostile).await;
    window
        .wait("bob's hostile message, as text", UI_WAIT, |d| {
            d.messages
                .iter()
                .find(|m| m.body == hostile)
                .filter(|m| m.links.is_empty() && m.tags.iter().all(|t| t == "p"))
                .map(|_| ())
        })
        .await;
    window.shot("04b-formatting").await;

    // A link whose text is not its target: a confirmation showing the target; Cancel opens
    // nothing.
    window
        .click_xpath("//li[contains(@class,'message')]//a[normalize-space()='the trail']")
        .await;
    window
        .wait("the link confirmation", UI_WAIT, |d| {
            (d.dialog.as_deref() == Some("Open this link?")
                && d.dialog_text.as_deref().is_some_and(|t| t.contains(&trail)))
            .then_some(())
        })
        .await;
    window.shot("04c-link-confirm").await;
    window
        .click_xpath("//div[@class='modal-body']//button[.='Cancel']")
        .await;
    window
        .wait("the confirmation closed", UI_WAIT, |d| {
            d.dialog.is_none().then_some(())
        })
        .await;
    // A link that is its own text opens at once, in the browser.
    window
        .click_xpath(&format!("//li[contains(@class,'message')]//a[.='{bare}']"))
        .await;
    let deadline = Instant::now() + UI_WAIT;
    while read_opened(home).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        read_opened(home),
        std::slice::from_ref(&bare),
        "what the browser was asked to open"
    );
    // The capability refuses other schemes, even asked directly from the page.
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.org/x",
    ] {
        let answer = window
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 window.__TAURI__.core.invoke('plugin:opener|open_url', {url: arguments[0]}) \
                   .then(() => done('opened'), e => done('refused: ' + e));",
                vec![json!(url)],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot call the opener: {e}"));
        let answer = answer.as_str().unwrap_or_default().to_string();
        assert!(answer.starts_with("refused"), "{url}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_opened(home), [bare], "nothing else was opened");

    // Emoji shortcodes: `:thu` lists matches, Enter takes the first; a typed closing colon
    // completes a known one at once.
    window.type_into("#composer", ":thu").await;
    window
        .wait("the emoji suggestions", UI_WAIT, |d| {
            (d.emoji_suggestions.first().map(String::as_str) == Some(":thumbsup:")).then_some(())
        })
        .await;
    window.shot("04d-emoji-suggestions").await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    window.type_into("#composer", " see you :tada:").await;
    window
        .wait("the shortcodes replaced", UI_WAIT, |d| {
            (d.composer_text.as_deref() == Some("👍 see you 🎉") && d.emoji_suggestions.is_empty())
                .then_some(())
        })
        .await;
    window.type_into("#composer", &Key::Enter.to_string()).await;
    bob.wait_message(room, "👍 see you 🎉", UI_WAIT).await;
}
