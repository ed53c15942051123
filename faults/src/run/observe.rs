//! After healing: waiting until every client has caught up, and what each one saw.

use super::inject::partial_files;
use super::*;

/// Waits (at most 30 s) until every outbox is empty and every client holds the newest seq of
/// every room; returns the canonical history. If the deadline passes, the checker reports
/// whoever did not catch up.
pub(super) async fn settle(world: &World) -> Result<Canonical, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut last = BTreeMap::new();
        for (room, token) in &world.readers {
            // The store may still be coming back; retry within the deadline.
            match world.rest.room(token, *room).await {
                Ok(r) => {
                    last.insert(*room, r.last_seq);
                }
                Err(_) => break,
            }
        }
        let mut settled = last.len() == world.readers.len();
        for c in &world.clients {
            let st = c.lock();
            settled &= st.outboxes_empty();
            settled &= st.start.keys().all(|r| st.cursors.get(r) == last.get(r));
        }
        if let Some(d) = &world.desktop {
            let rooms = world.desktop_rooms.clone();
            let caught_up = d
                .with_cache(async |cache| {
                    // Every message (uploading ones too) and every reaction delivered or
                    // refused for good.
                    let pending = outbox_waiting(cache).await.map_or(1, |(n, _)| n);
                    let reacting = cache.reactions_pending().await.map_or(1, |p| p.len());
                    let mut ok = pending == 0 && reacting == 0;
                    for room in &rooms {
                        let synced = cache
                            .room(*room)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|r| r.synced_seq);
                        ok &= synced.is_some() && synced == last.get(room).copied();
                    }
                    ok
                })
                .await
                .unwrap_or(false);
            settled &= caught_up;
        }
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut canonical = Canonical::new();
    for (room, token) in &world.readers {
        let mut tries = 0;
        let events = loop {
            match world.rest.history(token, *room).await {
                Ok(events) => break events,
                Err(e) if tries > 20 => return Err(format!("history of room {room}: {e}")),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        canonical.insert(*room, events);
    }
    Ok(canonical)
}

pub(super) async fn desktop_obs(
    d: &Desktop,
    start: &BTreeMap<RoomId, u64>,
) -> Result<DesktopObs, String> {
    let rooms: Vec<RoomId> = start.keys().copied().collect();
    let cached = d
        .with_cache(async |cache| {
            let mut out = BTreeMap::new();
            for room in rooms {
                let meta = cache.room(room).await.map_err(|e| e.to_string())?;
                let messages = cache
                    .messages(room, 0, u64::MAX >> 2, 100_000)
                    .await
                    .map_err(|e| e.to_string())?;
                let (synced, complete) =
                    meta.map_or((None, None), |m| (m.synced_seq, m.complete_from));
                out.insert(room, (synced, complete, messages));
            }
            let (pending, failed) = outbox_waiting(cache).await.map_err(|e| e.to_string())?;
            let reacting = cache
                .reactions_pending()
                .await
                .map_err(|e| e.to_string())?
                .len();
            Ok::<_, String>((out, pending, failed, reacting))
        })
        .await
        .ok_or("the desktop app is closed")??;
    Ok(DesktopObs {
        name: d.username.clone(),
        user: d.user,
        composed: d.composed.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        start: start.clone(),
        rooms: cached.0,
        outbox_pending: cached.1,
        failed: cached.2,
        reactions: d
            .reactions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        reactions_pending: cached.3,
    })
}

/// The desktop outbox: how many messages still wait (pending or uploading), and the ones
/// refused for good (client id → error code).
pub(super) async fn outbox_waiting(
    cache: &chat_desktop::cache::Cache,
) -> Result<(usize, BTreeMap<String, String>), chat_desktop::Error> {
    let mut waiting = 0;
    let mut failed = BTreeMap::new();
    for id in cache.outbox_ids().await? {
        match cache.outbox_entry(&id).await? {
            Some(e) if e.state == "failed" => {
                failed.insert(id, e.fail_code.unwrap_or_default());
            }
            Some(_) => waiting += 1,
            None => {}
        }
    }
    Ok((waiting, failed))
}

/// After a wipe: every client must get a typed signal within 20 s.
pub(super) async fn finish_wipe(
    world: World,
    stop_desktop: Arc<std::sync::atomic::AtomicBool>,
    desktop_task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    report: &mut Report,
) -> Result<(), String> {
    stop_desktop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(task) = desktop_task {
        task.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let desktop_told = |d: &Desktop| !d.online() && d.signed_out();
    loop {
        let scripted = world.clients.iter().all(|c| c.lock().wipe_signal.is_some());
        let desktop = world.desktop.as_deref().is_none_or(desktop_told);
        if (scripted && desktop) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states: Vec<_> = world.clients.iter().map(|c| c.lock()).collect();
    let mut obs: Vec<WipeObs<'_>> = world
        .clients
        .iter()
        .zip(&states)
        .map(|(c, st)| WipeObs {
            name: &c.spec.name,
            signal: st.wipe_signal.clone(),
            state: Some(st),
        })
        .collect();
    if let Some(d) = &world.desktop {
        obs.push(WipeObs {
            name: &d.username,
            signal: desktop_told(d).then(|| "signed out (4001)".to_owned()),
            state: None,
        });
    }
    let (findings, volume) = checker::check_wipe(&obs);
    for code in states.iter().flat_map(|s| s.closes.iter()) {
        *report.closes.entry(*code).or_default() += 1;
    }
    report.wiped_acked = states
        .iter()
        .map(|s| s.composed.iter().filter(|m| m.seq.is_some()).count() as u64)
        .sum();
    drop(obs);
    drop(states);
    report.findings = findings;
    report.volume = volume;
    shutdown(world).await;
    Ok(())
}

/// The storage once the collector has had its passes, then every attachment downloaded from
/// every node. Before downloading, on directory storage with half-written files or files of
/// deleted messages about, every stored file is made two hours old and the run waits (at most
/// 5 s) for the collector to remove what it must: half-written files, files without a record,
/// files of deleted messages — never a file a message needs (the downloads then show that).
/// Also returns how many half-written files there were.
pub(super) async fn observe_files(world: &World, canonical: &Canonical) -> (FileObs, u32) {
    let mut obs = FileObs::default();
    // What to download, with whose token: files of messages in history (a member of the
    // room), and every acknowledged upload (its uploader).
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for (room, events) in canonical {
        for e in events {
            if let protocol::EventBody::Message { attachments, .. } = &e.event {
                for a in attachments {
                    wanted.insert(a.id.clone(), world.readers[room].clone());
                }
            }
        }
    }
    let mut deleted: Vec<String> = Vec::new();
    for c in &world.clients {
        let st = c.lock();
        for m in &st.composed {
            let Some(stored) = m.upload.as_ref().and_then(|u| u.stored.as_ref()) else {
                continue;
            };
            let Some(seq) = m.seq else { continue };
            wanted
                .entry(stored.id.clone())
                .or_insert_with(|| c.spec.token.clone());
            let gone = checker::event_at(canonical, m.room, seq).is_some_and(|e| {
                matches!(e.event, protocol::EventBody::Message { deleted: true, .. })
            });
            if gone {
                deleted.push(stored.id.clone());
            }
        }
    }
    let partial = partial_files(&world.files);
    let kept = |files: &Path| -> Vec<String> {
        deleted
            .iter()
            .flat_map(|id| [format!("blobs/{id}"), format!("thumbs/{id}")])
            .filter(|p| files.join(p).exists())
            .collect()
    };
    if !partial.is_empty() || !kept(&world.files).is_empty() {
        if world.s3.is_none() {
            let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
            for sub in ["blobs", "thumbs"] {
                let Ok(entries) = std::fs::read_dir(world.files.join(sub)) else {
                    continue;
                };
                for e in entries.flatten() {
                    if let Ok(f) = std::fs::File::options().write(true).open(e.path()) {
                        let _ = f.set_modified(old);
                    }
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            obs.leftovers = partial_files(&world.files)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            obs.kept = kept(&world.files);
            if (obs.leftovers.is_empty() && obs.kept.is_empty()) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default();
    for (id, token) in wanted {
        let mut got = Vec::new();
        for node in world.nodes.iter().filter(|n| n.running()) {
            got.push((node.index, fetch(&http, node.addr, &token, &id).await));
        }
        obs.fetched.insert(id, got);
    }
    (obs, partial.len() as u32)
}

/// Downloads one attachment (retrying a failed connection or a 5xx a few times).
pub(super) async fn fetch(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    token: &str,
    id: &str,
) -> Fetched {
    let api = reqwest::Url::parse(&format!("http://{addr}"))
        .map_err(|e| e.to_string())
        .and_then(|base| {
            chat_client::Client::with_http(http.clone(), base).map_err(|e| e.to_string())
        });
    let api = match api {
        Ok(api) => api.with_token(token),
        Err(e) => return Fetched::Failed(e),
    };
    let mut last = Fetched::Failed("not tried".into());
    for _ in 0..5 {
        last = match api.download(id, false, None).await {
            Ok(resp) => match resp.bytes().await {
                Ok(body) => {
                    return Fetched::Bytes {
                        len: body.len() as u64,
                        fingerprint: files::fingerprint(&body),
                    };
                }
                Err(e) => Fetched::Failed(e.to_string()),
            },
            Err(e) => match e.status() {
                Some(status) if status >= 500 => Fetched::Status(status),
                Some(status) => return Fetched::Status(status),
                None => Fetched::Failed(e.to_string()),
            },
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}
