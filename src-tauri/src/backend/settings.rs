//! Drafts, the room in view, and the app settings.

use super::{key, Backend};
use crate::error::Result;
use protocol::ipc::Settings;
use protocol::RoomId;

impl Backend {
    pub async fn get_draft(&self, room: RoomId) -> Result<String> {
        self.inner.cache.draft(room).await
    }

    pub async fn set_draft(&self, room: RoomId, text: &str) -> Result<()> {
        self.inner.cache.set_draft(room, text).await
    }

    /// The room in view (none: no room open). An opened room is also remembered, so the next
    /// start opens it again.
    pub async fn set_focus(&self, room: Option<RoomId>) -> Result<()> {
        let remember = {
            let mut state = self.inner.lock();
            state.focus = room;
            let changed = room.is_some() && room != state.last_room;
            if changed {
                state.last_room = room;
            }
            room.filter(|_| changed)
        };
        if let Some(room) = remember {
            self.inner
                .cache
                .set_json_setting(key::LAST_ROOM, &room)
                .await?;
        }
        Ok(())
    }

    pub fn get_settings(&self) -> Settings {
        self.settings()
    }

    pub async fn set_settings(&self, settings: Settings) -> Result<()> {
        self.inner
            .cache
            .set_json_setting(key::SETTINGS, &settings)
            .await?;
        self.inner.lock().settings = settings;
        Ok(())
    }
}
