//! Faults at their moments, and healing them.

use super::*;

pub(super) async fn inject(world: &mut World, fault: &Fault) -> Result<(), String> {
    let pause = Duration::from_millis(fault.for_ms);
    match fault.kind {
        FaultKind::UploadKill => {
            let i = fault.target % world.nodes.len();
            let c = world
                .clients
                .iter()
                .find(|c| c.spec.prefer_node == i)
                .unwrap_or(&world.clients[0])
                .clone();
            let room = c.spec.rooms[0];
            let mut rng = StdRng::seed_from_u64(fault.at_ms.wrapping_mul(31) ^ fault.target as u64);
            let len = rng.random_range(6 << 20..10 << 20);
            let file = files::File {
                name: format!("big-{}.bin", fault.at_ms),
                bytes: files::bytes(len, &mut rng),
                image: false,
            };
            let before = partial_files(&world.files);
            let bytes = Arc::new(file.bytes.clone());
            // All but the last MiB: past the first part on S3 (5 MiB), many 1 MiB chunks
            // written on a directory.
            let part = len - (1 << 20);
            let addr = world.nodes[i].addr;
            let token = c.spec.token.clone();
            let name = file.name.clone();
            let upload =
                tokio::spawn(
                    async move { cut_upload(addr, &token, room, &name, &bytes, part).await },
                );
            // Until the node has written part of it (the storage's temporary file grows); on
            // S3 the first part (5 MiB) is on its way by then.
            let deadline = Instant::now() + Duration::from_secs(3);
            let seen = loop {
                let grown = partial_files(&world.files)
                    .into_iter()
                    .any(|(name, size)| size >= 1 << 20 && !before.iter().any(|(b, _)| *b == name));
                if grown || upload.is_finished() || Instant::now() > deadline {
                    break grown;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            if world.s3.is_some() && !upload.is_finished() {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if seen || (world.s3.is_some() && !upload.is_finished()) {
                world.cut_uploads += 1;
            }
            world.nodes[i].kill9().await;
            world.set_live();
            upload.abort();
            tokio::time::sleep(pause).await;
            world.nodes[i].up().await?;
            world.set_live();
            c.compose_with_file(room, file);
        }
        FaultKind::NodeKill | FaultKind::NodeRestart => {
            let i = fault.target % world.nodes.len();
            if fault.kind == FaultKind::NodeKill {
                world.nodes[i].kill9().await;
            } else {
                world.nodes[i].term().await;
            }
            world.set_live();
            tokio::time::sleep(pause).await;
            world.nodes[i].up().await?;
            world.set_live();
        }
        FaultKind::RedisKill => {
            world.redis()?.kill9().await;
            tokio::time::sleep(pause).await;
            world.redis()?.up().await?;
        }
        FaultKind::RedisRollback => {
            world.redis()?.kill9().await;
            // Only traffic is lost, never the accounts and rooms set up before it (the checker
            // reads history with those).
            let floor = world
                .aof_after_setup
                .clone()
                .ok_or("redis_rollback in a run without AOF")?;
            let cut = world
                .redis()?
                .cut_aof_tail(2048 + fault.for_ms * 6, &floor)?;
            world.aof_cuts.push(cut);
            tokio::time::sleep(pause).await;
            world.redis()?.up().await?;
        }
        FaultKind::RedisRestart => {
            world.redis()?.shutdown().await;
            tokio::time::sleep(pause).await;
            world.redis()?.up().await?;
        }
        FaultKind::RedisWipe => {
            for c in &world.clients {
                c.lock().expect_wipe = true;
            }
            world.redis()?.kill9().await;
            world.redis()?.up().await?;
        }
        FaultKind::ShardFailover => shard_failover(world, fault.target, pause).await?,
        FaultKind::SlotMove => slot_move(world, fault.target).await?,
        FaultKind::LinkReset | FaultKind::LinkBlackhole => {
            let proxy = &world.proxies[fault.target % world.proxies.len()];
            proxy.cut(if fault.kind == FaultKind::LinkReset {
                Link::Reset
            } else {
                Link::Blackhole
            });
            tokio::time::sleep(pause).await;
            proxy.restore();
        }
        FaultKind::ClientOffline => {
            let c = &world.clients[fault.target % world.clients.len()];
            c.lock().offline = true;
            c.kick();
            tokio::time::sleep(pause).await;
            c.lock().offline = false;
            c.kick();
        }
        FaultKind::SlowClient => {
            let n = world.clients.len();
            let slow = &world.clients[fault.target % n];
            let other = &world.clients[(fault.target + 1) % n];
            // Both are in the room everyone shares (the first of each client's rooms).
            let room = slow.spec.rooms[0];
            slow.lock().slow = true;
            slow.kick();
            other.lock().burst = Some((room, 250));
            tokio::time::sleep(pause).await;
            slow.lock().slow = false;
            slow.kick();
        }
        FaultKind::DesktopOffline => {
            if let Some(d) = &world.desktop {
                d.front.cut(Link::Reset);
                tokio::time::sleep(pause).await;
                d.front.restore();
            }
        }
        FaultKind::DesktopReopen => {
            if let Some(d) = &world.desktop {
                // Offline first, so the outbox holds messages when the app closes.
                d.front.cut(Link::Reset);
                let room = world.desktop_rooms[0];
                for n in 0..3 {
                    d.compose(room, 1_000_000 + n).await?;
                }
                tokio::time::sleep(pause).await;
                d.reopen().await?;
                d.front.restore();
            }
        }
    }
    Ok(())
}

/// Every process up, every link restored, every client online and reading.
pub(super) async fn heal(world: &mut World) -> Result<(), String> {
    if let Some(redis) = &mut world.redis {
        if !redis.running() {
            redis.up().await?;
        }
    }
    for p in &world.proxies {
        p.restore();
    }
    for n in &mut world.nodes {
        if !n.running() {
            n.up().await?;
        }
    }
    world.set_live();
    if let Some(d) = &world.desktop {
        d.front.restore();
    }
    for c in &world.clients {
        let mut st = c.lock();
        st.offline = false;
        st.slow = false;
        drop(st);
        c.kick();
    }
    Ok(())
}

/// Half-written upload files (`{id}#N`) under the storage's `blobs/` and `thumbs/`, with their
/// sizes (on S3 none: `s3s-fs` keeps parts elsewhere).
pub(super) fn partial_files(files: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for sub in ["blobs", "thumbs"] {
        let Ok(entries) = std::fs::read_dir(files.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let partial = name
                .split_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if partial {
                let size = e.metadata().map_or(0, |m| m.len());
                out.push((format!("{sub}/{name}"), size));
            }
        }
    }
    out
}

/// An upload to `addr` that sends the first `upto` bytes of `bytes` and then waits for an
/// answer that cannot come: the harness kills the node meanwhile. Returns what it got.
pub(super) async fn cut_upload(
    addr: std::net::SocketAddr,
    token: &str,
    room: RoomId,
    name: &str,
    bytes: &[u8],
    upto: usize,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /api/v1/rooms/{room}/attachments?name={name} HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    for chunk in bytes[..upto.min(bytes.len())].chunks(256 << 10) {
        stream.write_all(chunk).await.map_err(|e| e.to_string())?;
    }
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// `kill -9` of one of the cluster's masters (the `target`-th of those that are masters now);
/// waits until its replica has taken over, then, after `pause`, starts it again (empty: it
/// rejoins as that replica's replica).
async fn shard_failover(world: &mut World, target: usize, pause: Duration) -> Result<(), String> {
    let cluster = world.cluster()?;
    let mut masters = Vec::new();
    for i in 0..cluster.nodes.len() {
        if cluster.is_master(i).await {
            masters.push(i);
        }
    }
    let Some(&master) = masters.get(target % masters.len().max(1)) else {
        return Err("the cluster has no master".into());
    };
    // `ROLE` of a master: "master", its offset, then host, port, offset of each replica that
    // is connected (right after the cluster formed, or a node rejoined, it may not be yet).
    let deadline = Instant::now() + Duration::from_secs(30);
    // Its replica must also have finished its first sync (`state=online` in the master's
    // `INFO replication`): one still loading the master's snapshot would take over empty.
    let replica = loop {
        let role = cluster.cmd(master, &["ROLE"]).await;
        let port: Option<u16> = role.lines().nth(3).and_then(|p| p.parse().ok());
        let info = cluster.cmd(master, &["INFO", "replication"]).await;
        let online = port.is_some_and(|p| {
            info.lines()
                .any(|l| l.contains(&format!("port={p},")) && l.contains("state=online"))
        });
        if let Some(i) = cluster.nodes.iter().position(|n| Some(n.port) == port) {
            if online {
                break i;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "master {master} has no replica to fail over to ({role:?})"
            ));
        }
        // Polling interval while the replica connects.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cluster.kill(master);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.is_master(replica).await {
        if Instant::now() > deadline {
            return Err(format!("replica {replica} did not take over within 30 s"));
        }
        // Polling interval while the cluster notices the failure and votes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.wait_state_ok(replica).await;
    tokio::time::sleep(pause).await;
    let cluster = world.cluster.as_mut().ok_or("no cluster")?;
    cluster.restart(master).await;
    Ok(())
}

/// Moves the slot of a room's partition (the `target`-th room the harness reads) to another
/// master under traffic, the way `redis-cli --cluster reshard` does.
async fn slot_move(world: &mut World, target: usize) -> Result<(), String> {
    use chat_server::store::redis::partition::{key_slot, Partitions, DEFAULT_PARTITIONS};
    let rooms: Vec<RoomId> = world.readers.keys().copied().collect();
    let room = rooms[target % rooms.len().max(1)];
    let partitions = Partitions::new(DEFAULT_PARTITIONS);
    let channel = partitions.channel(partitions.of_room(room.0));
    let cluster = world.cluster()?;
    let mut masters = Vec::new();
    for i in 0..cluster.nodes.len() {
        if cluster.is_master(i).await {
            masters.push(i);
        }
    }
    let from = cluster.owner_of_via(masters[0], &channel).await;
    let to = *masters
        .iter()
        .find(|m| **m != from)
        .ok_or("the cluster has one master")?;
    cluster
        .move_slot(key_slot(channel.as_bytes()), from, to)
        .await;
    Ok(())
}
