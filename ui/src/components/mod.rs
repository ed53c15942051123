//! Yew components, one per file. Screens and panels read the app state from context; smaller
//! pieces take props and report through `on…` callbacks.

pub mod account_dialog;
pub mod app;
pub mod auth_screen;
pub mod avatar;
pub mod ban_dialog;
pub mod banned_list;
pub mod block_dialog;
pub mod blocked_users;
pub mod browse_rooms_dialog;
pub mod chat_view;
pub mod composer;
pub mod connection_banner;
pub mod create_room_dialog;
pub mod icon;
pub mod leave_room_dialog;
pub mod main_screen;
pub mod member_actions;
pub mod member_panel;
pub mod message_item;
pub mod message_list;
pub mod message_text;
pub mod modal;
pub mod new_dm_dialog;
pub mod removed_notice;
pub mod room_item;
pub mod room_settings_dialog;
pub mod search_results;
pub mod server_screen;
pub mod settings_dialog;
pub mod sidebar;
pub mod toasts;
pub mod typing_indicator;
pub mod user_card;
