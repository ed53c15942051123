//! The only door to the Rust backend: Tauri's `invoke` for commands and `listen` for the `chat`
//! event, wrapped in typed async functions.
//!
//! Every call is a [`protocol::ipc::Command`] value sent through the one Tauri command
//! ([`protocol::ipc::INVOKE`]) as its `command` argument, so names and arguments come from the
//! contract itself. Results and events are decoded into the protocol's types; failures become
//! an [`Error`].

use protocol::ipc::{
    AppError, AppErrorCode, AppEvent, BlobCacheView, CertificateView, Command, MemberView,
    MessagePage, MessageView, RoomView, SearchHit, Settings, Snapshot, UserView,
};
use protocol::rest::{NotifyLevel, Room, SessionInfo, User, UserRef, Visibility};
use protocol::{ErrorCode, RoomId, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], js_name = listen, catch)]
    async fn tauri_listen(
        event: &str,
        handler: &Closure<dyn FnMut(JsValue)>,
    ) -> Result<JsValue, JsValue>;
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The backend refused: a stable code and its message.
    App(AppError),
    /// The bridge itself failed (no backend, unknown command, undecodable answer).
    Bridge(String),
}

impl Error {
    /// The app-level code, when the backend gave one.
    pub fn code(&self) -> Option<AppErrorCode> {
        match self {
            Error::App(e) => Some(e.code),
            Error::Bridge(_) => None,
        }
    }

    /// The server's certificate, when it was not trusted or changed.
    pub fn certificate(&self) -> Option<&CertificateView> {
        match self {
            Error::App(e) => e.certificate.as_ref(),
            Error::Bridge(_) => None,
        }
    }

    /// The server's code, when the server refused.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self.code() {
            Some(AppErrorCode::Server(code)) => Some(code),
            _ => None,
        }
    }

    /// A sentence for people. Known codes get wording written for this UI; others fall back
    /// to the backend's message.
    pub fn user_message(&self) -> String {
        let fixed = match self.code() {
            Some(AppErrorCode::BadUrl) => {
                Some("That is not a server address. Use a URL like https://chat.example.com")
            }
            Some(AppErrorCode::ServerUnreachable) => {
                Some("No chat server answered at that address. Check the URL and your connection.")
            }
            Some(AppErrorCode::NotLoggedIn) => Some("You are not logged in."),
            Some(AppErrorCode::UntrustedCertificate) => {
                Some("This computer does not trust the server's certificate.")
            }
            Some(AppErrorCode::CertificateChanged) => Some(
                "The server's certificate changed since you trusted it. Not connecting: someone \
                 may be posing as the server. Check with its operator.",
            ),
            Some(AppErrorCode::Storage) => Some("The local message cache failed."),
            Some(AppErrorCode::Keychain) => {
                Some("The system keychain could not be used to keep your session.")
            }
            Some(AppErrorCode::Server(code)) => match code {
                ErrorCode::InvalidCredentials => Some("Wrong username or password."),
                ErrorCode::UsernameTaken => Some("That username is already taken."),
                ErrorCode::RateLimited => Some("Too many requests. Wait a moment and try again."),
                ErrorCode::ServerBusy | ErrorCode::StoreUnavailable => {
                    Some("The server is busy. Try again in a moment.")
                }
                ErrorCode::NotOwner => Some("Only the room owner can do that."),
                ErrorCode::DirectRoom => Some("That does not apply to direct messages."),
                ErrorCode::MessageDeleted => Some("That message was deleted."),
                ErrorCode::NotAuthor => Some("You can only change your own messages."),
                ErrorCode::WrongPassword => Some("Your current password is not right."),
                ErrorCode::SessionNotFound => Some("That session has already ended."),
                ErrorCode::Banned => {
                    Some("You are banned from this room. Only its owner can lift the ban.")
                }
                ErrorCode::Blocked => Some("This person does not accept messages from you."),
                ErrorCode::NotAMember => Some("You are no longer in that room."),
                ErrorCode::TooLarge => Some("The file is larger than the server accepts."),
                ErrorCode::QuotaExceeded => Some(
                    "Your files on the server take all the room you have. Delete some messages \
                     with files first.",
                ),
                ErrorCode::UnsupportedType => Some("The server does not accept this kind of file."),
                ErrorCode::AttachmentNotFound => Some("That file is no longer available."),
                _ => None,
            },
            // The backend says why and what the operator should do.
            Some(
                AppErrorCode::Invalid | AppErrorCode::InsecureUrl | AppErrorCode::UpdateFailed,
            )
            | None => None,
        };
        match (fixed, self) {
            (Some(text), _) => text.to_string(),
            (None, Error::App(e)) if !e.message.is_empty() => capitalize(&e.message),
            (None, Error::App(_)) => "Something went wrong.".to_string(),
            (None, Error::Bridge(m)) => format!("The app backend did not answer: {m}"),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.user_message())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The argument object of the one Tauri command: `{command: <the command>}`.
pub fn encode(cmd: &Command) -> Result<serde_json::Value> {
    let command = serde_json::to_value(cmd).map_err(|e| Error::Bridge(e.to_string()))?;
    Ok(serde_json::json!({ "command": command }))
}

/// Decodes a rejection: an [`AppError`] object when the backend refused, else whatever Tauri
/// or JavaScript threw.
fn decode_error(value: JsValue) -> Error {
    if let Ok(err) = serde_wasm_bindgen::from_value::<AppError>(value.clone()) {
        return Error::App(err);
    }
    if let Some(text) = value.as_string() {
        return Error::Bridge(text);
    }
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return Error::Bridge(String::from(err.message()));
    }
    Error::Bridge("unknown error".into())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| Error::Bridge(e.to_string()))
}

async fn call_raw(cmd: Command) -> Result<JsValue> {
    let args = to_js(&encode(&cmd)?)?;
    tauri_invoke(protocol::ipc::INVOKE, args)
        .await
        .map_err(decode_error)
}

async fn call<T: DeserializeOwned>(cmd: Command) -> Result<T> {
    let value = call_raw(cmd).await?;
    serde_wasm_bindgen::from_value(value).map_err(|e| Error::Bridge(e.to_string()))
}

/// For commands whose result is `()`: the value (null) is ignored.
async fn call_unit(cmd: Command) -> Result<()> {
    call_raw(cmd).await.map(|_| ())
}

/// Opens `url` in the system browser through Tauri's opener plugin. The capability file lets
/// the web view ask only for `http`, `https` and `mailto` URLs; anything else is refused there
/// too (an [`Error::Bridge`] with the plugin's message).
pub async fn open_url(url: &str) -> Result<()> {
    let args = to_js(&serde_json::json!({ "url": url }))?;
    tauri_invoke("plugin:opener|open_url", args)
        .await
        .map(|_| ())
        .map_err(decode_error)
}

pub async fn snapshot() -> Result<Snapshot> {
    call(Command::Snapshot).await
}

pub async fn set_server(url: String) -> Result<()> {
    call_unit(Command::SetServer { url }).await
}

/// Chooses the server, trusting its certificate with this fingerprint.
pub async fn trust_certificate(url: String, sha256: String) -> Result<()> {
    call_unit(Command::TrustCertificate { url, sha256 }).await
}

pub async fn register(username: String, password: String) -> Result<User> {
    call(Command::Register { username, password }).await
}

pub async fn login(username: String, password: String) -> Result<User> {
    call(Command::Login { username, password }).await
}

pub async fn logout() -> Result<()> {
    call_unit(Command::Logout).await
}

/// The account's live sessions (`current`: this device's).
pub async fn sessions() -> Result<Vec<SessionInfo>> {
    call(Command::Sessions).await
}

/// Ends one session of the account (this device's own: a logout).
pub async fn end_session(id: String) -> Result<()> {
    call_unit(Command::EndSession { id }).await
}

/// Changes the password; the other devices are signed out.
pub async fn change_password(current: String, new: String) -> Result<()> {
    call_unit(Command::ChangePassword { current, new }).await
}

/// Signs every device of the account out, this one included.
pub async fn logout_everywhere() -> Result<()> {
    call_unit(Command::LogoutEverywhere).await
}

/// Messages not sent yet (logging out would drop them).
pub async fn unsent() -> Result<u32> {
    call(Command::Unsent).await
}

/// Skips the wait before the next reconnect attempt.
pub async fn reconnect_now() -> Result<()> {
    call_unit(Command::ReconnectNow).await
}

pub async fn rooms() -> Result<Vec<RoomView>> {
    call(Command::Rooms).await
}

pub async fn messages(
    room: RoomId,
    before: Option<u64>,
    limit: Option<u32>,
) -> Result<MessagePage> {
    call(Command::Messages {
        room,
        before,
        limit,
    })
    .await
}

/// Sends a message: its text, the seq it answers, and the ids of the users it mentions.
pub async fn send(
    room: RoomId,
    body: String,
    reply_to: Option<u64>,
    mentions: Vec<UserId>,
    mention_room: bool,
) -> Result<MessageView> {
    call(Command::Send {
        room,
        body,
        reply_to,
        mentions,
        mention_room,
    })
    .await
}

/// Adds the user's `emoji` reaction to message `seq` (or, with `remove`, takes it back).
pub async fn react(room: RoomId, seq: u64, emoji: String, remove: bool) -> Result<()> {
    if remove {
        call_unit(Command::Unreact { room, seq, emoji }).await
    } else {
        call_unit(Command::React { room, seq, emoji }).await
    }
}

pub async fn retry(client_id: String) -> Result<()> {
    call_unit(Command::Retry { client_id }).await
}

pub async fn discard(client_id: String) -> Result<()> {
    call_unit(Command::Discard { client_id }).await
}

pub async fn edit(room: RoomId, seq: u64, body: String) -> Result<()> {
    call_unit(Command::Edit { room, seq, body }).await
}

pub async fn delete(room: RoomId, seq: u64) -> Result<()> {
    call_unit(Command::Delete { room, seq }).await
}

pub async fn mark_read(room: RoomId, seq: u64) -> Result<()> {
    call_unit(Command::MarkRead { room, seq }).await
}

pub async fn typing(room: RoomId) -> Result<()> {
    call_unit(Command::Typing { room }).await
}

pub async fn create_room(name: String, visibility: Visibility) -> Result<Room> {
    call(Command::CreateRoom { name, visibility }).await
}

pub async fn public_rooms() -> Result<Vec<Room>> {
    call(Command::PublicRooms).await
}

pub async fn join_room(room: RoomId) -> Result<Room> {
    call(Command::JoinRoom { room }).await
}

pub async fn leave_room(room: RoomId) -> Result<()> {
    call_unit(Command::LeaveRoom { room }).await
}

pub async fn members(room: RoomId) -> Result<Vec<MemberView>> {
    call(Command::Members { room }).await
}

pub async fn search_users(query: String) -> Result<Vec<UserView>> {
    call(Command::SearchUsers { query }).await
}

pub async fn open_dm(user: UserId) -> Result<Room> {
    call(Command::OpenDm { user }).await
}

pub async fn search(query: String) -> Result<Vec<SearchHit>> {
    call(Command::Search { query }).await
}

pub async fn get_draft(room: RoomId) -> Result<String> {
    call(Command::GetDraft { room }).await
}

pub async fn set_draft(room: RoomId, text: String) -> Result<()> {
    call_unit(Command::SetDraft { room, text }).await
}

pub async fn set_focus(room: Option<RoomId>) -> Result<()> {
    call_unit(Command::SetFocus { room }).await
}

pub async fn get_settings() -> Result<Settings> {
    call(Command::GetSettings).await
}

pub async fn set_settings(settings: Settings) -> Result<()> {
    call_unit(Command::SetSettings { settings }).await
}

/// Bans `user` from `room` (the room's owner).
pub async fn ban(room: RoomId, user: UserId) -> Result<()> {
    call_unit(Command::Ban { room, user }).await
}

pub async fn unban(room: RoomId, user: UserId) -> Result<()> {
    call_unit(Command::Unban { room, user }).await
}

/// Who is banned from `room` (the room's owner).
pub async fn bans(room: RoomId) -> Result<Vec<UserRef>> {
    call(Command::Bans { room }).await
}

pub async fn block(user: UserId) -> Result<()> {
    call_unit(Command::Block { user }).await
}

pub async fn unblock(user: UserId) -> Result<()> {
    call_unit(Command::Unblock { user }).await
}

/// The users this account blocked.
pub async fn blocks() -> Result<Vec<UserRef>> {
    call(Command::Blocks).await
}

/// The owner renames the room and/or sets its topic (`None` keeps a field).
pub async fn update_room(
    room: RoomId,
    name: Option<String>,
    topic: Option<String>,
) -> Result<Room> {
    call(Command::UpdateRoom { room, name, topic }).await
}

/// The owner deletes the room for everyone.
pub async fn delete_room(room: RoomId) -> Result<()> {
    call_unit(Command::DeleteRoom { room }).await
}

/// When to notify about a room (synced to the user's other devices).
pub async fn set_notify(room: RoomId, level: NotifyLevel) -> Result<()> {
    call_unit(Command::SetNotify { room, level }).await
}

/// Sets the user's display name (`""` removes it).
pub async fn set_display_name(display_name: String) -> Result<User> {
    call(Command::SetDisplayName { display_name }).await
}

/// A user's card: username, display name, presence.
pub async fn user_card(user: UserId) -> Result<UserView> {
    call(Command::UserCard { user }).await
}

// ---------------------------------------------------------------------------------------------
// Attachments (issue 14)
// ---------------------------------------------------------------------------------------------

/// Sends the files at `paths` as one message (the file picker and drag and drop end here).
pub async fn send_files(room: RoomId, paths: Vec<String>) -> Result<MessageView> {
    call(Command::SendFiles {
        room,
        paths,
        body: String::new(),
        reply_to: None,
    })
    .await
}

/// Sends bytes the UI holds (a pasted image) as a file called `name`.
pub async fn send_bytes(room: RoomId, name: String, bytes: Vec<u8>) -> Result<MessageView> {
    call(Command::SendBytes { room, name, bytes }).await
}

/// Stops an upload and drops its message.
pub async fn cancel_upload(client_id: String) -> Result<()> {
    call_unit(Command::CancelUpload { client_id }).await
}

/// Saves attachment `id` at `path`; returns the bytes written.
pub async fn save_attachment(id: String, path: String) -> Result<u64> {
    call(Command::SaveAttachment { id, path }).await
}

pub async fn blob_cache() -> Result<BlobCacheView> {
    call(Command::BlobCache).await
}

pub async fn set_blob_cache_limit(bytes: u64) -> Result<BlobCacheView> {
    call(Command::SetBlobCacheLimit { bytes }).await
}

/// This app's version and the update ready to install, if any.
pub async fn update_status() -> Result<protocol::ipc::UpdateStatus> {
    call(Command::UpdateStatus).await
}

/// Installs the ready update; on success the app restarts as the new version (this call then
/// never answers).
pub async fn install_update() -> Result<()> {
    call_unit(Command::InstallUpdate).await
}

/// An attachment's bytes (its thumbnail with `thumbnail`) as an object URL (`blob:`) for an
/// `<img>`: the backend fetches them, so the page never loads a server URL (the CSP allows
/// `blob:` images only). Give it back with [`revoke_url`] when the image goes.
pub async fn attachment_url(id: &str, thumbnail: bool, content_type: &str) -> Result<String> {
    let args = to_js(&serde_json::json!({ "id": id, "thumbnail": thumbnail }))?;
    let buffer = tauri_invoke(protocol::ipc::ATTACHMENT_BYTES, args)
        .await
        .map_err(decode_error)?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    let parts = js_sys::Array::of1(&bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(decode_error)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(decode_error)
}

/// Frees an object URL made by [`attachment_url`].
pub fn revoke_url(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

/// The system's file picker (Tauri's dialog plugin): the files chosen, none when cancelled.
pub async fn pick_files() -> Result<Vec<String>> {
    let args = to_js(&serde_json::json!({
        "options": {"multiple": true, "directory": false, "title": "Attach files"}
    }))?;
    let picked = tauri_invoke("plugin:dialog|open", args)
        .await
        .map_err(decode_error)?;
    if picked.is_null() || picked.is_undefined() {
        return Ok(Vec::new());
    }
    if let Some(one) = picked.as_string() {
        return Ok(vec![one]);
    }
    serde_wasm_bindgen::from_value(picked).map_err(|e| Error::Bridge(e.to_string()))
}

/// The system's save dialog, proposing `name`: the path chosen, `None` when cancelled.
pub async fn pick_save_path(name: &str) -> Result<Option<String>> {
    let args = to_js(&serde_json::json!({
        "options": {"defaultPath": name, "title": "Save file"}
    }))?;
    let picked = tauri_invoke("plugin:dialog|save", args)
        .await
        .map_err(decode_error)?;
    Ok(picked.as_string())
}

/// What a drag over the window does (Tauri's window drag-and-drop events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drag {
    /// Files are dragged over the window.
    Over,
    /// They left without being dropped.
    Left,
    /// They were dropped: their paths.
    Dropped(Vec<String>),
}

/// Calls `on_drag` for drags of files over the window; unsubscribes when dropped.
pub fn listen_drags(on_drag: impl Fn(Drag) + 'static) -> Vec<Subscription> {
    #[derive(serde::Deserialize)]
    struct Dropped {
        #[serde(default)]
        paths: Vec<String>,
    }
    let on_drag = Rc::new(on_drag);
    let mut subs = Vec::new();
    for name in [
        "tauri://drag-enter",
        "tauri://drag-over",
        "tauri://drag-leave",
        "tauri://drag-drop",
    ] {
        let on_drag = on_drag.clone();
        subs.push(listen_raw(name, move |payload| {
            let drag = match name {
                "tauri://drag-leave" => Drag::Left,
                "tauri://drag-drop" => {
                    let paths = serde_wasm_bindgen::from_value::<Dropped>(payload)
                        .map(|d| d.paths)
                        .unwrap_or_default();
                    Drag::Dropped(paths)
                }
                _ => Drag::Over,
            };
            on_drag(drag);
        }));
    }
    subs
}

/// A live subscription to the backend's `chat` event; unsubscribes when dropped.
pub struct Subscription {
    unlisten: Rc<RefCell<Option<js_sys::Function>>>,
    dropped: Rc<RefCell<bool>>,
    _handler: Rc<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        *self.dropped.borrow_mut() = true;
        if let Some(unlisten) = self.unlisten.borrow_mut().take() {
            let _ = unlisten.call0(&JsValue::NULL);
        }
    }
}

/// Calls `on_event` for every [`AppEvent`] the backend emits, and `on_error` if subscribing
/// fails or an event cannot be decoded.
pub fn listen_events(
    on_event: impl Fn(AppEvent) + 'static,
    on_error: impl Fn(Error) + 'static,
) -> Subscription {
    let on_error = Rc::new(on_error);
    let decode_failed = on_error.clone();
    listen_with(
        protocol::ipc::EVENT,
        move |payload| match serde_wasm_bindgen::from_value::<AppEvent>(payload) {
            Ok(ev) => on_event(ev),
            Err(e) => decode_failed(Error::Bridge(format!("bad event: {e}"))),
        },
        move |e| on_error(e),
    )
}

/// Calls `on_payload` with the payload of every Tauri event `name` (errors are logged).
fn listen_raw(name: &'static str, on_payload: impl Fn(JsValue) + 'static) -> Subscription {
    listen_with(name, on_payload, move |e| {
        web_sys::console::warn_1(&JsValue::from_str(&format!("cannot listen to {name}: {e}")))
    })
}

fn listen_with(
    name: &'static str,
    on_payload: impl Fn(JsValue) + 'static,
    on_error: impl Fn(Error) + 'static,
) -> Subscription {
    let handler = Rc::new(Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        // Tauri passes `{event, id, payload}`.
        let payload = js_sys::Reflect::get(&event, &JsValue::from_str("payload"))
            .unwrap_or(JsValue::UNDEFINED);
        on_payload(payload);
    }));
    let unlisten = Rc::new(RefCell::new(None));
    let dropped = Rc::new(RefCell::new(false));
    {
        let handler = handler.clone();
        let unlisten = unlisten.clone();
        let dropped = dropped.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match tauri_listen(name, &handler).await {
                Ok(f) => {
                    if let Ok(f) = f.dyn_into::<js_sys::Function>() {
                        if *dropped.borrow() {
                            let _ = f.call0(&JsValue::NULL);
                        } else {
                            *unlisten.borrow_mut() = Some(f);
                        }
                    }
                }
                Err(e) => on_error(decode_error(e)),
            }
        });
    }
    Subscription {
        unlisten,
        dropped,
        _handler: handler,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_call_is_one_command_value() {
        assert_eq!(
            encode(&Command::Retry {
                client_id: "c1".into(),
            })
            .unwrap(),
            json!({"command": {"cmd": "retry", "client_id": "c1"}})
        );
        assert_eq!(
            encode(&Command::Messages {
                room: RoomId(3),
                before: None,
                limit: Some(50),
            })
            .unwrap(),
            json!({"command": {"cmd": "messages", "room": 3, "before": null, "limit": 50}})
        );
        assert_eq!(
            encode(&Command::Snapshot).unwrap(),
            json!({"command": {"cmd": "snapshot"}})
        );
        let settings = json!({"command": {"cmd": "set_settings",
            "settings": {"start_minimized": true, "notifications": false,
                "hide_notification_text": false}}});
        assert_eq!(
            encode(&Command::SetSettings {
                settings: Settings {
                    start_minimized: true,
                    notifications: false,
                    hide_notification_text: false,
                },
            })
            .unwrap(),
            settings
        );
        // What the backend's dispatch decodes is what was sent.
        let back: Command = serde_json::from_value(settings["command"].clone()).unwrap();
        assert!(matches!(back, Command::SetSettings { .. }));
    }

    #[test]
    fn known_codes_get_friendly_text() {
        let err = Error::App(AppError {
            code: AppErrorCode::Server(ErrorCode::InvalidCredentials),
            message: "invalid credentials".into(),
            certificate: None,
        });
        assert_eq!(err.user_message(), "Wrong username or password.");
        let err = Error::App(AppError {
            code: AppErrorCode::Server(ErrorCode::InvalidUsername),
            message: "username must be 3 to 32 characters".into(),
            certificate: None,
        });
        assert_eq!(err.user_message(), "Username must be 3 to 32 characters");
    }
}
