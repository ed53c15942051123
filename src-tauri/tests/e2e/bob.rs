//! Bob: REST and the WebSocket, with protocol types.

use super::*;

/// The other user: a REST client and one WebSocket at a time, with everything received kept.
pub(crate) struct Bob {
    /// The typed REST client, as bob's session.
    pub(crate) api: chat_client::Client,
    pub(crate) token: String,
    pub(crate) username: String,
    pub(crate) socket: Option<Socket>,
    /// Every frame received on any of bob's sockets, in order.
    pub(crate) log: Vec<ServerFrame>,
    /// The last seq seen per room (the resume cursors).
    pub(crate) cursors: HashMap<RoomId, u64>,
}

/// One open socket: frames out through `out`, frames in through `frames`.
pub(crate) struct Socket {
    pub(crate) out: mpsc::UnboundedSender<ClientFrame>,
    pub(crate) frames: mpsc::UnboundedReceiver<ServerFrame>,
    pub(crate) task: JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `typing` every 2 s until dropped.
pub(crate) struct Typing(JoinHandle<()>);

impl Drop for Typing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bob {
    pub(crate) async fn register(server: &Server, username: &str) -> Bob {
        let anon = server.api();
        let auth: AuthResponse = rest(anon.register(username, PASSWORD, None)).await;
        Bob {
            api: anon.with_token(&auth.token),
            token: auth.token,
            username: auth.user.username,
            socket: None,
            log: Vec::new(),
            cursors: HashMap::new(),
        }
    }

    pub(crate) async fn find_public_room(&self, name: &str) -> RoomId {
        let rooms: Vec<Room> = rest(self.api.public_rooms()).await;
        rooms
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .unwrap_or_else(|| panic!("no public room {name:?} on the server: {rooms:?}"))
    }

    pub(crate) async fn join(&self, room: RoomId) {
        let _: Room = rest(self.api.join(room)).await;
    }

    pub(crate) async fn member_id(&self, room: RoomId, username: &str) -> UserId {
        let members: Vec<Member> = rest(self.api.members(room)).await;
        members
            .iter()
            .find(|m| m.user.username == username)
            .map(|m| m.user.id)
            .unwrap_or_else(|| panic!("{username} is not a member of room {room}: {members:?}"))
    }

    pub(crate) async fn open_dm(&self, user: UserId) -> RoomId {
        let room: Room = rest(self.api.open_dm(user)).await;
        assert_eq!(room.kind, RoomKind::Direct);
        room.id
    }

    pub(crate) async fn history(&self, room: RoomId) -> HistoryPage {
        rest(self.api.history(room, None, None, Some(100))).await
    }

    /// Bob's message to `room` over REST, with every field of [`SendMessage`] at hand.
    pub(crate) async fn post(&self, room: RoomId, id: String, body: String, mentions: Vec<UserId>) {
        let message = SendMessage {
            id,
            body,
            reply_to: None,
            mentions,
            mention_room: false,
            attachments: Vec::new(),
        };
        rest(self.api.send_message(room, &message)).await;
    }

    /// Message bodies of a room's history, in order.
    pub(crate) async fn bodies(&self, room: RoomId) -> Vec<String> {
        self.history(room)
            .await
            .events
            .into_iter()
            .filter_map(|e| match e.event {
                EventBody::Message { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    pub(crate) async fn seq_of(&self, room: RoomId, text: &str) -> u64 {
        self.history(room)
            .await
            .events
            .iter()
            .find(|e| matches!(&e.event, EventBody::Message { body, .. } if body == text))
            .map(|e| e.seq)
            .unwrap_or_else(|| panic!("{text:?} is not in the history of room {room}"))
    }

    /// Opens the socket, says hello with the cursors held, and waits for `ready`.
    pub(crate) async fn connect(&mut self, server: &Server) {
        self.socket = None;
        let url = format!("ws://{}/ws", server.addr);
        let (ws, _) = tokio::time::timeout(UI_WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .unwrap_or_else(|_| panic!("bob's socket did not open within {UI_WAIT:?}"))
            .unwrap_or_else(|e| panic!("bob cannot open {url}: {e}"));
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<ClientFrame>();
        let (frames_tx, frames) = mpsc::unbounded_channel::<ServerFrame>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = out_rx.recv() => {
                        let Some(frame) = frame else { break };
                        let text = serde_json::to_string(&frame).unwrap_or_default();
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<ServerFrame>(text.as_str()) {
                                Ok(frame) => {
                                    if frames_tx.send(frame).is_err() {
                                        break;
                                    }
                                }
                                Err(e) => eprintln!("[e2e] bob: unexpected frame ({e}): {text}"),
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
        self.socket = Some(Socket { out, frames, task });
        let resume = self
            .cursors
            .iter()
            .map(|(room, seq)| Cursor {
                room: *room,
                seq: *seq,
            })
            .collect();
        self.send_frame(ClientFrame::Hello {
            token: self.token.clone(),
            resume,
            epoch: None,
        });
        self.wait_frame("welcome", UI_WAIT, |f| {
            matches!(f, ServerFrame::Welcome { .. }).then_some(())
        })
        .await;
        self.wait_frame("ready", UI_WAIT, |f| {
            matches!(f, ServerFrame::Ready).then_some(())
        })
        .await;
        note(&format!("bob connected (resume {:?})", self.cursors));
    }

    pub(crate) fn send_frame(&self, frame: ClientFrame) {
        let socket = self
            .socket
            .as_ref()
            .unwrap_or_else(|| panic!("bob has no socket"));
        socket
            .out
            .send(frame)
            .unwrap_or_else(|_| panic!("bob's socket is closed"));
    }

    /// Receives frames (keeping all of them) until `pick` matches one.
    pub(crate) async fn wait_frame<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let socket = self
                .socket
                .as_mut()
                .unwrap_or_else(|| panic!("bob has no socket while waiting for {what}"));
            let frame = match tokio::time::timeout_at(deadline, socket.frames.recv()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!("bob's socket closed while waiting for {what}"),
                Err(_) => panic!(
                    "bob got no {what} within {timeout:?}; received so far: {:#?}",
                    self.log
                ),
            };
            if let ServerFrame::Event(event) = &frame {
                self.cursors.insert(event.room, event.seq);
            }
            self.log.push(frame);
            if let Some(found) = self.log.last().and_then(&mut pick) {
                return found;
            }
        }
    }

    /// Sends a message and waits for its ack.
    pub(crate) async fn send(&mut self, room: RoomId, body: &str) {
        let id = uuid::Uuid::new_v4().to_string();
        self.send_frame(ClientFrame::Send {
            room,
            id: id.clone(),
            body: body.to_owned(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        });
        self.wait_frame("the ack of bob's message", UI_WAIT, |f| match f {
            ServerFrame::Ack(ack) if ack.id == id => Some(()),
            ServerFrame::Error {
                id: Some(failed),
                code,
                message,
                ..
            } if *failed == id => panic!("bob's send failed: {code:?} {message}"),
            _ => None,
        })
        .await;
    }

    pub(crate) async fn wait_message(&mut self, room: RoomId, text: &str, timeout: Duration) {
        let what = format!("the message {text:?}");
        self.wait_frame(&what, timeout, |f| match f {
            ServerFrame::Event(e) if e.room == room => match &e.event {
                EventBody::Message { body, .. } if body == text => Some(()),
                _ => None,
            },
            _ => None,
        })
        .await;
        note(&format!("bob received {text:?}"));
    }

    /// Waits until the server closes bob's socket.
    pub(crate) async fn wait_disconnected(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        loop {
            match tokio::time::timeout_at(deadline, socket.frames.recv()).await {
                Ok(Some(frame)) => {
                    if let ServerFrame::Event(event) = &frame {
                        self.cursors.insert(event.room, event.seq);
                    }
                    self.log.push(frame);
                }
                Ok(None) => break,
                Err(_) => panic!("bob's socket stayed open {timeout:?} after the server stopped"),
            }
        }
        self.socket = None;
        note("bob disconnected");
    }

    pub(crate) fn keep_typing(&self, room: RoomId) -> Typing {
        let out = self
            .socket
            .as_ref()
            .map(|s| s.out.clone())
            .unwrap_or_else(|| panic!("bob has no socket"));
        Typing(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(2));
            loop {
                every.tick().await;
                if out.send(ClientFrame::Typing { room }).is_err() {
                    break;
                }
            }
        }))
    }

    /// How many times a message with this text reached bob, over all his sockets.
    pub(crate) fn received(&self, room: RoomId, text: &str) -> usize {
        self.log
            .iter()
            .filter(|f| match f {
                ServerFrame::Event(e) if e.room == room => {
                    matches!(&e.event, EventBody::Message { body, .. } if body == text)
                }
                _ => false,
            })
            .count()
    }

    /// Messages bob received in a room.
    pub(crate) fn dm_count(&self, room: RoomId) -> usize {
        self.log
            .iter()
            .filter(|f| {
                matches!(f, ServerFrame::Event(e)
                    if e.room == room && matches!(e.event, EventBody::Message { .. }))
            })
            .count()
    }
}

/// The answer of bob's REST call, which must succeed within [`UI_WAIT`].
pub(crate) async fn rest<T>(call: impl std::future::Future<Output = chat_client::Result<T>>) -> T {
    tokio::time::timeout(UI_WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("HTTP request took longer than {UI_WAIT:?}"))
        .unwrap_or_else(|e| panic!("HTTP request failed: {e}"))
}
