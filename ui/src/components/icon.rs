//! Line icons drawn as inline SVG (no icon font, no network), sized and coloured by CSS.

use yew::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Search,
    Plus,
    Hash,
    Compass,
    Chat,
    Users,
    LogOut,
    Sliders,
    Menu,
    Send,
    Clock,
    Alert,
    Edit,
    Trash,
    Close,
    Lock,
    Globe,
    Retry,
    Server,
    ArrowDown,
    /// Reply to a message.
    Reply,
    /// Add a reaction.
    Smile,
    /// Attach files.
    Paperclip,
    /// A file (attachment card).
    File,
    /// Save a file.
    Download,
}

#[derive(Properties, PartialEq)]
pub struct IconProps {
    pub icon: Icon,
    #[prop_or_default]
    pub class: Classes,
}

/// One icon; decorative (hidden from screen readers), so buttons carry their own label.
#[function_component]
pub fn IconView(props: &IconProps) -> Html {
    let shapes = match props.icon {
        Icon::Search => html! {<>
            <circle cx="11" cy="11" r="7"/><line x1="21" y1="21" x2="16.65" y2="16.65"/>
        </>},
        Icon::Plus => html! { <path d="M12 5v14M5 12h14"/> },
        Icon::Hash => html! { <path d="M4 9h16M4 15h16M10 3 8 21M16 3l-2 18"/> },
        Icon::Compass => html! {<>
            <circle cx="12" cy="12" r="10"/>
            <polygon points="16.24 7.76 14.12 14.12 7.76 16.24 9.88 9.88 16.24 7.76"/>
        </>},
        Icon::Chat => html! {
            <path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>
        },
        Icon::Users => html! {<>
            <path d="M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2"/><circle cx="9" cy="7" r="4"/>
            <path d="M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75"/>
        </>},
        Icon::LogOut => html! {<>
            <path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/>
            <polyline points="16 17 21 12 16 7"/><line x1="21" y1="12" x2="9" y2="12"/>
        </>},
        Icon::Sliders => html! {
            <path d="M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6"/>
        },
        Icon::Menu => html! { <path d="M3 6h18M3 12h18M3 18h18"/> },
        Icon::Send => html! {<>
            <line x1="22" y1="2" x2="11" y2="13"/><polygon points="22 2 15 22 11 13 2 9 22 2"/>
        </>},
        Icon::Clock => html! {<>
            <circle cx="12" cy="12" r="10"/><polyline points="12 6 12 12 16 14"/>
        </>},
        Icon::Alert => html! {<>
            <circle cx="12" cy="12" r="10"/><path d="M12 8v4M12 16h.01"/>
        </>},
        Icon::Edit => html! {<>
            <path d="M12 20h9"/>
            <path d="M16.5 3.5a2.12 2.12 0 0 1 3 3L7 19l-4 1 1-4z"/>
        </>},
        Icon::Trash => html! {<>
            <polyline points="3 6 5 6 21 6"/>
            <path d="M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6m3 0V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2"/>
        </>},
        Icon::Close => html! { <path d="M18 6 6 18M6 6l12 12"/> },
        Icon::Lock => html! {<>
            <rect x="4" y="11" width="16" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>
        </>},
        Icon::Globe => html! {<>
            <circle cx="12" cy="12" r="10"/><line x1="2" y1="12" x2="22" y2="12"/>
            <path d="M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z"/>
        </>},
        Icon::Retry => html! {<>
            <polyline points="23 4 23 10 17 10"/>
            <path d="M20.49 15a9 9 0 1 1-2.12-9.36L23 10"/>
        </>},
        Icon::Server => html! {<>
            <rect x="2" y="3" width="20" height="8" rx="2"/><rect x="2" y="13" width="20" height="8" rx="2"/>
            <path d="M6 7h.01M6 17h.01"/>
        </>},
        Icon::ArrowDown => html! { <path d="M12 5v14M19 12l-7 7-7-7"/> },
        Icon::Reply => html! {<>
            <path d="M9 14 4 9l5-5"/><path d="M20 20v-7a4 4 0 0 0-4-4H4"/>
        </>},
        Icon::Smile => html! {<>
            <circle cx="12" cy="12" r="10"/><path d="M8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01"/>
        </>},
        Icon::Paperclip => html! {
            <path d="m21.44 11.05-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"/>
        },
        Icon::File => html! {<>
            <path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"/><polyline points="14 2 14 8 20 8"/>
        </>},
        Icon::Download => html! {<>
            <path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"/><polyline points="7 10 12 15 17 10"/><line x1="12" y1="15" x2="12" y2="3"/>
        </>},
    };
    html! {
        <svg class={classes!("icon", props.class.clone())} viewBox="0 0 24 24" fill="none"
            stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"
            aria-hidden="true" focusable="false">
            { shapes }
        </svg>
    }
}
