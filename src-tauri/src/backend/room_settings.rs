//! Room settings and profiles (issue 13): rename and topic, delete, the notification level per
//! room, the user's display name and other users' cards. Changes go to the server over REST;
//! the cache follows the answer at once and the socket's events after (other devices too).

use super::Backend;
use crate::error::{Error, Result};
use protocol::ipc::{AppEvent, UserView};
use protocol::rest::{NotifyLevel, Room, UpdateProfile, UpdateRoom, User};
use protocol::{validate, RoomId, UserId};

impl Backend {
    pub async fn update_room(
        &self,
        room: RoomId,
        name: Option<String>,
        topic: Option<String>,
    ) -> Result<Room> {
        if let Some(name) = &name {
            validate::room_name(name)?;
        }
        if let Some(topic) = &topic {
            validate::topic(topic)?;
        }
        let (api, token) = self.inner.authed()?;
        let update = UpdateRoom { name, topic };
        let updated = self
            .inner
            .checked(api.update_room(&token, room, &update).await)
            .await?;
        self.inner.cache.upsert_room(&updated).await?;
        self.inner.rooms_changed().await;
        Ok(updated)
    }

    pub async fn delete_room(&self, room: RoomId) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.delete_room(&token, room).await)
            .await?;
        self.inner.cache.remove_room(room).await?;
        self.inner.rooms_changed().await;
        Ok(())
    }

    pub async fn set_notify(&self, room: RoomId, level: NotifyLevel) -> Result<()> {
        let (api, token) = self.inner.authed()?;
        self.inner
            .checked(api.set_notify(&token, room, level).await)
            .await?;
        if self.inner.cache.set_notify(room, level).await? {
            self.inner.rooms_changed().await;
        }
        Ok(())
    }

    pub async fn set_display_name(&self, display_name: &str) -> Result<User> {
        if !display_name.is_empty() {
            validate::display_name(display_name)?;
        }
        let (api, token) = self.inner.authed()?;
        let update = UpdateProfile {
            display_name: Some(display_name.to_owned()),
        };
        let user = self
            .inner
            .checked(api.update_profile(&token, &update).await)
            .await?;
        self.inner.profile_changed(user.clone()).await?;
        Ok(user)
    }

    /// A user's card from the server (cached for the members list), or from the cache when
    /// the server cannot be reached.
    pub async fn user_card(&self, user: UserId) -> Result<UserView> {
        let (api, token) = self.inner.authed()?;
        match self.inner.checked(api.user(&token, user).await).await {
            Ok(found) => {
                self.inner.cache.set_user(&found).await?;
                Ok(UserView {
                    id: found.id,
                    username: found.username,
                    display_name: found.display_name,
                    online: found.online,
                    last_seen: found.last_seen,
                })
            }
            Err(Error::Unreachable(e)) => {
                tracing::debug!(error = %e, "user card from the cache (server unreachable)");
                self.inner
                    .cache
                    .user(user)
                    .await?
                    .ok_or(Error::Unreachable(e))
            }
            Err(e) => Err(e),
        }
    }
}

impl super::Inner {
    /// The signed-in user's own profile changed (here or on another device).
    pub(super) async fn profile_changed(&self, user: User) -> Result<()> {
        let changed = {
            let mut state = self.lock();
            match &mut state.session {
                Some(session) if session.user != user => {
                    session.user = user.clone();
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.cache.set_json_setting(super::key::USER, &user).await?;
        }
        self.cache
            .set_display_name(user.id, user.display_name.as_deref())
            .await?;
        self.sink.emit(AppEvent::UserUpdated {
            user: user.id,
            display_name: user.display_name,
        });
        Ok(())
    }

    /// A `user_updated` frame: another user's display name, or ours from another device.
    pub(super) async fn user_updated(
        &self,
        user: UserId,
        display_name: Option<String>,
    ) -> Result<()> {
        if let Some(mut me) = self.me().filter(|me| me.id == user) {
            me.display_name = display_name;
            return self.profile_changed(me).await;
        }
        self.cache
            .set_display_name(user, display_name.as_deref())
            .await?;
        self.sink.emit(AppEvent::UserUpdated { user, display_name });
        self.rooms_changed().await;
        Ok(())
    }
}
