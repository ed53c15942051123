//! The Tauri commands: thin wrappers over [`Backend`], one per [`protocol::ipc::Command`].
//!
//! Arguments arrive as a JSON object with camelCase keys (`clientId`); results are the IPC view
//! types; failures serialize to [`protocol::ipc::AppError`] `{code, message}` through
//! [`Error`]'s `Serialize`.

use crate::backend::Backend;
use crate::error::Error;
use protocol::ipc::{
    MemberView, MessagePage, MessageView, RoomView, SearchHit, Settings, Snapshot, UserView,
};
use protocol::rest::{Room, User, Visibility};
use protocol::{RoomId, UserId};
use tauri::State;

type Result<T> = std::result::Result<T, Error>;

#[tauri::command]
pub async fn snapshot(backend: State<'_, Backend>) -> Result<Snapshot> {
    Ok(backend.snapshot())
}

#[tauri::command]
pub async fn set_server(backend: State<'_, Backend>, url: String) -> Result<()> {
    backend.set_server(&url).await
}

#[tauri::command]
pub async fn register(
    backend: State<'_, Backend>,
    username: String,
    password: String,
) -> Result<User> {
    backend.register(&username, &password).await
}

#[tauri::command]
pub async fn login(
    backend: State<'_, Backend>,
    username: String,
    password: String,
) -> Result<User> {
    backend.login(&username, &password).await
}

#[tauri::command]
pub async fn logout(backend: State<'_, Backend>) -> Result<()> {
    backend.logout().await
}

#[tauri::command]
pub async fn unsent(backend: State<'_, Backend>) -> Result<u32> {
    backend.unsent().await
}

#[tauri::command]
pub async fn reconnect_now(backend: State<'_, Backend>) -> Result<()> {
    backend.reconnect_now();
    Ok(())
}

#[tauri::command]
pub async fn rooms(backend: State<'_, Backend>) -> Result<Vec<RoomView>> {
    backend.rooms().await
}

#[tauri::command]
pub async fn messages(
    backend: State<'_, Backend>,
    room: RoomId,
    before: Option<u64>,
    limit: Option<u32>,
) -> Result<MessagePage> {
    backend.messages(room, before, limit).await
}

#[tauri::command]
pub async fn send(backend: State<'_, Backend>, room: RoomId, body: String) -> Result<MessageView> {
    backend.send(room, &body).await
}

#[tauri::command]
pub async fn retry(backend: State<'_, Backend>, client_id: String) -> Result<()> {
    backend.retry(&client_id).await
}

#[tauri::command]
pub async fn discard(backend: State<'_, Backend>, client_id: String) -> Result<()> {
    backend.discard(&client_id).await
}

#[tauri::command]
pub async fn edit(backend: State<'_, Backend>, room: RoomId, seq: u64, body: String) -> Result<()> {
    backend.edit(room, seq, &body).await
}

#[tauri::command]
pub async fn delete(backend: State<'_, Backend>, room: RoomId, seq: u64) -> Result<()> {
    backend.delete(room, seq).await
}

#[tauri::command]
pub async fn mark_read(backend: State<'_, Backend>, room: RoomId, seq: u64) -> Result<()> {
    backend.mark_read(room, seq).await
}

#[tauri::command]
pub async fn typing(backend: State<'_, Backend>, room: RoomId) -> Result<()> {
    backend.typing(room)
}

#[tauri::command]
pub async fn create_room(
    backend: State<'_, Backend>,
    name: String,
    visibility: Visibility,
) -> Result<Room> {
    backend.create_room(&name, visibility).await
}

#[tauri::command]
pub async fn public_rooms(backend: State<'_, Backend>) -> Result<Vec<Room>> {
    backend.public_rooms().await
}

#[tauri::command]
pub async fn join_room(backend: State<'_, Backend>, room: RoomId) -> Result<Room> {
    backend.join_room(room).await
}

#[tauri::command]
pub async fn leave_room(backend: State<'_, Backend>, room: RoomId) -> Result<()> {
    backend.leave_room(room).await
}

#[tauri::command]
pub async fn members(backend: State<'_, Backend>, room: RoomId) -> Result<Vec<MemberView>> {
    backend.members(room).await
}

#[tauri::command]
pub async fn search_users(backend: State<'_, Backend>, query: String) -> Result<Vec<UserView>> {
    backend.search_users(&query).await
}

#[tauri::command]
pub async fn open_dm(backend: State<'_, Backend>, user: UserId) -> Result<Room> {
    backend.open_dm(user).await
}

#[tauri::command]
pub async fn search(backend: State<'_, Backend>, query: String) -> Result<Vec<SearchHit>> {
    backend.search(&query).await
}

#[tauri::command]
pub async fn get_draft(backend: State<'_, Backend>, room: RoomId) -> Result<String> {
    backend.get_draft(room).await
}

#[tauri::command]
pub async fn set_draft(backend: State<'_, Backend>, room: RoomId, text: String) -> Result<()> {
    backend.set_draft(room, &text).await
}

#[tauri::command]
pub async fn set_focus(backend: State<'_, Backend>, room: Option<RoomId>) -> Result<()> {
    backend.set_focus(room);
    Ok(())
}

#[tauri::command]
pub async fn get_settings(backend: State<'_, Backend>) -> Result<Settings> {
    Ok(backend.get_settings())
}

#[tauri::command]
pub async fn set_settings(backend: State<'_, Backend>, settings: Settings) -> Result<()> {
    backend.set_settings(settings).await
}

/// Every command, for `tauri::Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        snapshot,
        set_server,
        register,
        login,
        logout,
        unsent,
        reconnect_now,
        rooms,
        messages,
        send,
        retry,
        discard,
        edit,
        delete,
        mark_read,
        typing,
        create_room,
        public_rooms,
        join_room,
        leave_room,
        members,
        search_users,
        open_dm,
        search,
        get_draft,
        set_draft,
        set_focus,
        get_settings,
        set_settings,
    ]
}
