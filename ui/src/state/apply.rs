//! The reducer's rules: how each [`Action`] changes the [`AppState`].

use super::*;

impl AppState {
    pub(super) fn apply(&mut self, action: Action) {
        match action {
            Action::CacheUpgrade(percent) => {
                // Only while starting: a late event must not cover a screen already shown.
                if self.screen == Screen::Loading {
                    self.cache_upgrade = Some(percent);
                }
            }
            Action::Snapshot(snap) => {
                self.cache_upgrade = None;
                self.server_url = snap.server_url;
                self.username_hint = snap.username;
                self.connection = snap.connection;
                self.limits = snap.limits;
                self.screen = if snap.user.is_some() {
                    Screen::Main
                } else if self.server_url.is_some() {
                    Screen::Auth
                } else {
                    Screen::Server
                };
                self.user = snap.user;
                self.reopen = snap.last_room;
            }
            Action::ServerChosen(url) => {
                self.server_url = Some(url);
                self.screen = Screen::Auth;
            }
            Action::ChangeServer => self.screen = Screen::Server,
            Action::LoggedIn(user) => {
                self.username_hint = Some(user.username.clone());
                self.user = Some(user);
                self.notice = None;
                self.screen = Screen::Main;
            }
            Action::LoggedOut { reason } => {
                let keep = AppState {
                    server_url: self.server_url.take(),
                    username_hint: self
                        .user
                        .take()
                        .map(|u| u.username)
                        .or(self.username_hint.take()),
                    notice: reason,
                    limits: self.limits.clone(),
                    screen: Screen::Auth,
                    window_focused: self.window_focused,
                    ..AppState::default()
                };
                *self = keep;
            }
            Action::Connection { state, now_ms } => {
                self.reconnect_at_ms = match &state {
                    ConnectionState::Reconnecting { retry_in_ms, .. } => {
                        Some(now_ms + i64::try_from(*retry_in_ms).unwrap_or(i64::MAX / 2))
                    }
                    _ => None,
                };
                if state == ConnectionState::Online && self.connection != ConnectionState::Online {
                    // Presence changes while we were away were never reported: forget what the
                    // events said and go by the lists, which are reloaded now.
                    self.presence.clear();
                }
                if state != ConnectionState::Online {
                    // Nobody's typing reaches us while the connection is down.
                    self.typing.clear();
                }
                self.connection = state;
            }
            Action::Limits(limits) => self.limits = limits,
            Action::UpdateReady(update) => self.update = Some(update),
            Action::Rooms(rooms) => {
                self.rooms = rooms;
                self.rooms_loaded = true;
                // The first list (the cache's, at start) opens the room last read, if the user
                // has not opened one yet and it is still theirs.
                if !self.rooms.is_empty() {
                    if let Some(room) = self.reopen.take() {
                        if self.current.is_none() && self.rooms.iter().any(|r| r.room.id == room) {
                            self.apply(Action::Select(Some(room)));
                        }
                    }
                }
                if let Some(current) = self.current {
                    if !self.rooms.iter().any(|r| r.room.id == current) {
                        self.current = None;
                        self.divider_after = None;
                    }
                }
            }
            Action::Select(room) => {
                if self.current != room {
                    // The room left behind keeps its newest page only: scrolled far back, it
                    // would hold every page read, for as long as the app runs.
                    if let Some(t) = self.current.and_then(|left| self.timelines.get_mut(&left)) {
                        if t.messages.len() > KEEP_AWAY {
                            Rc::make_mut(t).trim_to_newest(KEEP_AWAY);
                        }
                    }
                    self.divider_after = room.and_then(|id| {
                        self.rooms
                            .iter()
                            .find(|r| r.room.id == id)
                            .map(|r| r.room.read_seq)
                    });
                }
                self.current = room;
                self.jump_to = None;
                self.sidebar_open = false;
                if room.is_some() {
                    self.removal = None;
                }
            }
            Action::JumpTo { room, seq } => {
                self.apply(Action::Select(Some(room)));
                self.jump_to = Some(seq);
            }
            Action::Jumped => self.jump_to = None,
            Action::Trim(room) => {
                if let Some(t) = self.timelines.get_mut(&room) {
                    if t.messages.len() > KEEP_READING {
                        Rc::make_mut(t).trim_to_newest(KEEP_READING);
                    }
                }
            }
            Action::Escape => {
                if self.dialog.is_none() {
                    self.sidebar_open = false;
                }
            }
            Action::Page { room, page, older } => {
                let t = Rc::make_mut(self.timelines.entry(room).or_default());
                if older || !t.loaded {
                    t.has_more = page.has_more;
                }
                for m in page.messages {
                    t.upsert(m);
                }
                t.loaded = true;
                t.load_error = false;
                if older {
                    t.loading_older = false;
                }
            }
            Action::LoadingOlder(room) => {
                Rc::make_mut(self.timelines.entry(room).or_default()).loading_older = true;
            }
            Action::LoadFailed(room) => {
                let t = Rc::make_mut(self.timelines.entry(room).or_default());
                t.loading_older = false;
                t.load_error = !t.loaded;
            }
            Action::Message(m) => {
                if m.status != protocol::ipc::MessageStatus::Pending {
                    self.uploads.remove(&m.client_id);
                }
                if let Some(list) = self.typing.get_mut(&m.room) {
                    list.retain(|t| t.user != m.sender);
                }
                self.update_preview(&m);
                self.keep_divider_for_unread(&m);
                let away = self.current != Some(m.room);
                if let Some(t) = self.timelines.get_mut(&m.room) {
                    let t = Rc::make_mut(t);
                    crate::replies::refresh_quotes(&mut t.messages, &m);
                    t.upsert(m);
                    // A busy room in the background grows by pages, then sheds them at once.
                    if away && t.messages.len() > KEEP_AWAY + KEEP_AWAY / 2 {
                        t.trim_to_newest(KEEP_AWAY);
                    }
                }
            }
            Action::Discarded { room, client_id } => {
                if let Some(t) = self.timelines.get_mut(&room) {
                    Rc::make_mut(t)
                        .messages
                        .retain(|m| !(m.client_id == client_id && m.seq.is_none()));
                }
            }
            Action::Presence {
                user,
                online,
                last_seen,
            } => {
                self.presence.insert(user, Presence { online, last_seen });
            }
            Action::Typing {
                room,
                user,
                username,
                until_ms,
            } => {
                if self.user.as_ref().is_some_and(|me| me.id == user) {
                    return;
                }
                let list = self.typing.entry(room).or_default();
                match list.iter_mut().find(|t| t.user == user) {
                    Some(t) => t.until_ms = until_ms,
                    None => list.push(Typist {
                        user,
                        username,
                        until_ms,
                    }),
                }
            }
            Action::Tick { now_ms } => {
                for list in self.typing.values_mut() {
                    list.retain(|t| t.until_ms > now_ms);
                }
                self.typing.retain(|_, list| !list.is_empty());
            }
            Action::Members { room, members } => {
                self.members.insert(room, Rc::new(members));
            }
            Action::ToggleMembers => self.show_members = !self.show_members,
            Action::SetSidebar(open) => self.sidebar_open = open,
            Action::Open(dialog) => self.dialog = Some(dialog),
            Action::CloseDialog => self.dialog = None,
            Action::Toast(text) => {
                let id = self.next_toast;
                self.next_toast += 1;
                self.toasts.push(Toast { id, text });
                if self.toasts.len() > 3 {
                    self.toasts.remove(0);
                }
            }
            Action::DismissToast(id) => self.toasts.retain(|t| t.id != id),
            Action::WindowFocus(focused) => self.window_focused = focused,
            Action::MarkedRead { room, seq } => {
                if let Some(r) = self.rooms.iter_mut().find(|r| r.room.id == room) {
                    if seq > r.room.read_seq {
                        r.room.read_seq = seq;
                        r.room.unread = 0;
                        r.room.mentions = 0;
                    }
                }
            }
            Action::HistoryReset => {
                self.timelines.clear();
                self.members.clear();
                self.typing.clear();
                self.divider_after = None;
                self.jump_to = None;
                // The list itself stays (the open room stays open) until the backend's next
                // room list; its previews may be lost messages.
                for view in &mut self.rooms {
                    view.last_message = None;
                }
                self.history_generation = self.history_generation.wrapping_add(1);
                self.apply(Action::Toast(
                    "The server lost recent data; history was reloaded".into(),
                ));
            }
            Action::Blocked(users) => self.blocked = Some(Rc::new(users)),
            Action::UploadProgress {
                client_id,
                sent,
                total,
            } => {
                self.uploads.insert(client_id, (sent, total));
            }
            Action::Removed(removal) => {
                let room = removal.room;
                let was_open = self.current == Some(room);
                self.rooms.retain(|r| r.room.id != room);
                self.timelines.remove(&room);
                self.members.remove(&room);
                self.typing.remove(&room);
                if was_open {
                    self.current = None;
                    self.divider_after = None;
                    self.jump_to = None;
                    // A dialog about that room (leave, ban) has nothing left to act on.
                    self.dialog = None;
                    self.removal = Some(removal);
                } else {
                    self.apply(Action::Toast(removal.summary()));
                }
            }
            Action::Left(room) => {
                self.rooms.retain(|r| r.room.id != room);
                self.timelines.remove(&room);
                if self.current == Some(room) {
                    self.current = None;
                    self.divider_after = None;
                }
                self.dialog = None;
            }
            Action::UserUpdated { user, display_name } => {
                if let Some(me) = self.user.as_mut().filter(|u| u.id == user) {
                    me.display_name = display_name.clone();
                }
                for members in self.members.values_mut() {
                    if members.iter().any(|m| m.user.id == user) {
                        for m in Rc::make_mut(members)
                            .iter_mut()
                            .filter(|m| m.user.id == user)
                        {
                            m.user.display_name = display_name.clone();
                        }
                    }
                }
            }
        }
    }

    /// A message from someone else arrives in the room being read (open, window focused): it
    /// is read as it arrives, so the "new" line must not jump above it. The line moves past
    /// it unless it already marks older messages that were unread when the room was opened
    /// (or while the window was in the background).
    fn keep_divider_for_unread(&mut self, m: &MessageView) {
        let (Some(seq), Some(read)) = (m.seq, self.divider_after) else {
            return;
        };
        if self.current != Some(m.room) || !self.window_focused || Some(m.sender) == self.my_id() {
            return;
        }
        let Some(t) = self.timelines.get(&m.room).filter(|t| t.loaded) else {
            return;
        };
        let me = self.my_id();
        let marks_something = t
            .messages
            .iter()
            .any(|x| x.seq.is_some_and(|s| s > read && s != seq) && Some(x.sender) != me);
        if !marks_something && seq > read {
            self.divider_after = Some(seq);
        }
    }

    /// Keeps the side bar's preview line and order current without waiting for `rooms`.
    fn update_preview(&mut self, m: &MessageView) {
        let Some(i) = self.rooms.iter().position(|r| r.room.id == m.room) else {
            return;
        };
        let r = &mut self.rooms[i];
        let newer = match (&r.last_message, m.seq) {
            (None, _) => true,
            (Some(last), _) if last.client_id == m.client_id && last.sender == m.sender => true,
            (Some(last), Some(seq)) => last.seq.is_some_and(|s| seq > s),
            (Some(_), None) => true,
        };
        if !newer {
            return;
        }
        let moved_up = r
            .last_message
            .as_ref()
            .is_none_or(|last| last.client_id != m.client_id);
        r.last_message = Some(m.clone());
        if let Some(seq) = m.seq {
            r.room.last_seq = r.room.last_seq.max(seq);
        }
        if moved_up && i > 0 {
            let room = self.rooms.remove(i);
            self.rooms.insert(0, room);
        }
    }
}
