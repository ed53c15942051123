//! A message's text with its Markdown formatting: the tree from [`markup::parse`] mapped to DOM
//! nodes one by one (each element is the node's own [`markup::Node::tag`]; text is always a
//! text node, never parsed as HTML).

use markup::{Element, Node};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MessageTextProps {
    /// The message's source text (Markdown).
    pub text: AttrValue,
    /// Shown after the last block (e.g. "(edited)").
    #[prop_or_default]
    pub children: Html,
}

#[function_component]
pub fn MessageText(props: &MessageTextProps) -> Html {
    let nodes = use_memo(props.text.clone(), |text| markup::parse(text));
    html! {
        <div class="body rich" dir="auto">
            { for nodes.iter().map(view) }
            { props.children.clone() }
        </div>
    }
}

fn view(node: &Node) -> Html {
    let children = |nodes: &[Node]| -> Html { nodes.iter().map(view).collect() };
    match node {
        Node::Text(text) => html! { { text.clone() } },
        Node::Break => html! { <br /> },
        Node::Code(code) => html! { <code class="inline-code">{ code.clone() }</code> },
        Node::CodeBlock { text, .. } => html! {
            <pre class="code-block"><code>{ text.clone() }</code></pre>
        },
        Node::Element(Element::List { start: Some(start) }, items) => html! {
            <ol start={start.to_string()}>{ children(items) }</ol>
        },
        Node::Element(Element::Link { href }, content) => html! {
            <a class="link" title={href.clone()} data-href={href.clone()}>{ children(content) }</a>
        },
        Node::Element(_, content) => {
            let tag = node.tag().unwrap_or("span");
            html! { <@{tag}>{ children(content) }</@> }
        }
    }
}
