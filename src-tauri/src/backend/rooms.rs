//! Rooms and people: the room list, creating, joining and leaving rooms, direct rooms,
//! members, user search, and the presence of direct rooms' peers.

use super::{Backend, Inner};
use crate::error::{Error, Result};
use protocol::ipc::{AppEvent, MemberView, RoomView, UserView};
use protocol::rest::{Room, Visibility};
use protocol::{validate, RoomId, UserId};

impl Backend {
    /// The room list from the cache, most recently active first.
    pub async fn rooms(&self) -> Result<Vec<RoomView>> {
        let cache = &self.inner.cache;
        let mut views = Vec::new();
        for cached in cache.rooms().await? {
            let last_message = cache.last_message(cached.room.id).await?;
            let peer_online = match cached.room.peer {
                Some(peer) => cache.online(peer).await?,
                None => None,
            };
            // Every event from the start is cached (`complete_from` 0 or 1) and none is a message.
            let no_messages =
                last_message.is_none() && cached.complete_from.is_some_and(|from| from <= 1);
            views.push(RoomView {
                room: cached.room,
                last_message,
                peer_online,
                no_messages,
            });
        }
        Ok(views)
    }

    pub async fn create_room(&self, name: &str, visibility: Visibility) -> Result<Room> {
        validate::room_name(name)?;
        let (api, token) = self.inner.authed()?;
        let room = self
            .inner
            .checked(api.create_room(&token, name, visibility).await)
            .await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    pub async fn public_rooms(&self) -> Result<Vec<Room>> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.public_rooms(&token).await).await
    }

    pub async fn join_room(&self, room: RoomId) -> Result<Room> {
        let (api, token) = self.inner.authed()?;
        let room = self.inner.checked(api.join(&token, room).await).await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    pub async fn leave_room(&self, room: RoomId) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner.checked(api.leave(&token, room).await).await?;
        self.inner.cache.remove_room(room).await?;
        self.inner.rooms_changed().await;
        Ok(())
    }

    pub async fn open_dm(&self, user: UserId) -> Result<Room> {
        let (api, token) = self.inner.authed()?;
        let room = self.inner.checked(api.open_dm(&token, user).await).await?;
        self.inner.room_added(&room).await?;
        Ok(room)
    }

    /// Members from the server (refreshing the cache), or from the cache when offline.
    pub async fn members(&self, room: RoomId) -> Result<Vec<MemberView>> {
        let (api, token) = self.inner.authed()?;
        match self.inner.checked(api.members(&token, room).await).await {
            Ok(members) => self.inner.cache.set_members(room, &members).await?,
            Err(Error::Unreachable(e)) => {
                tracing::debug!(error = %e, "members from the cache (server unreachable)");
            }
            Err(e) => return Err(e),
        }
        self.inner.cache.members(room).await
    }

    pub async fn search_users(&self, query: &str) -> Result<Vec<UserView>> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let (api, token) = self.inner.authed()?;
        let users = self
            .inner
            .checked(api.search_users(&token, query).await)
            .await?;
        Ok(users
            .into_iter()
            .map(|u| UserView {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                online: u.online,
                last_seen: u.last_seen,
            })
            .collect())
    }
}

impl Inner {
    /// A room came from REST (created, joined, DM): cache it and tell the UI.
    async fn room_added(&self, room: &Room) -> Result<()> {
        self.cache.upsert_room(room).await?;
        if let (Some(peer), Ok((api, token))) = (room.peer, self.authed()) {
            match api.user(&token, peer).await {
                Ok(user) => self.cache.set_user(&user).await?,
                Err(e) => tracing::debug!(error = %e, "cannot fetch the peer's presence"),
            }
        }
        self.rooms_changed().await;
        Ok(())
    }

    pub(super) async fn rooms_changed(&self) {
        self.sink.emit(AppEvent::RoomsChanged);
        match self.cache.total_unread().await {
            Ok(total) => self.sink.unread_changed(total),
            Err(e) => tracing::warn!(error = %e, "cannot count unread messages"),
        }
    }

    /// Fetches the presence of direct rooms' peers in the background (presence frames only
    /// report changes), so the side bar can show who is online.
    pub(super) fn refresh_peers(&self, rooms: &[Room]) {
        let peers: Vec<UserId> = rooms.iter().filter_map(|r| r.peer).take(100).collect();
        let (Some(inner), Ok((api, token))) = (self.me.upgrade(), self.authed()) else {
            return;
        };
        if peers.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for peer in peers {
                match api.user(&token, peer).await {
                    Ok(user) => {
                        if let Err(e) = inner.cache.set_user(&user).await {
                            tracing::warn!(error = %e, "cannot cache a peer");
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot fetch a peer's presence");
                        return;
                    }
                }
            }
            inner.sink.emit(AppEvent::RoomsChanged);
        });
    }
}
