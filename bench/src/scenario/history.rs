//! `history`: one room filled, then clients paging back through all of it.

use super::*;

// ---------------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------------

/// `history`: fill one room with `messages`, then `pagers` clients each page back through all
/// of it, `page` events at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryParams {
    pub messages: u64,
    pub pagers: usize,
    pub page: usize,
    /// Sends in flight while filling.
    pub fill_window: u64,
    pub body_bytes: usize,
}

impl HistoryParams {
    pub fn preset() -> HistoryParams {
        HistoryParams {
            messages: 100_000,
            pagers: 4,
            page: 100,
            fill_window: 256,
            body_bytes: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResult {
    pub target: Target,
    pub params: HistoryParams,
    pub fill_msgs_per_sec: f64,
    pub pages: u64,
    /// Message events seen by each pager (all must have seen every message).
    pub messages_seen_min: u64,
    pub pages_per_sec: f64,
    pub page_latency: Latency,
    pub cpu: Cpu,
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// A history or fill step that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn next_within(client: &mut Client) -> Result<Incoming> {
    tokio::time::timeout(REQUEST_TIMEOUT, client.next())
        .await
        .map_err(|_| Error::Timeout {
            what: "server reply".into(),
        })?
}

/// Sends `n` messages to `room` with at most `window` unacknowledged; returns the time taken.
pub async fn fill(
    client: &mut Client,
    room: protocol::RoomId,
    n: u64,
    window: u64,
    body_bytes: usize,
) -> Result<Duration> {
    let t0 = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    let pad = "x".repeat(body_bytes.saturating_sub(16));
    while acked < n {
        if sent < n && sent - acked < window {
            while sent < n && sent - acked < window {
                client
                    .feed_message(room, &format!("f{sent}"), &format!("fill {sent} {pad}"))
                    .await?;
                sent += 1;
            }
            client.flush().await?;
        }
        match next_within(client).await? {
            Incoming::Ack { .. } => acked += 1,
            Incoming::Failed { code, .. } => {
                return Err(Error::Protocol(format!("fill send failed: {code}")))
            }
            _ => {}
        }
    }
    Ok(t0.elapsed())
}

/// Pages back from the newest event to the oldest; returns (pages, message events, latencies).
pub(super) async fn page_all(
    client: &mut Client,
    room: protocol::RoomId,
    page: usize,
    hist: &mut Histogram<u64>,
) -> Result<(u64, u64)> {
    let (mut pages, mut messages) = (0u64, 0u64);
    let mut before = None;
    // Bounded: no history here has more than 10M events.
    for _ in 0..10_000_000 / page.max(1) {
        let t0 = Instant::now();
        client.request_history(room, before, page).await?;
        let (events, has_more) = loop {
            match next_within(client).await? {
                Incoming::History { events, has_more } => break (events, has_more),
                Incoming::Failed { code, .. } => {
                    return Err(Error::Protocol(format!("history failed: {code}")))
                }
                _ => {}
            }
        };
        hist.saturating_record(t0.elapsed().as_micros().max(1) as u64);
        pages += 1;
        messages += events
            .iter()
            .filter(|e| matches!(e.event, protocol::EventBody::Message { .. }))
            .count() as u64;
        match events.first() {
            Some(first) if has_more && first.seq > 1 => before = Some(first.seq),
            _ => break,
        }
    }
    Ok((pages, messages))
}

pub async fn history(dep: &Deployment, p: &HistoryParams) -> Result<HistoryResult> {
    let prov: Provisioned = provision(dep, 1, p.pagers.max(1)).await?;
    let room = prov.rooms[0];
    let addr = dep.nodes[0];
    let mut filler = Client::connect(dep.target, addr, LOCAL, &prov.users[0].token).await?;
    let fill_time = fill(&mut filler, room, p.messages, p.fill_window, p.body_bytes).await?;
    drop(filler);
    let mut pagers = Vec::new();
    for i in 0..p.pagers.max(1) {
        let token = &prov.users[i % prov.users.len()].token;
        pagers.push(Client::connect(dep.target, addr, LOCAL, token).await?);
    }
    let cpu0 = CpuSnapshot::take(dep);
    let t0 = Instant::now();
    let page = p.page;
    let tasks: Vec<_> = pagers
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                    .expect("constant histogram bounds are valid");
                let r = page_all(&mut client, room, page, &mut hist).await;
                r.map(|(pages, messages)| (pages, messages, hist))
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .expect("constant histogram bounds are valid");
    let (mut pages, mut seen_min) = (0u64, u64::MAX);
    for task in tasks {
        let (n, messages, h) = task
            .await
            .map_err(|e| Error::Protocol(format!("pager task: {e}")))??;
        pages += n;
        seen_min = seen_min.min(messages);
        let _ = hist.add(&h);
    }
    let wall = t0.elapsed();
    let cpu = Cpu::between(&cpu0, &CpuSnapshot::take(dep), wall);
    Ok(HistoryResult {
        target: dep.target,
        params: p.clone(),
        fill_msgs_per_sec: p.messages as f64 / fill_time.as_secs_f64().max(1e-9),
        pages,
        messages_seen_min: if seen_min == u64::MAX { 0 } else { seen_min },
        pages_per_sec: pages as f64 / wall.as_secs_f64().max(1e-9),
        page_latency: Latency::of(&hist),
        cpu,
    })
}
