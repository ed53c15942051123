//! Backend calls that feed the state: each runs an `ipc` command in the background and
//! dispatches what came back (or a toast when it failed).

use crate::ipc;
use crate::state::{Action, AppState};
use protocol::ipc::MessageView;
use protocol::RoomId;
use yew::platform::spawn_local;
use yew::UseReducerDispatcher;

pub type Dispatcher = UseReducerDispatcher<AppState>;

/// How many messages one page asks for.
pub const PAGE: u32 = 50;

pub fn toast(d: &Dispatcher, err: &ipc::Error) {
    d.dispatch(Action::Toast(err.user_message()));
}

/// Reloads the room list from the cache.
pub fn load_rooms(d: &Dispatcher) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::rooms().await {
            Ok(rooms) => d.dispatch(Action::Rooms(rooms)),
            Err(e) => toast(&d, &e),
        }
    });
}

/// Reloads the room list, then opens `room` (after creating, joining or opening a DM).
pub fn load_rooms_then_open(d: &Dispatcher, room: RoomId) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::rooms().await {
            Ok(rooms) => d.dispatch(Action::Rooms(rooms)),
            Err(e) => toast(&d, &e),
        }
        d.dispatch(Action::Select(Some(room)));
    });
}

/// Loads the newest page of a room (merged into what is loaded).
pub fn load_latest(d: &Dispatcher, room: RoomId) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::messages(room, None, Some(PAGE)).await {
            Ok(page) => d.dispatch(Action::Page {
                room,
                page,
                older: false,
            }),
            Err(e) => {
                d.dispatch(Action::LoadFailed(room));
                toast(&d, &e);
            }
        }
    });
}

/// Loads the page before `before`.
pub fn load_older(d: &Dispatcher, room: RoomId, before: u64) {
    d.dispatch(Action::LoadingOlder(room));
    let d = d.clone();
    spawn_local(async move {
        match ipc::messages(room, Some(before), Some(PAGE)).await {
            Ok(page) => d.dispatch(Action::Page {
                room,
                page,
                older: true,
            }),
            Err(e) => {
                d.dispatch(Action::LoadFailed(room));
                toast(&d, &e);
            }
        }
    });
}

pub fn load_members(d: &Dispatcher, room: RoomId) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::members(room).await {
            Ok(members) => d.dispatch(Action::Members { room, members }),
            Err(e) => toast(&d, &e),
        }
    });
}

/// A message as the composer hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    pub body: String,
    /// The seq of the message it answers.
    pub reply_to: Option<u64>,
    /// The users its `@username`s name.
    pub mentions: Vec<protocol::UserId>,
    /// `@room` (owners only).
    pub mention_room: bool,
}

/// Puts a message in the outbox; it shows as pending until the backend reports it sent.
/// When the backend refuses it outright, the text goes back to `give_back` (the composer).
pub fn send(d: &Dispatcher, room: RoomId, msg: Outgoing, give_back: yew::Callback<String>) {
    let d = d.clone();
    spawn_local(async move {
        let body = msg.body.clone();
        match ipc::send(room, msg.body, msg.reply_to, msg.mentions, msg.mention_room).await {
            Ok(pending) => d.dispatch(Action::Message(pending)),
            Err(e) => {
                give_back.emit(body);
                toast(&d, &e);
            }
        }
    });
}

/// Adds or takes back the user's reaction; the backend reports the message as changed.
pub fn react(d: &Dispatcher, room: RoomId, seq: u64, emoji: String, remove: bool) {
    let d = d.clone();
    spawn_local(async move {
        if let Err(e) = ipc::react(room, seq, emoji, remove).await {
            toast(&d, &e);
        }
    });
}

pub fn retry(d: &Dispatcher, message: &MessageView) {
    let d = d.clone();
    let client_id = message.client_id.clone();
    spawn_local(async move {
        if let Err(e) = ipc::retry(client_id).await {
            toast(&d, &e);
        }
    });
}

pub fn discard(d: &Dispatcher, message: &MessageView) {
    let d = d.clone();
    let room = message.room;
    let client_id = message.client_id.clone();
    spawn_local(async move {
        match ipc::discard(client_id.clone()).await {
            Ok(()) => d.dispatch(Action::Discarded { room, client_id }),
            Err(e) => toast(&d, &e),
        }
    });
}

pub fn edit(d: &Dispatcher, room: RoomId, seq: u64, body: String) {
    let d = d.clone();
    spawn_local(async move {
        if let Err(e) = ipc::edit(room, seq, body).await {
            toast(&d, &e);
        }
    });
}

pub fn delete(d: &Dispatcher, room: RoomId, seq: u64) {
    let d = d.clone();
    spawn_local(async move {
        if let Err(e) = ipc::delete(room, seq).await {
            toast(&d, &e);
        }
    });
}

/// Opens (or creates) the direct room with a user and shows it.
pub fn open_dm(d: &Dispatcher, user: protocol::UserId) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::open_dm(user).await {
            Ok(room) => {
                d.dispatch(Action::CloseDialog);
                load_rooms_then_open(&d, room.id);
            }
            Err(e) => toast(&d, &e),
        }
    });
}

/// Loads the list of blocked users.
pub fn load_blocks(d: &Dispatcher) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::blocks().await {
            Ok(users) => d.dispatch(Action::Blocked(users)),
            Err(e) => toast(&d, &e),
        }
    });
}

/// Unblocks `user` (no confirmation: it only gives back what blocking took) and says so.
pub fn unblock(d: &Dispatcher, user: protocol::UserId, name: String) {
    let d = d.clone();
    spawn_local(async move {
        match ipc::unblock(user).await {
            Ok(()) => {
                d.dispatch(Action::Toast(format!(
                    "Unblocked {}",
                    crate::format::isolate(&name)
                )));
                load_blocks(&d);
            }
            Err(e) => toast(&d, &e),
        }
    });
}
