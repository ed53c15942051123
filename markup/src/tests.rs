//! The Markdown subset as a reader sees it, and a hostile corpus: markup that must stay text,
//! links that must be refused, input built to exhaust the parser or the tree.

use super::*;

fn text(s: &str) -> Node {
    Node::Text(s.into())
}

fn el(e: Element, children: Vec<Node>) -> Node {
    Node::Element(e, children)
}

fn p(children: Vec<Node>) -> Node {
    el(Element::Paragraph, children)
}

fn link(href: &str, children: Vec<Node>) -> Node {
    el(
        Element::Link {
            href: href.to_string(),
        },
        children,
    )
}

/// Parses, checks the tree's invariants, returns it.
fn tree(src: &str) -> Vec<Node> {
    let nodes = parse(src);
    if let Err(e) = audit(&nodes) {
        panic!("{src:?}: {e}: {nodes:#?}");
    }
    nodes
}

/// Every element tag in the tree, depth first.
fn tags(nodes: &[Node]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for n in nodes {
        out.extend(n.tag());
        if let Node::Element(_, c) = n {
            out.extend(tags(c));
        }
    }
    out
}

fn hrefs(nodes: &[Node]) -> Vec<String> {
    let mut out = Vec::new();
    for n in nodes {
        if let Node::Element(e, c) = n {
            if let Element::Link { href } = e {
                out.push(href.clone());
            }
            out.extend(hrefs(c));
        }
    }
    out
}

fn shown(nodes: &[Node]) -> String {
    let mut s = String::new();
    write_plain(nodes, &mut s);
    s
}

#[test]
fn the_subset_renders_as_its_elements() {
    assert_eq!(
        tree("**bold** *italic* ~~gone~~ `x < y`"),
        vec![p(vec![
            el(Element::Strong, vec![text("bold")]),
            text(" "),
            el(Element::Emphasis, vec![text("italic")]),
            text(" "),
            el(Element::Strike, vec![text("gone")]),
            text(" "),
            Node::Code("x < y".into()),
        ])]
    );
    assert_eq!(
        tree("```rust\nfn main() {}\n**not bold**\n```"),
        vec![Node::CodeBlock {
            lang: Some("rust".into()),
            text: "fn main() {}\n**not bold**".into()
        }]
    );
    assert_eq!(
        tree("    indented\n    code"),
        vec![Node::CodeBlock {
            lang: None,
            text: "indented\ncode".into()
        }]
    );
    assert_eq!(
        tree("> quoted"),
        vec![el(Element::Quote, vec![p(vec![text("quoted")])])]
    );
    assert_eq!(
        tree("- one\n- two"),
        vec![el(
            Element::List { start: None },
            vec![
                el(Element::Item, vec![text("one")]),
                el(Element::Item, vec![text("two")])
            ]
        )]
    );
    assert_eq!(tags(&tree("3. three\n4. four")), ["ol", "li", "li"]);
    assert_eq!(
        tree("3. three"),
        vec![el(
            Element::List { start: Some(3) },
            vec![el(Element::Item, vec![text("three")])]
        )]
    );
}

#[test]
fn a_newline_is_a_line_break() {
    assert_eq!(
        tree("one\ntwo"),
        vec![p(vec![text("one"), Node::Break, text("two")])]
    );
}

#[test]
fn links_written_three_ways() {
    assert_eq!(
        tree("[the docs](https://example.org/docs)"),
        vec![p(vec![link(
            "https://example.org/docs",
            vec![text("the docs")]
        )])]
    );
    assert_eq!(
        tree("<https://example.org>"),
        vec![p(vec![link(
            "https://example.org",
            vec![text("https://example.org")]
        )])]
    );
    assert_eq!(
        tree("<me@example.org>"),
        vec![p(vec![link(
            "mailto:me@example.org",
            vec![text("me@example.org")]
        )])]
    );
    assert_eq!(
        tree("see http://example.org/a_(b)?q=1, then mailto:me@example.org."),
        vec![p(vec![
            text("see "),
            link(
                "http://example.org/a_(b)?q=1",
                vec![text("http://example.org/a_(b)?q=1")]
            ),
            text(", then "),
            link("mailto:me@example.org", vec![text("mailto:me@example.org")]),
            text("."),
        ])]
    );
    // In parentheses, the closing one is the sentence's.
    assert_eq!(
        hrefs(&tree("(https://example.org/x)")),
        ["https://example.org/x"]
    );
    // Not a URL: inside a word, no host, in code.
    assert!(hrefs(&tree(
        "xhttps://example.org https:// http:///x `https://example.org`"
    ))
    .is_empty());
    // A bare URL in a link's text is not a second link.
    assert_eq!(
        hrefs(&tree("[https://a.example](https://b.example)")),
        ["https://b.example"]
    );
}

#[test]
fn raw_html_is_text() {
    for src in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "hi <b onclick=\"x()\">there</b>",
        "<div>\n<iframe src=\"https://evil.example\"></iframe>\n</div>",
        "<!-- comment --> <?php ?> <![CDATA[x]]>",
        "<a href=\"javascript:alert(1)\">click</a>",
        "<style>body{display:none}</style>",
    ] {
        let nodes = tree(src);
        assert!(
            tags(&nodes).iter().all(|t| ["p", "br"].contains(t)),
            "{src:?} became elements: {nodes:?}"
        );
        // Every character the user typed is shown.
        let seen: String = shown(&nodes).split_whitespace().collect();
        let typed: String = src.split_whitespace().collect();
        assert_eq!(seen, typed, "{src:?}");
    }
    // Inside other markup too.
    let nodes = tree("**<script>x</script>** > <img onerror=y>\n> <svg onload=z>");
    assert!(tags(&nodes)
        .iter()
        .all(|t| ["p", "strong", "blockquote"].contains(t)));
    assert!(shown(&nodes).contains("<script>x</script>"));
}

#[test]
fn links_to_other_schemes_are_refused_and_shown_as_typed() {
    for src in [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java&#115;cript:alert(1))",
        "[click](  javascript:alert(1) )",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](file:///etc/passwd)",
        "[x](vbscript:msgbox)",
        "[x](/relative/path)",
        "[x](//evil.example/)",
        "[x](https:/one-slash)",
        "[x](https:///no-host)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "[x](<https://a.example/with space>)",
        "javascript:alert(1)",
        "![img](https://example.org/a.png)",
        "[![img](https://example.org/a.png)](javascript:alert(1))",
    ] {
        let nodes = tree(src);
        assert!(hrefs(&nodes).is_empty(), "{src:?} made a link: {nodes:?}");
        assert!(!tags(&nodes).contains(&"a"));
    }
    // What was typed is what is shown.
    assert_eq!(
        tree("[click](javascript:alert(1))"),
        vec![p(vec![text("[click](javascript:alert(1))")])]
    );
}

#[test]
fn outside_the_subset_is_shown_as_typed() {
    assert_eq!(
        tree("# not a heading"),
        vec![p(vec![text("# not a heading")])]
    );
    assert_eq!(
        tree("title\n====="),
        vec![p(vec![text("title"), Node::Break, text("=====")])]
    );
    assert_eq!(tree("---"), vec![p(vec![text("---")])]);
    assert_eq!(
        tags(&tree("| a | b |\n|---|---|\n| 1 | 2 |")),
        ["p", "br", "br"]
    );
    assert_eq!(
        tree("![alt text](https://example.org/a.png)"),
        vec![p(vec![text("![alt text](https://example.org/a.png)")])]
    );
}

#[test]
fn nested_emphasis() {
    assert_eq!(
        tags(&tree("***both*** **a *b ~~c~~* d**")),
        ["p", "em", "strong", "strong", "em", "del"]
    );
    assert_eq!(shown(&tree("***both***")), "both\n");
}

#[test]
fn huge_nesting_is_flattened_and_keeps_its_text() {
    let cases = [
        format!("{}deep", ">".repeat(50_000)),
        format!("{}deep", "> ".repeat(20_000)),
        (0..2_000)
            .map(|i| format!("{}- deep\n", "  ".repeat(i)))
            .collect(),
        format!("{}deep{}", "*".repeat(20_000), "*".repeat(20_000)),
        format!(
            "{}deep{}",
            "[".repeat(20_000),
            "](https://a.example)".repeat(20_000)
        ),
        format!("{}deep", "1. ".repeat(10_000)),
        format!("a {}deep{}", "~~x ".repeat(10_000), " x~~".repeat(10_000)),
        // A bare URL at the depth limit would be one level more as a link (fuzz: markdown).
        format!("{}deep https://a.example", "> ".repeat(40)),
    ];
    for src in cases {
        let nodes = tree(&src);
        assert!(
            shown(&nodes).contains("deep"),
            "text lost in {:?}…",
            &src[..40]
        );
    }
}

#[test]
fn unterminated_code_fences_run_to_the_end_as_code() {
    assert_eq!(
        tree("```\n<script>alert(1)</script>\n[x](javascript:y)"),
        vec![Node::CodeBlock {
            lang: None,
            text: "<script>alert(1)</script>\n[x](javascript:y)".into()
        }]
    );
    assert_eq!(
        tree("`unterminated <b>code"),
        vec![p(vec![text("`unterminated <b>code")])]
    );
    assert_eq!(tags(&tree("> ```\n> code")), ["blockquote", "pre"]);
}

#[test]
fn plain_text_leaves_out_the_markup() {
    assert_eq!(
        plain_text("**bold** and _it_ with [the docs](https://internal.example/secret)"),
        "bold and it with the docs"
    );
    assert_eq!(plain_text("- one\n- two\n\n> said"), "one\ntwo\nsaid");
    assert_eq!(plain_text("```\nlet x = 1;\n```"), "let x = 1;");
    assert_eq!(plain_text("a <b>raw</b>"), "a <b>raw</b>");
}

#[test]
fn safe_href_takes_only_http_https_mailto() {
    assert!(safe_href("https://example.org/x?y#z").is_some());
    assert!(safe_href("HTTP://EXAMPLE.ORG").is_some());
    assert!(safe_href("mailto:a@b.example").is_some());
    for bad in [
        "",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "tel:123",
        "https:",
        "https://",
        "https:///x",
        "https://a b",
        "https://a\u{0}b",
        "mailto:",
        "/x",
        "example.org",
    ] {
        assert_eq!(safe_href(bad), None, "{bad:?}");
    }
}

#[test]
fn confirmation_when_the_text_is_not_the_target() {
    assert!(!needs_confirm("https://example.org", "https://example.org"));
    assert!(!needs_confirm(
        "https://example.org/",
        "https://example.org"
    ));
    assert!(!needs_confirm("me@example.org", "mailto:me@example.org"));
    assert!(needs_confirm("the docs", "https://example.org"));
    assert!(needs_confirm(
        "https://bank.example",
        "https://evil.example"
    ));
}

#[test]
fn first_line_is_plain_and_cut() {
    assert_eq!(
        first_line("\n  \n**lunch** at `noon`?\nor later", 50),
        "lunch at noon?"
    );
    assert_eq!(first_line("abcdef", 3), "abc…");
    assert_eq!(first_line("", 3), "");
}

#[test]
fn first_line_of_a_code_block_is_its_code() {
    assert_eq!(first_line("```rust\nfn main() {}\n```", 50), "fn main() {}");
}
