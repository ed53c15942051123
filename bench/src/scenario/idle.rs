//! `idle`: memory per idle authenticated socket, the sockets spread over nodes and worker processes.

use super::*;

// ---------------------------------------------------------------------------------------------
// idle
// ---------------------------------------------------------------------------------------------

/// `idle`: ramp to `connections` authenticated idle sockets, measuring server RSS on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleParams {
    pub connections: usize,
    pub rooms: usize,
    pub users_per_room: usize,
    /// RSS is measured after each of this many equal ramp steps.
    pub points: usize,
    /// Pause before each RSS reading.
    pub settle_secs: f64,
    /// Server nodes that hold the sockets, evenly. One process here may hold at most ~19k
    /// sockets (open-file limit 20,000), so 50k need three.
    #[serde(default = "one")]
    pub nodes: usize,
    /// Client sockets per generator worker process (`chat-bench idle-worker`); 0 opens them all
    /// in this process.
    #[serde(default)]
    pub per_worker: usize,
}

pub(super) fn one() -> usize {
    1
}

/// Server nodes one idle run needs so that none holds more than this many sockets.
pub const MAX_PER_NODE: usize = 17_000;

impl IdleParams {
    /// 50k idle sockets on three server nodes, opened by four generator workers.
    pub fn preset() -> IdleParams {
        IdleParams {
            connections: 50_000,
            rooms: 100,
            users_per_room: 2,
            points: 5,
            settle_secs: 2.0,
            nodes: 3,
            per_worker: crate::worker::MAX_PER_WORKER,
        }
    }

    /// `connections` sockets on as few nodes as the per-process limit allows.
    pub fn sized(connections: usize) -> IdleParams {
        IdleParams {
            connections,
            nodes: connections.div_ceil(MAX_PER_NODE).max(1),
            ..IdleParams::preset()
        }
    }

    /// Generator worker processes this run starts (0: none, sockets in this process).
    pub fn workers(&self) -> usize {
        if self.per_worker == 0 {
            0
        } else {
            self.connections.div_ceil(self.per_worker).max(1)
        }
    }
}

/// Connections and RSS of one socket-holding server node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeMemory {
    pub connections: usize,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// Over all socket-holding nodes.
    pub connections: usize,
    pub rss_bytes: u64,
    /// Each socket-holding node (empty in results from before nodes were recorded).
    #[serde(default)]
    pub nodes: Vec<NodeMemory>,
}

/// One socket-holding node at the end of the ramp.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeIdle {
    pub connections: usize,
    pub rss_zero_bytes: u64,
    pub rss_bytes: u64,
    /// (RSS at N − RSS at 0) / N of this node.
    pub bytes_per_connection: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    pub target: Target,
    pub params: IdleParams,
    /// Sum over the socket-holding nodes.
    pub rss_zero_bytes: u64,
    pub points: Vec<MemoryPoint>,
    /// RSS of the node that registered the users, before and after (two-node layout only).
    #[serde(default)]
    pub registrar_rss_before: Option<u64>,
    #[serde(default)]
    pub registrar_rss_after: Option<u64>,
    /// (RSS at N − RSS at 0) / N at the largest N, over all socket-holding nodes.
    pub bytes_per_connection: f64,
    /// Each socket-holding node.
    #[serde(default)]
    pub nodes: Vec<NodeIdle>,
    /// Generator worker processes that held the client sockets (0: the main process).
    #[serde(default)]
    pub generator_workers: usize,
    pub connect_errors: u64,
    pub first_connect_error: Option<String>,
    /// Handshakes completed per second during the ramp.
    pub connects_per_sec: f64,
    /// Connections still open at the end.
    pub open_at_end: usize,
}

/// Splits `total` into `parts` shares differing by at most one; share `i`.
pub(super) fn share(total: usize, parts: usize, i: usize) -> usize {
    let parts = parts.max(1);
    total / parts + usize::from(i < total % parts)
}

/// Which worker opens how many connections to which node so that, after it, worker `w` holds
/// `worker_after[w]` and node `j` `node_after[j]` (both totals equal and no smaller than before).
pub(super) fn assign(
    worker_before: &[usize],
    worker_after: &[usize],
    node_before: &[usize],
    node_after: &[usize],
) -> Vec<Vec<(usize, usize)>> {
    let mut need_w: Vec<usize> = worker_after
        .iter()
        .zip(worker_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let mut need_n: Vec<usize> = node_after
        .iter()
        .zip(node_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let mut out = vec![Vec::new(); need_w.len()];
    let (mut w, mut j) = (0, 0);
    while w < need_w.len() && j < need_n.len() {
        let k = need_w[w].min(need_n[j]);
        if k > 0 {
            out[w].push((j, k));
            need_w[w] -= k;
            need_n[j] -= k;
        }
        if need_w[w] == 0 {
            w += 1;
        }
        if j < need_n.len() && need_n[j] == 0 {
            j += 1;
        }
    }
    out
}

/// Reads the RSS of each socket-holding node.
pub(super) fn node_rss(pids: &[u32], nodes: usize) -> Vec<u64> {
    (0..nodes)
        .map(|j| pids.get(j).map_or(0, |&p| procs::rss_bytes(p)))
        .collect()
}

/// The socket-holding nodes are the first `p.nodes` of the deployment. When it has one more,
/// the users are registered through that last one and it is not measured: password hashing
/// (argon2 needs 19 MiB per hash on our server) leaves allocator state behind that would blur a
/// per-connection figure. Otherwise node 0 registers them too.
///
/// With `p.per_worker > 0` the client sockets live in `chat-bench idle-worker` processes of
/// this executable (see [`crate::worker`]); [`idle_with`] names another executable.
pub async fn idle(dep: &Deployment, p: &IdleParams) -> Result<IdleResult> {
    let bin = std::env::current_exe()?;
    idle_with(dep, p, &bin).await
}

/// [`idle`] with generator workers started from `worker_bin` (a `chat-bench` executable).
pub async fn idle_with(
    dep: &Deployment,
    p: &IdleParams,
    worker_bin: &std::path::Path,
) -> Result<IdleResult> {
    let k = p.nodes.clamp(1, dep.nodes.len());
    let registrar_node = if dep.nodes.len() > k {
        dep.nodes.len() - 1
    } else {
        0
    };
    let registrar = (dep.nodes.len() > k)
        .then(|| dep.server_pids.get(registrar_node).copied())
        .flatten();
    let registrar_before = registrar.map(procs::rss_bytes);
    let prov = provision_via(dep, registrar_node, p.rooms, p.users_per_room).await?;
    let registrar_after = registrar.map(procs::rss_bytes);
    let pids: Vec<u32> = dep.server_pids.iter().take(k).copied().collect();
    let settle = Duration::from_secs_f64(p.settle_secs);
    tokio::time::sleep(settle).await;
    let rss_zero = node_rss(&pids, k);
    let n_points = p.points.max(1);
    let mut points = Vec::new();
    let mut connect_time = Duration::ZERO;
    let mut node_conns = vec![0usize; k];
    let (connect_errors, first_connect_error, open_at_end, opened_total);
    if p.per_worker == 0 {
        // Everything in this process, node j getting connections j, j + k, …
        let layout = Layout {
            members: p.connections.div_ceil(p.rooms.max(1)),
            senders_per_room: 0,
            sender_node: 0,
            receiver_node: 0,
        };
        let mut fleets: Vec<Fleet> = (0..k).map(|_| Fleet::new(layout.clone(), &prov)).collect();
        for i in 1..=n_points {
            let upto = p.connections * i / n_points;
            let t0 = Instant::now();
            for (j, fleet) in fleets.iter_mut().enumerate() {
                let node_dep = Deployment {
                    nodes: vec![dep.nodes[j]],
                    ..dep.clone()
                };
                fleet.grow(&node_dep, &prov, share(upto, k, j)).await?;
                node_conns[j] = fleet.len();
            }
            connect_time += t0.elapsed();
            tokio::time::sleep(settle).await;
            points.push(point(&node_conns, &node_rss(&pids, k)));
        }
        connect_errors = fleets.iter().map(|f| f.connect_errors).sum();
        first_connect_error = fleets.iter().find_map(|f| f.first_connect_error.clone());
        open_at_end = fleets.iter().map(Fleet::open).sum();
        opened_total = fleets.iter().map(Fleet::len).sum::<usize>();
        for fleet in fleets {
            fleet.close().await;
        }
    } else {
        let n_workers = p.workers();
        let tokens: Vec<String> = prov.users.iter().map(|u| u.token.clone()).collect();
        let mut pool =
            crate::worker::Pool::start(worker_bin, dep.target, n_workers, tokens).await?;
        let mut worker_conns = vec![0usize; n_workers];
        let mut asked_nodes = vec![0usize; k];
        let mut errors = 0u64;
        let mut first_error = None;
        for i in 1..=n_points {
            let upto = p.connections * i / n_points;
            let worker_after: Vec<usize> =
                (0..n_workers).map(|w| share(upto, n_workers, w)).collect();
            let node_after: Vec<usize> = (0..k).map(|j| share(upto, k, j)).collect();
            let plan = assign(&worker_conns, &worker_after, &asked_nodes, &node_after);
            let batches: Vec<Vec<crate::worker::Batch>> = plan
                .iter()
                .map(|b| {
                    b.iter()
                        .map(|&(j, count)| crate::worker::Batch {
                            addr: dep.nodes[j],
                            count,
                        })
                        .collect()
                })
                .collect();
            let t0 = Instant::now();
            let opened = pool.open(batches).await?;
            connect_time += t0.elapsed();
            errors += opened.errors;
            if first_error.is_none() {
                first_error = opened.first_error;
            }
            worker_conns = worker_after;
            asked_nodes = node_after;
            // Per-node counts are what was asked; failures (reported in total) are not
            // attributed to a node, so the per-node figures assume none.
            node_conns.clone_from(&asked_nodes);
            if opened.errors > 0 {
                let missing = opened_deficit(&node_conns, opened.open as usize);
                subtract_evenly(&mut node_conns, missing);
            }
            tokio::time::sleep(settle).await;
            points.push(point(&node_conns, &node_rss(&pids, k)));
        }
        connect_errors = errors;
        first_connect_error = first_error;
        open_at_end = pool.open_now().await? as usize;
        opened_total = node_conns.iter().sum();
        pool.close().await;
    }
    let last = points.last().cloned();
    let (n, rss) = last.as_ref().map_or((0, rss_zero.iter().sum()), |pt| {
        (pt.connections, pt.rss_bytes)
    });
    let rss_zero_total: u64 = rss_zero.iter().sum();
    let per = |rss: u64, zero: u64, n: usize| {
        if n == 0 {
            0.0
        } else {
            (rss as f64 - zero as f64) / n as f64
        }
    };
    let nodes = (0..k)
        .map(|j| {
            let (c, r) = last
                .as_ref()
                .and_then(|pt| pt.nodes.get(j))
                .map_or((0, rss_zero[j]), |m| (m.connections, m.rss_bytes));
            NodeIdle {
                connections: c,
                rss_zero_bytes: rss_zero[j],
                rss_bytes: r,
                bytes_per_connection: per(r, rss_zero[j], c),
            }
        })
        .collect();
    Ok(IdleResult {
        target: dep.target,
        params: p.clone(),
        rss_zero_bytes: rss_zero_total,
        registrar_rss_before: registrar_before,
        registrar_rss_after: registrar_after,
        bytes_per_connection: per(rss, rss_zero_total, n),
        nodes,
        generator_workers: p.workers(),
        points,
        connect_errors,
        first_connect_error,
        connects_per_sec: opened_total as f64 / connect_time.as_secs_f64().max(1e-9),
        open_at_end,
    })
}

pub(super) fn point(node_conns: &[usize], node_rss: &[u64]) -> MemoryPoint {
    MemoryPoint {
        connections: node_conns.iter().sum(),
        rss_bytes: node_rss.iter().sum(),
        nodes: node_conns
            .iter()
            .zip(node_rss)
            .map(|(&connections, &rss_bytes)| NodeMemory {
                connections,
                rss_bytes,
            })
            .collect(),
    }
}

/// How many of the asked-for connections are not open.
pub(super) fn opened_deficit(asked: &[usize], open: usize) -> usize {
    asked.iter().sum::<usize>().saturating_sub(open)
}

/// Takes `n` off the counts, spread evenly.
pub(super) fn subtract_evenly(counts: &mut [usize], n: usize) {
    let k = counts.len();
    for (j, c) in counts.iter_mut().enumerate() {
        *c = c.saturating_sub(share(n, k, j));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_differ_by_at_most_one_and_add_up() {
        let parts: Vec<usize> = (0..3).map(|j| share(50_000, 3, j)).collect();
        assert_eq!(parts, vec![16_667, 16_667, 16_666]);
        assert_eq!(share(5, 0, 0), 5);
    }

    #[test]
    fn assignment_fills_every_worker_and_node_exactly() {
        let (wb, wa) = (vec![0, 0, 0, 0], vec![12_500; 4]);
        let (nb, na) = (vec![0, 0, 0], vec![16_667, 16_667, 16_666]);
        let plan = assign(&wb, &wa, &nb, &na);
        for (w, batches) in plan.iter().enumerate() {
            assert_eq!(batches.iter().map(|b| b.1).sum::<usize>(), wa[w]);
        }
        for (j, &want) in na.iter().enumerate() {
            let got: usize = plan
                .iter()
                .flatten()
                .filter(|b| b.0 == j)
                .map(|b| b.1)
                .sum();
            assert_eq!(got, want);
        }
        // A later ramp step only adds the difference.
        let plan = assign(&wa, &[15_000; 4], &na, &[20_000; 3]);
        assert_eq!(plan.iter().flatten().map(|b| b.1).sum::<usize>(), 10_000);
    }

    #[test]
    fn presets_keep_every_process_under_the_open_file_limit() {
        let p = IdleParams::preset();
        assert!(p.connections.div_ceil(p.nodes) <= MAX_PER_NODE);
        assert!(p.connections.div_ceil(p.workers()) <= crate::worker::MAX_PER_WORKER);
        assert_eq!(IdleParams::sized(50_000).nodes, 3);
        assert_eq!(IdleParams::sized(15_000).nodes, 1);
    }
}
