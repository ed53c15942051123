//! What a scripted client makes of what the server sends: frames, events, closes.

use super::*;

impl Client {
    pub(super) fn on_close(&self, code: Option<u16>) {
        let mut st = self.lock();
        let code = code.unwrap_or(1005);
        st.closes.push(code);
        if st.expect_wipe && (code == protocol::close::UNAUTHORIZED || code == 4010) {
            st.wipe_signal
                .get_or_insert_with(|| format!("close {code}"));
            st.done = true;
        } else if code == protocol::close::STORE_RESET {
            // The store lost data (§3.6): what this client holds may be gone from the server
            // and the seqs after it reissued. Drop the cursors and start again from the server.
            st.cursors.clear();
            st.epoch = None;
            st.views.clear();
        } else if code == protocol::close::UNAUTHORIZED {
            st.violations
                .push("session ended (4001) during the run".into());
            st.done = true;
        }
    }

    pub(super) fn on_frame(&self, frame: ServerFrame) {
        match frame {
            ServerFrame::Event(event) => self.on_event(event),
            ServerFrame::Gap {
                room,
                after,
                until,
                reason,
            } => {
                let mut st = self.lock();
                let cursor = st.cursors.get(&room).copied();
                if cursor != Some(after) {
                    st.violations.push(format!(
                        "room {room}: gap after {after} but cursor is {cursor:?}"
                    ));
                }
                st.cursors.insert(room, until);
                st.gaps.push(GapSeen {
                    room,
                    after,
                    until,
                    reason,
                });
            }
            ServerFrame::Ack(ack) => {
                let mut st = self.lock();
                let Some(index) = st.composed.iter().position(|c| c.id == ack.id) else {
                    st.violations.push(format!("ack for unknown id {}", ack.id));
                    return;
                };
                let c = &mut st.composed[index];
                if !ack.duplicate {
                    c.fresh_acks += 1;
                }
                match c.seq {
                    None => c.seq = Some(ack.seq),
                    Some(seq) if seq != ack.seq => {
                        let msg = format!(
                            "id {} acked with seq {seq} and later with seq {}",
                            ack.id, ack.seq
                        );
                        st.violations.push(msg);
                    }
                    Some(_) => {}
                }
                let first = st.outbox.contains(&index);
                st.outbox.retain(|i| *i != index);
                if first {
                    st.own.push((ack.room, ack.seq));
                }
            }
            ServerFrame::Ok { reference } => {
                let mut st = self.lock();
                if let Some(i) = st.change_index(&reference) {
                    st.changes[i].confirmed = true;
                    st.change_outbox.retain(|x| *x != i);
                }
            }
            ServerFrame::Error {
                code,
                id,
                reference,
                ..
            } => {
                let mut st = self.lock();
                st.errors.push(code);
                if let Some(i) = reference.as_deref().and_then(|r| st.change_index(r)) {
                    let transient = matches!(
                        code,
                        ErrorCode::StoreUnavailable | ErrorCode::Internal | ErrorCode::RateLimited
                    );
                    if transient {
                        st.change_retry.push(i);
                        return;
                    }
                    st.change_outbox.retain(|x| *x != i);
                    let c = &mut st.changes[i];
                    if code == ErrorCode::MessageDeleted && c.op == Op::Delete {
                        // A resend of a delete that went through.
                        c.confirmed = true;
                        return;
                    }
                    c.refused = Some(code);
                    // Reacting to a message its author just deleted is refused, rightly; a
                    // target the server does not have is judged by the checker.
                    let judged =
                        matches!(code, ErrorCode::MessageDeleted | ErrorCode::MessageNotFound);
                    if !judged && !st.expect_wipe {
                        let line = format!("change {reference:?} refused with {code:?}");
                        st.violations.push(line);
                    }
                    return;
                }
                let Some(id) = id else { return };
                let Some(index) = st.composed.iter().position(|c| c.id == id) else {
                    return;
                };
                let transient = matches!(
                    code,
                    ErrorCode::StoreUnavailable | ErrorCode::Internal | ErrorCode::RateLimited
                );
                if transient {
                    // Resend on the next connection, or on this one after a pause (not at
                    // once: during a store outage that would be a busy loop).
                    st.retry.push(index);
                } else {
                    let c = &mut st.composed[index];
                    c.refused = Some(code);
                    // A reply to a message deleted meanwhile is refused, rightly; the checker
                    // judges that and the other refusals of replies and files.
                    let judged = match code {
                        ErrorCode::MessageDeleted | ErrorCode::MessageNotFound => {
                            c.reply_to.is_some()
                        }
                        ErrorCode::AttachmentNotFound => c.upload.is_some(),
                        _ => false,
                    };
                    st.outbox.retain(|i| *i != index);
                    if !judged && !st.expect_wipe {
                        st.violations
                            .push(format!("send {id} refused with {code:?}"));
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_event(&self, event: RoomEvent) {
        let mut st = self.lock();
        let room = event.room;
        let Some(&cursor) = st.cursors.get(&room) else {
            st.violations
                .push(format!("event of room {room} this client does not follow"));
            return;
        };
        let ident = Ident::of(&event.event);
        if event.seq <= cursor {
            st.violations.push(format!(
                "room {room}: seq {} delivered again (cursor {cursor})",
                event.seq
            ));
            return;
        }
        if event.seq > cursor + 1 {
            st.violations.push(format!(
                "room {room}: seq {} arrived after {cursor} without a gap frame",
                event.seq
            ));
        }
        st.cursors.insert(room, event.seq);
        st.seen.entry(room).or_default().push((event.seq, ident));
        apply(st.views.entry(room).or_default(), event.seq, event.event);
    }
}
