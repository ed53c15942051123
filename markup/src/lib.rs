//! The chat's Markdown subset, as data: [`parse`] turns a message's text into a small tree of
//! [`Node`]s whose every element is one of [`ALLOWED_TAGS`], and [`plain_text`] gives the words a
//! reader sees (for search). No HTML string is ever built: the UI maps the tree to DOM nodes one
//! by one, so nothing in a message can become markup.
//!
//! The subset: bold, italic, strikethrough, inline code, code blocks (fenced or indented),
//! block quotes, ordered and unordered lists, and links to `http`, `https` and `mailto` targets
//! (written `[text](url)`, `<url>`, or a bare URL in the text). Everything else is shown as the
//! text it was typed as: raw HTML, headings, images, rules, and links to any other scheme
//! (`javascript:`, `file:`, relative paths). A newline is a line break, as in every chat.
//!
//! Parsed with pulldown-cmark (CommonMark, maintained, no unsafe on our side, iterative so deep
//! input cannot overflow the stack); this crate adds the allowlist, bare-URL links and a depth
//! cap, and has no UI dependency so the host tests and the fuzzer run it directly.

use pulldown_cmark::utils::TextMergeWithOffset;
use pulldown_cmark::{CodeBlockKind, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Every HTML element the tree can turn into. The UI renders exactly [`Node::tag`].
pub const ALLOWED_TAGS: &[&str] = &[
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
];

/// Link targets that may be opened (in the system browser). Anything else stays text.
pub const ALLOWED_SCHEMES: &[&str] = &["http", "https", "mailto"];

/// Containers nested deeper than this are flattened into their parent: the text stays, the
/// tree (and every recursive walk over it, including `Drop`) stays shallow.
pub const MAX_DEPTH: usize = 16;

/// One piece of a rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Text, shown as typed (never parsed as markup).
    Text(String),
    /// A line break (`<br>`).
    Break,
    /// Inline code (`<code>`), monospace.
    Code(String),
    /// A code block (`<pre>`), monospace, whitespace kept; `lang` is the fence's info word.
    CodeBlock {
        lang: Option<String>,
        text: String,
    },
    Element(Element, Vec<Node>),
}

/// The container elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    Paragraph,
    Strong,
    Emphasis,
    Strike,
    Quote,
    /// `start`: the number of the first item of an ordered list; `None` for a bulleted one.
    List {
        start: Option<u64>,
    },
    Item,
    /// `href` has passed [`safe_href`].
    Link {
        href: String,
    },
}

impl Node {
    /// The HTML element this node is drawn as (`None` for text). Always in [`ALLOWED_TAGS`].
    pub fn tag(&self) -> Option<&'static str> {
        Some(match self {
            Node::Text(_) => return None,
            Node::Break => "br",
            Node::Code(_) => "code",
            Node::CodeBlock { .. } => "pre",
            Node::Element(e, _) => match e {
                Element::Paragraph => "p",
                Element::Strong => "strong",
                Element::Emphasis => "em",
                Element::Strike => "del",
                Element::Quote => "blockquote",
                Element::List { start: Some(_) } => "ol",
                Element::List { start: None } => "ul",
                Element::Item => "li",
                Element::Link { .. } => "a",
            },
        })
    }

    /// The text a reader sees in this node, line breaks as `\n`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        write_plain(std::slice::from_ref(self), &mut out);
        out
    }
}

/// The message's text as a tree of allowed elements.
pub fn parse(src: &str) -> Vec<Node> {
    // Only strikethrough on top of CommonMark: no tables, footnotes, task lists, math, heading
    // attributes or metadata blocks (each would be one more thing to render safely).
    let parser = Parser::new_ext(src, Options::ENABLE_STRIKETHROUGH);
    let mut events = TextMergeWithOffset::new(parser.into_offset_iter());
    let mut b = Builder::default();
    while let Some((event, range)) = events.next() {
        let source = src.get(range).unwrap_or_default();
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => b.open(Some(Element::Paragraph)),
                Tag::Emphasis => b.open(Some(Element::Emphasis)),
                Tag::Strong => b.open(Some(Element::Strong)),
                Tag::Strikethrough => b.open(Some(Element::Strike)),
                Tag::BlockQuote(_) => b.open(Some(Element::Quote)),
                Tag::List(start) => b.open(Some(Element::List { start })),
                Tag::Item => b.open(Some(Element::Item)),
                Tag::CodeBlock(kind) => {
                    let lang = match kind {
                        CodeBlockKind::Fenced(info) => info
                            .split_whitespace()
                            .next()
                            .map(str::to_string)
                            .filter(|s| !s.is_empty()),
                        CodeBlockKind::Indented => None,
                    };
                    let mut text = String::new();
                    for (event, _) in events.by_ref() {
                        match event {
                            Event::End(TagEnd::CodeBlock) => break,
                            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => {
                                text.push_str(&t)
                            }
                            _ => {}
                        }
                    }
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    b.push(Node::CodeBlock { lang, text });
                }
                Tag::Link {
                    link_type,
                    dest_url,
                    ..
                } => {
                    let href = match link_type {
                        LinkType::Email => safe_href(&format!("mailto:{dest_url}")),
                        _ => safe_href(&dest_url),
                    };
                    match href {
                        Some(href) if b.links == 0 => {
                            b.links += 1;
                            b.open(Some(Element::Link { href }));
                        }
                        // Refused (or a link inside a link): the link as it was typed.
                        _ => {
                            skip_to_end(&mut events);
                            b.source_text(source);
                        }
                    }
                }
                Tag::Image { .. } | Tag::Superscript | Tag::Subscript => {
                    skip_to_end(&mut events);
                    b.source_text(source);
                }
                // Headings, HTML blocks, and whatever the options above leave off: the text as
                // typed, in a paragraph of its own.
                _ => {
                    skip_to_end(&mut events);
                    b.source_paragraph(source);
                }
            },
            Event::End(end) => {
                if matches!(end, TagEnd::Link) {
                    b.links = b.links.saturating_sub(1);
                }
                b.close();
            }
            Event::Text(text) => {
                if b.links > 0 {
                    b.push(Node::Text(text.into_string()));
                } else {
                    push_linkified(&mut b, &text);
                }
            }
            Event::Code(code) => b.push(Node::Code(code.into_string())),
            Event::SoftBreak | Event::HardBreak => b.push(Node::Break),
            // Raw HTML is text.
            Event::InlineHtml(html) | Event::Html(html) => b.source_text(&html),
            Event::Rule => b.source_paragraph(source),
            // Not enabled; shown as typed should they ever appear.
            Event::InlineMath(_)
            | Event::DisplayMath(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_) => b.source_text(source),
        }
    }
    b.finish()
}

/// The words of a message as a reader sees them: no markup characters, link targets left out
/// (only their text), blocks on lines of their own. What the local search indexes.
pub fn plain_text(src: &str) -> String {
    let mut out = String::new();
    write_plain(&parse(src), &mut out);
    out.trim_end().to_string()
}

/// A message's first non-blank line as words without markup, cut at `max_chars` characters
/// (with "…"): what a reply's quote shows of its original.
pub fn first_line(src: &str, max_chars: usize) -> String {
    let all = plain_text(src);
    let line = all.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let plain = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text: String = plain.chars().take(max_chars).collect();
    if text.len() < plain.len() {
        text.push('…');
    }
    text
}

/// `url` if it may be opened: an `http`/`https` URL with a host, or a `mailto:` with an
/// address; no whitespace or control characters. Everything else is `None`.
pub fn safe_href(url: &str) -> Option<String> {
    if url.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let ok = match scheme.as_str() {
        "http" | "https" => rest
            .strip_prefix("//")
            .and_then(|r| r.chars().next())
            .is_some_and(|c| !matches!(c, '/' | '?' | '#' | '\\')),
        "mailto" => !rest.is_empty(),
        _ => false,
    };
    ok.then(|| url.to_string())
}

/// Whether a link's visible text says something else than where it goes, so the user must see
/// the real target before it opens. Text equal to the target (or the address of a `mailto:`)
/// needs no confirmation.
pub fn needs_confirm(text: &str, href: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    let (text, target) = (norm(text), norm(href));
    !(text == target || target.strip_prefix("mailto:") == Some(text.as_str()))
}

/// Builds the tree with an explicit stack (no recursion over the input).
struct Builder {
    /// Open containers, the root first. `None`: flattened (too deep), its children go to its
    /// parent.
    stack: Vec<(Option<Element>, Vec<Node>)>,
    /// Real (not flattened) containers open.
    depth: usize,
    /// Links open: no links inside links (a bare URL in link text stays text).
    links: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            stack: vec![(None, Vec::new())],
            depth: 0,
            links: 0,
        }
    }
}

impl Builder {
    fn open(&mut self, element: Option<Element>) {
        let element = element.filter(|_| self.depth < MAX_DEPTH);
        if element.is_some() {
            self.depth += 1;
        }
        self.stack.push((element, Vec::new()));
    }

    fn close(&mut self) {
        if self.stack.len() < 2 {
            return;
        }
        if let Some((element, children)) = self.stack.pop() {
            match element {
                Some(e) => {
                    self.depth -= 1;
                    self.push(Node::Element(e, children));
                }
                None => {
                    for child in children {
                        self.push(child);
                    }
                }
            }
        }
    }

    fn push(&mut self, node: Node) {
        if let Some(top) = self.stack.last_mut() {
            // Adjacent text is one text node.
            if let (Some(Node::Text(last)), Node::Text(more)) = (top.1.last_mut(), &node) {
                last.push_str(more);
                return;
            }
            top.1.push(node);
        }
    }

    /// Text as typed; its newlines become line breaks.
    fn source_text(&mut self, text: &str) {
        let text = text.trim_end_matches(['\n', '\r']);
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.push(Node::Break);
            }
            let line = line.strip_suffix('\r').unwrap_or(line);
            if !line.is_empty() {
                self.push(Node::Text(line.to_string()));
            }
        }
    }

    fn source_paragraph(&mut self, text: &str) {
        self.open(Some(Element::Paragraph));
        self.source_text(text);
        self.close();
    }

    fn finish(mut self) -> Vec<Node> {
        while self.stack.len() > 1 {
            self.close();
        }
        self.stack.pop().map(|(_, nodes)| nodes).unwrap_or_default()
    }
}

/// Skips the events up to the end of the element just started.
fn skip_to_end<'a>(events: &mut impl Iterator<Item = (Event<'a>, std::ops::Range<usize>)>) {
    let mut depth = 1usize;
    for (event, _) in events {
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Text with every bare `http://`, `https://` or `mailto:` URL in it made a link.
fn push_linkified(b: &mut Builder, text: &str) {
    // A link is one more level: at the depth limit a bare URL stays text.
    if b.depth >= MAX_DEPTH {
        b.push(Node::Text(text.to_string()));
        return;
    }
    let mut rest = text;
    while let Some((start, end)) = find_url(rest) {
        if start > 0 {
            b.push(Node::Text(rest[..start].to_string()));
        }
        let url = &rest[start..end];
        b.push(Node::Element(
            Element::Link {
                href: url.to_string(),
            },
            vec![Node::Text(url.to_string())],
        ));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        b.push(Node::Text(rest.to_string()));
    }
}

/// The byte range of the first bare URL in `text` that passes [`safe_href`].
fn find_url(text: &str) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while from < text.len() {
        let start = ["http://", "https://", "mailto:"]
            .iter()
            .filter_map(|p| lower[from..].find(p).map(|i| from + i))
            .min()?;
        from = start + 1;
        // Not in the middle of a word ("xhttp://").
        if text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric())
        {
            continue;
        }
        let mut end = text[start..]
            .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
            .map_or(text.len(), |i| start + i);
        // Trailing punctuation belongs to the sentence; a closing parenthesis only when it has
        // no opening one in the URL ("(see https://x.org/a_(b))").
        loop {
            let url = &text[start..end];
            match url.chars().next_back() {
                Some('.' | ',' | ':' | ';' | '!' | '?' | '\'' | '*' | '_' | '~') => end -= 1,
                Some(')') if url.matches('(').count() < url.matches(')').count() => end -= 1,
                _ => break,
            }
        }
        if safe_href(&text[start..end]).is_some() {
            return Some((start, end));
        }
    }
    None
}

/// Checks what every rendered tree must hold, for the tests and the fuzzer: each element is in
/// [`ALLOWED_TAGS`], each link target passes [`safe_href`], no link is inside a link, and
/// nesting stays within [`MAX_DEPTH`].
pub fn audit(nodes: &[Node]) -> Result<(), String> {
    // (nodes, depth, inside a link)
    let mut todo: Vec<(&[Node], usize, bool)> = vec![(nodes, 0, false)];
    while let Some((nodes, depth, in_link)) = todo.pop() {
        if depth > MAX_DEPTH {
            return Err(format!("nested {depth} deep"));
        }
        for node in nodes {
            if let Some(tag) = node.tag() {
                if !ALLOWED_TAGS.contains(&tag) {
                    return Err(format!("element <{tag}> is not allowed"));
                }
            }
            if let Node::Element(element, children) = node {
                let link = if let Element::Link { href } = element {
                    if in_link {
                        return Err("a link inside a link".into());
                    }
                    if safe_href(href).as_deref() != Some(href.as_str()) {
                        return Err(format!("link to a refused target {href:?}"));
                    }
                    true
                } else {
                    in_link
                };
                todo.push((children, depth + 1, link));
            }
        }
    }
    Ok(())
}

fn is_block(node: &Node) -> bool {
    matches!(
        node,
        Node::CodeBlock { .. }
            | Node::Element(
                Element::Paragraph | Element::Quote | Element::List { .. } | Element::Item,
                _
            )
    )
}

fn write_plain(nodes: &[Node], out: &mut String) {
    for node in nodes {
        let block = is_block(node);
        if block && !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        match node {
            Node::Text(t) | Node::Code(t) => out.push_str(t),
            Node::CodeBlock { text, .. } => out.push_str(text),
            Node::Break => out.push('\n'),
            Node::Element(_, children) => write_plain(children, out),
        }
        if block && !out.ends_with('\n') {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests;
