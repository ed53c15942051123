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

    pub fn set_focus(&self, room: Option<RoomId>) {
        self.inner.lock().focus = room;
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
