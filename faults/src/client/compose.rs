//! What a scripted client writes: messages (some with a file, some replies), edits, deletions and reactions, each with its idempotency key.

use super::*;

impl Client {
    /// Composes a message in `room` carrying `file` (the harness hands over a large file whose
    /// first upload it cut short).
    pub fn compose_with_file(&self, room: RoomId, file: files::File) {
        let mut st = self.lock();
        st.next_id += 1;
        let id = format!("{}-m{}", self.spec.name, st.next_id);
        let offline = !st.connected;
        st.composed.push(Composed {
            room,
            id,
            offline,
            big: false,
            reply_to: None,
            upload: Some(Upload::new(file)),
            seq: None,
            fresh_acks: 0,
            refused: None,
        });
        let index = st.composed.len() - 1;
        drop(st);
        tokio::spawn(self.clone().upload(index));
    }

    /// Uploads the file of composed message `index` (to any live node, again after each
    /// failure), then puts the message in the outbox.
    pub(super) async fn upload(self, index: usize) {
        let mut rng = StdRng::seed_from_u64(self.spec.seed ^ index as u64 ^ 0x0f11e);
        loop {
            let (done, offline, room, name, bytes) = {
                let st = self.lock();
                let c = &st.composed[index];
                let Some(u) = &c.upload else { return };
                (st.done, st.offline, c.room, u.name.clone(), u.bytes.clone())
            };
            if done {
                return;
            }
            let node = if offline {
                None
            } else {
                self.pick_node(&mut rng)
            };
            let Some(addr) = node else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let api = match reqwest::Url::parse(&format!("http://{addr}")) {
                Ok(base) => chat_client::Client::with_http(self.http.clone(), base),
                Err(e) => Err(chat_client::Error::BadBase(e.to_string())),
            };
            let sent = match api {
                Ok(api) => {
                    let len = bytes.len() as u64;
                    api.with_token(&self.spec.token)
                        .upload(room, &name, bytes.to_vec(), Some(len), None)
                        .await
                }
                Err(e) => Err(e),
            };
            let outcome = sent.map_err(|e| {
                // The server unreachable or in trouble is retried; a refusal is final.
                let retry = e.is_transport() || e.status().is_some_and(|s| s >= 500 || s == 429);
                (!retry, format!("upload: {e}"))
            });
            if self.uploaded(index, outcome, &name, bytes.len()) {
                self.kick();
                return;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        }
    }

    /// Records the outcome of an upload attempt of composed message `index` (`Err((final,
    /// why))`); false when it is to be tried again.
    pub(super) fn uploaded(
        &self,
        index: usize,
        outcome: Result<Attachment, (bool, String)>,
        name: &str,
        len: usize,
    ) -> bool {
        let mut st = self.lock();
        match outcome {
            Ok(att) => {
                if att.size != len as u64 {
                    let line = format!(
                        "upload of {name} ({len} bytes) stored as {} bytes",
                        att.size
                    );
                    st.violations.push(line);
                }
                if let Some(u) = st.composed[index].upload.as_mut() {
                    u.stored = Some(att);
                }
                st.outbox.push(index);
                true
            }
            Err((true, why)) => {
                if !st.expect_wipe {
                    st.violations.push(why.clone());
                }
                if let Some(u) = st.composed[index].upload.as_mut() {
                    u.refused = Some(why);
                }
                true
            }
            Err((false, _)) => {
                if let Some(u) = st.composed[index].upload.as_mut() {
                    u.failed_attempts += 1;
                }
                false
            }
        }
    }

    /// Composes messages at the configured rate (and bursts on request), into the outbox.
    pub(super) async fn composer(self) {
        let mut rng = StdRng::seed_from_u64(self.spec.seed ^ 0xc0ffee);
        let mut files_made = 0u32;
        loop {
            let jitter = rng.random_range(0.5..1.5);
            tokio::time::sleep(self.spec.every.mul_f64(jitter)).await;
            // One message in six carries a file, made before taking the lock (a few MB of
            // random bytes take a while).
            let mut file = (self.spec.files && rng.random_range(0..6) == 0).then(|| {
                files_made += 1;
                files::random(&mut rng, &format!("{}-f{files_made}", self.spec.name))
            });
            let mut st = self.lock();
            if st.done {
                return;
            }
            if st.stop_composing {
                drop(st);
                continue;
            }
            let burst = st.burst.take();
            let (room, n) = match burst {
                Some((room, n)) => (room, n),
                None => (
                    self.spec.rooms[rng.random_range(0..self.spec.rooms.len())],
                    1,
                ),
            };
            let mut uploads = Vec::new();
            for _ in 0..n {
                st.next_id += 1;
                let id = format!("{}-m{}", self.spec.name, st.next_id);
                let offline = !st.connected;
                let (reply_to, upload) = if burst.is_some() {
                    (None, None)
                } else {
                    (
                        self.pick_reply(&st, room, &mut rng),
                        file.take().map(Upload::new),
                    )
                };
                let has_file = upload.is_some();
                st.composed.push(Composed {
                    room,
                    id,
                    offline,
                    big: burst.is_some(),
                    reply_to,
                    upload,
                    seq: None,
                    fresh_acks: 0,
                    refused: None,
                });
                let index = st.composed.len() - 1;
                if has_file {
                    uploads.push(index);
                } else {
                    st.outbox.push(index);
                }
            }
            drop(st);
            for index in uploads {
                tokio::spawn(self.clone().upload(index));
            }
            self.kick();
        }
    }

    /// One message in four answers an earlier one of the room (half of the time one of the
    /// client's own, which it may delete later).
    pub(super) fn pick_reply(
        &self,
        st: &ClientState,
        room: RoomId,
        rng: &mut StdRng,
    ) -> Option<(u64, Ident)> {
        if rng.random_range(0..4) != 0 {
            return None;
        }
        let own = rng.random_bool(0.5);
        let candidates: Vec<(u64, &View)> = st
            .views
            .get(&room)?
            .iter()
            .filter(|(_, v)| !v.deleted && (!own || v.sender == self.spec.user))
            .map(|(seq, v)| (*seq, v))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let (seq, v) = candidates[rng.random_range(0..candidates.len())];
        Some((seq, Ident::Message(v.sender, v.id.clone())))
    }

    /// Now and then, edit or delete one of this client's own messages (not one with a change
    /// still pending).
    pub(super) fn maybe_change(&self, st: &mut ClientState, rng: &mut StdRng) {
        if st.stop_composing || st.own.is_empty() || rng.random_range(0..4) != 0 {
            return;
        }
        let pick = rng.random_range(0..st.own.len());
        let (room, seq) = st.own[pick];
        if st.pending_on((room, seq, None)) {
            return;
        }
        let delete = rng.random_range(0..3) == 0;
        if delete {
            st.own.swap_remove(pick);
        }
        st.next_ref += 1;
        let reference = format!("r{}", st.next_ref);
        let op = if delete {
            Op::Delete
        } else {
            Op::Edit(format!("edited {reference}"))
        };
        self.push_change(st, room, seq, op, reference, false);
    }

    /// Every other tick, toggle a reaction: half of the time 👍 on one of the two newest
    /// messages of the room everyone shares (so clients toggle the same emoji on the same
    /// message), otherwise a random emoji on any message the client received. One add in six
    /// is written twice, as two devices of one user would.
    pub(super) fn maybe_react(&self, st: &mut ClientState, rng: &mut StdRng) {
        if st.stop_composing || rng.random_range(0..2) != 0 {
            return;
        }
        let hot = rng.random_bool(0.5);
        let room = if hot {
            self.spec.rooms[0]
        } else {
            self.spec.rooms[rng.random_range(0..self.spec.rooms.len())]
        };
        let Some(views) = st.views.get(&room) else {
            return;
        };
        let live: Vec<u64> = views
            .iter()
            .filter(|(_, v)| !v.deleted)
            .map(|(seq, _)| *seq)
            .collect();
        if live.is_empty() {
            return;
        }
        let (target, emoji) = if hot {
            let newest = &live[live.len().saturating_sub(2)..];
            (newest[rng.random_range(0..newest.len())], EMOJI[0])
        } else {
            (
                live[rng.random_range(0..live.len())],
                EMOJI[rng.random_range(0..EMOJI.len())],
            )
        };
        if st.pending_on((room, target, Some(emoji))) {
            return;
        }
        // Toggle what this client last asked for on this emoji of this message.
        let added = st.changes.iter().rev().find_map(|c| match &c.op {
            Op::React { emoji: e, add } if c.room == room && c.target == target && e == emoji => {
                Some(*add)
            }
            _ => None,
        });
        let add = !added.unwrap_or(false);
        let twice = add && rng.random_range(0..6) == 0;
        st.next_ref += 1;
        let reference = format!("r{}", st.next_ref);
        let op = Op::React {
            emoji: emoji.to_owned(),
            add,
        };
        self.push_change(st, room, target, op, reference, twice);
    }

    pub(super) fn push_change(
        &self,
        st: &mut ClientState,
        room: RoomId,
        target: u64,
        op: Op,
        reference: String,
        twice: bool,
    ) {
        st.changes.push(Change {
            room,
            target,
            op,
            reference,
            twice,
            confirmed: false,
            refused: None,
        });
        let index = st.changes.len() - 1;
        st.change_outbox.push(index);
    }
}
