//! What a run does, drawn from its seed ([`Plan`]), and what it found ([`Report`]).

use super::*;

/// The kinds of fault a run injects.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` of a node; its clients reconnect to another one. Restarted later.
    NodeKill,
    /// SIGTERM: graceful shutdown (close 1001), restarted later.
    NodeRestart,
    /// `kill -9` of Redis with AOF everysec, restarted on the same data.
    RedisKill,
    /// Graceful Redis restart (SHUTDOWN) with AOF.
    RedisRestart,
    /// Redis without persistence restarted: everything is gone; clients must be told.
    RedisWipe,
    /// The node↔Redis link drops every connection and refuses new ones for a while.
    LinkReset,
    /// The node↔Redis link goes silent (packets held) for a while.
    LinkBlackhole,
    /// A scripted client drops its socket and stays away, composing into its outbox.
    ClientOffline,
    /// A scripted client stops reading while another bursts into its room (server: 4008).
    SlowClient,
    /// The desktop app loses the network for a while and composes into its outbox.
    DesktopOffline,
    /// The desktop app is closed with pending outbox messages and opened again.
    DesktopReopen,
    /// Redis with AOF loses the tail of its log (what a machine crash with `appendfsync
    /// everysec` can do): `kill -9` and the last few KB of the AOF cut off. The loss is
    /// allowed; every client must be told (4010) and no seq may be handed out twice.
    RedisRollback,
    /// `kill -9` of a node while a large upload to it is half-way (its half-written file seen
    /// on the storage); the client then uploads the file again to a live node and sends it.
    UploadKill,
    /// Redis Cluster: `kill -9` of a master under traffic; the cluster promotes its replica
    /// (which may lack the master's last acknowledged writes: every client holding one must be
    /// told). The killed node comes back empty and rejoins as a replica.
    ShardFailover,
    /// Redis Cluster: the slot of a room's partition moves to another master under traffic
    /// (`redis-cli --cluster reshard`'s steps), its subscribers dropped by Redis.
    SlotMove,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::NodeKill,
        FaultKind::NodeRestart,
        FaultKind::RedisKill,
        FaultKind::RedisRestart,
        FaultKind::RedisWipe,
        FaultKind::RedisRollback,
        FaultKind::LinkReset,
        FaultKind::LinkBlackhole,
        FaultKind::ClientOffline,
        FaultKind::SlowClient,
        FaultKind::DesktopOffline,
        FaultKind::DesktopReopen,
        FaultKind::UploadKill,
        FaultKind::ShardFailover,
        FaultKind::SlotMove,
    ];

    /// Kinds that exist only on a Redis Cluster (a run with one is a cluster run).
    pub fn needs_cluster(self) -> bool {
        matches!(self, FaultKind::ShardFailover | FaultKind::SlotMove)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NodeKill => "node_kill",
            FaultKind::NodeRestart => "node_restart",
            FaultKind::RedisKill => "redis_kill",
            FaultKind::RedisRestart => "redis_restart",
            FaultKind::RedisWipe => "redis_wipe",
            FaultKind::LinkReset => "link_reset",
            FaultKind::LinkBlackhole => "link_blackhole",
            FaultKind::ClientOffline => "client_offline",
            FaultKind::SlowClient => "slow_client",
            FaultKind::DesktopOffline => "desktop_offline",
            FaultKind::DesktopReopen => "desktop_reopen",
            FaultKind::RedisRollback => "redis_rollback",
            FaultKind::UploadKill => "upload_kill",
            FaultKind::ShardFailover => "shard_failover",
            FaultKind::SlotMove => "slot_move",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One planned fault.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Milliseconds after traffic starts.
    pub at_ms: u64,
    pub for_ms: u64,
    /// Node or client index, where it applies.
    pub target: usize,
}

/// What a run's plan is drawn from besides its seed: every fault of one kind (the CI subset),
/// and the Redis deployment. A seed's plan is the same as before clusters came in unless the
/// draw says cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Draw {
    pub only: Option<FaultKind>,
    pub cluster: bool,
}

impl Draw {
    /// Every fault of `kind` (a cluster kind makes a cluster run).
    pub fn only(kind: FaultKind) -> Draw {
        Draw {
            only: Some(kind),
            cluster: kind.needs_cluster(),
        }
    }

    /// The `faults run` arguments that draw the same plan.
    pub fn args(self) -> Vec<&'static str> {
        let mut args = Vec::new();
        if let Some(kind) = self.only {
            args.extend(["--only", kind.name()]);
        }
        if self.cluster {
            args.push("--cluster");
        }
        args
    }
}

/// The Redis the nodes share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    /// One `redis-server` (AOF or none), behind one proxy per node.
    #[default]
    Single,
    /// A Redis Cluster of 3 masters with a replica each (no persistence), the nodes connected
    /// to it directly (`redis_cluster`).
    Cluster,
}

/// Where the nodes keep attachments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// A directory every node uses (`attachments.dir`).
    #[default]
    Dir,
    /// One bucket of a private `s3s-fs` (`attachments.s3`).
    S3,
}

/// Everything a seed decides.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub seed: u64,
    pub nodes: usize,
    pub clients_per_node: usize,
    pub persistence: Persistence,
    #[serde(default)]
    pub deployment: Deployment,
    #[serde(default)]
    pub storage: Storage,
    pub desktop: bool,
    pub traffic_ms: u64,
    pub send_every_ms: u64,
    pub faults: Vec<Fault>,
}

impl Plan {
    /// The plan of `seed` under `draw`.
    pub fn new(seed: u64, draw: Draw) -> Plan {
        let only = draw.only;
        let cluster = draw.cluster || only.is_some_and(FaultKind::needs_cluster);
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = rng.random_range(2..=3);
        let clients_per_node = 2;
        let wipe = match only {
            Some(k) => k == FaultKind::RedisWipe,
            None => rng.random_range(0..10) == 0,
        };
        // A machine crash under AOF everysec: once, after the other faults, in one run of ten.
        let rollback = match only {
            Some(k) => k == FaultKind::RedisRollback,
            None => !wipe && rng.random_range(0..10) == 0,
        };
        let persistence = if wipe || (only.is_none() && !rollback && rng.random_range(0..4) == 0) {
            Persistence::None
        } else {
            Persistence::Aof
        };
        // A cluster's nodes keep no files (their replicas are the copy): no wipe, no rollback
        // of an AOF; the cluster's own faults instead.
        let (wipe, rollback, persistence) = if cluster {
            (false, false, Persistence::None)
        } else {
            (wipe, rollback, persistence)
        };
        let desktop_kinds = [FaultKind::DesktopOffline, FaultKind::DesktopReopen];
        let desktop = match only {
            Some(k) => desktop_kinds.contains(&k) || rng.random_range(0..3) == 0,
            None => rng.random_range(0..2) == 0,
        };
        let traffic_ms = rng.random_range(3500..=5500);
        let mut kinds: Vec<FaultKind> = vec![
            FaultKind::NodeKill,
            FaultKind::NodeRestart,
            FaultKind::LinkReset,
            FaultKind::LinkBlackhole,
            FaultKind::ClientOffline,
            FaultKind::SlowClient,
            FaultKind::UploadKill,
        ];
        if persistence == Persistence::Aof {
            kinds.extend([FaultKind::RedisKill, FaultKind::RedisRestart]);
        }
        if cluster {
            // The node↔Redis proxies are a single-Redis deployment's.
            kinds.retain(|k| !matches!(k, FaultKind::LinkReset | FaultKind::LinkBlackhole));
            kinds.extend([FaultKind::ShardFailover, FaultKind::SlotMove]);
        }
        if desktop {
            kinds.extend(desktop_kinds);
        }
        let count = match only {
            Some(FaultKind::RedisWipe | FaultKind::RedisRollback) => 0,
            Some(_) => rng.random_range(1..=2),
            None => rng.random_range(2..=4),
        };
        let mut faults = Vec::new();
        let mut at = rng.random_range(300..900);
        for _ in 0..count {
            let kind = only.unwrap_or_else(|| kinds[rng.random_range(0..kinds.len())]);
            let for_ms = match kind {
                FaultKind::SlowClient => rng.random_range(2000..3500),
                FaultKind::DesktopReopen => rng.random_range(200..600),
                _ => rng.random_range(200..1500),
            };
            let target = match kind {
                FaultKind::ClientOffline | FaultKind::SlowClient => {
                    rng.random_range(0..nodes * clients_per_node)
                }
                _ => rng.random_range(0..nodes),
            };
            faults.push(Fault {
                kind,
                at_ms: at,
                for_ms,
                target,
            });
            at += for_ms + rng.random_range(100..700);
        }
        if rollback {
            // Well after setup, so at most the last second of traffic is lost.
            at = at.max(1500);
            faults.push(Fault {
                kind: FaultKind::RedisRollback,
                at_ms: at,
                for_ms: rng.random_range(200..1500),
                target: 0,
            });
            at += 1500;
        }
        if wipe {
            faults.push(Fault {
                kind: FaultKind::RedisWipe,
                at_ms: rng.random_range(800..traffic_ms - 500),
                for_ms: 0,
                target: 0,
            });
        }
        let traffic_ms = traffic_ms.max(at + 300);
        // Drawn last, so the rest of a seed's plan is what it was before files came in.
        let storage = match only {
            Some(FaultKind::UploadKill) if seed % 2 == 0 => Storage::S3,
            Some(_) => Storage::Dir,
            None if rng.random_range(0..4) == 0 => Storage::S3,
            None => Storage::Dir,
        };
        Plan {
            seed,
            nodes,
            clients_per_node,
            persistence,
            deployment: if cluster {
                Deployment::Cluster
            } else {
                Deployment::Single
            },
            storage,
            desktop,
            traffic_ms,
            send_every_ms: rng.random_range(120..250),
            faults,
        }
    }
}

/// The result of one run (one JSON line in the campaign's output).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub seed: u64,
    pub ok: bool,
    pub plan: Plan,
    pub faults: BTreeMap<String, u32>,
    pub volume: Volume,
    /// Messages acked before a store wipe (gone, as documented; every client was told).
    pub wiped_acked: u64,
    /// Rollback runs (`redis_rollback`): acknowledged messages the store lost (allowed, the
    /// documented limit of AOF everysec; they do not fail the run).
    pub lost_detected: u64,
    /// Rollback runs: scripted clients that held something the store lost (an event they
    /// received, a message acknowledged to them), so had something to be told.
    #[serde(default)]
    pub rollback_affected: u32,
    /// Rollback runs: of those, the ones told neither by 4010 nor by a gap.
    pub rollback_untold: u32,
    /// Who they are and what they held.
    #[serde(default)]
    pub untold: Vec<String>,
    /// What each `redis_rollback` cut off the AOF: bytes, commands, room events.
    #[serde(default)]
    pub aof_cuts: Vec<crate::aof::Cut>,
    /// The store lost acknowledged writes (AOF tail cut, or Redis killed while an AOF write
    /// was postponed); judged by the rollback rules.
    pub store_lost_writes: bool,
    /// Slow-consumer closes (4008) the clients received.
    pub slow_closes: u32,
    /// Close codes the scripted clients received, by code.
    pub closes: BTreeMap<u16, u32>,
    /// `upload_kill` faults whose upload was seen half-written on the storage when the node
    /// was killed.
    #[serde(default)]
    pub cut_uploads: u32,
    /// Half-written upload files on the storage at the end (before the collector's pass
    /// that must remove them).
    #[serde(default)]
    pub partial_files: u32,
    pub findings: Findings,
    /// The run could not be carried out (setup failed, a process would not start).
    pub error: Option<String>,
    pub secs: f64,
}

impl Report {
    /// A report of `plan` with nothing found yet (not ok until the run says so).
    pub fn empty(seed: u64, plan: Plan) -> Report {
        Report {
            seed,
            ok: false,
            plan,
            faults: BTreeMap::new(),
            volume: Volume::default(),
            wiped_acked: 0,
            lost_detected: 0,
            rollback_affected: 0,
            rollback_untold: 0,
            untold: Vec::new(),
            aof_cuts: Vec::new(),
            store_lost_writes: false,
            slow_closes: 0,
            closes: BTreeMap::new(),
            cut_uploads: 0,
            partial_files: 0,
            findings: Findings::default(),
            error: None,
            secs: 0.0,
        }
    }

    pub fn lost(&self) -> usize {
        self.findings.lost.len()
    }
    pub fn duplicated(&self) -> usize {
        self.findings.duplicated.len()
    }
    pub fn reordered(&self) -> usize {
        self.findings.reordered.len() + self.findings.gapped.len()
    }
    pub fn corrupted(&self) -> usize {
        self.findings.corrupted.len()
    }
}
