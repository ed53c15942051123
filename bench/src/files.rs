//! `files`: attachments under load (issue 14). N users of one room each upload one file of S
//! bytes at the same time, each sends a message naming its upload, then every file is downloaded
//! at the same time by another member of the room and compared byte for byte with what was sent.
//! Upload and download throughput, the time of each transfer, and the server's memory (RSS and
//! PSS sampled throughout) are measured, at several file sizes: memory that stays flat while the
//! files grow tenfold is what "streamed, never whole in memory" looks like from outside.
//!
//! The bytes are never held whole on the client either: each file is a counter-based
//! pseudo-random stream ([`Pattern`]) generated chunk by chunk for the upload, and generated
//! again for the comparison as the download arrives.
//!
//! [`disk_reference`] is the machine's own speed for the same job without a server: the same
//! N files written from the same generator, read back and compared, and copied, N at once, in a
//! directory of the same filesystem.

use crate::procs::{self, CpuSnapshot};
use crate::setup::{provision, Provisioned};
use crate::{Deployment, Error, Result, Target};
use futures_util::future::try_join_all;
use protocol::rest::SendMessage;
use protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const MIB: u64 = 1024 * 1024;

/// What one `files` run does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesParams {
    /// Concurrent uploads (and then downloads), one per user, all in one room.
    pub uploads: usize,
    /// File sizes in bytes; each size is a separate run on fresh server processes.
    pub sizes: Vec<u64>,
    /// Bytes per write of the uploading client.
    pub chunk_bytes: usize,
    /// Period of the server memory sampling, in milliseconds.
    pub sample_ms: u64,
}

impl FilesParams {
    /// The job, 20 × 50 MiB, and 20 × 5 MiB to show memory does not follow file size.
    pub fn preset() -> FilesParams {
        FilesParams {
            uploads: 20,
            sizes: vec![5 * MIB, 50 * MIB],
            chunk_bytes: 64 * 1024,
            sample_ms: 50,
        }
    }

    /// The largest file of the plan: the servers' upload limit is raised to it.
    pub fn max_size(&self) -> u64 {
        self.sizes.iter().copied().max().unwrap_or(0)
    }
}

/// N transfers that ran at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transfer {
    pub files: usize,
    pub bytes: u64,
    /// From the first request to the last transfer's end.
    pub wall_s: f64,
    /// All bytes over `wall_s`, in MiB/s.
    pub mib_per_s: f64,
    /// Time of one transfer (request to response, or to the last byte checked), in seconds.
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl Transfer {
    fn of(bytes_each: u64, times: &[Duration], wall: Duration) -> Transfer {
        let mut s: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if s.is_empty() {
                0.0
            } else {
                s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
            }
        };
        let bytes = bytes_each * times.len() as u64;
        let wall_s = wall.as_secs_f64().max(1e-9);
        Transfer {
            files: times.len(),
            bytes,
            wall_s,
            mib_per_s: bytes as f64 / MIB as f64 / wall_s,
            p50_s: at(0.5),
            p99_s: at(0.99),
            max_s: s.last().copied().unwrap_or(0.0),
        }
    }
}

/// The server processes' memory over one phase (sums over the processes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryTrace {
    /// Just before the phase.
    pub baseline_rss: u64,
    pub baseline_pss: u64,
    /// The highest sample during the phase.
    pub peak_rss: u64,
    pub peak_pss: u64,
    pub samples: usize,
}

/// One file size on one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesRun {
    pub file_bytes: u64,
    pub upload: Transfer,
    pub download: Transfer,
    /// `None` when the server runs in this process (the smoke test).
    pub upload_memory: Option<MemoryTrace>,
    pub download_memory: Option<MemoryTrace>,
    /// Server CPU seconds per GiB moved, uploads and downloads.
    pub upload_cpu_s_per_gib: f64,
    pub download_cpu_s_per_gib: f64,
    /// The load generator's own CPU over both phases, in cores.
    pub bench_cores: f64,
    /// Messages sent naming an upload.
    pub messages: usize,
    /// Downloads that matched their upload byte for byte (any mismatch fails the run).
    pub verified: usize,
}

/// Every file size of one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesResult {
    pub target: Target,
    pub uploads: usize,
    pub runs: Vec<FilesRun>,
}

/// The same files, written, read and copied on this machine without a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskRun {
    pub file_bytes: u64,
    /// N files written at once from the generator (an upload without the network).
    pub write: Transfer,
    /// Read back and compared at once (a download without the network).
    pub read: Transfer,
    /// Copied at once, read and write through a user-space buffer.
    pub copy: Transfer,
}

// ---------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------

/// A reproducible stream of pseudo-random bytes: byte `k` of the stream is byte `k % 8` of
/// SplitMix64's output for word `k / 8`, so any part of it can be made without the rest, and
/// the result does not depend on how it is cut into chunks.
#[derive(Debug, Clone)]
pub struct Pattern {
    seed: u64,
    pos: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern { seed, pos: 0 }
    }

    fn word(&self, w: u64) -> [u8; 8] {
        let mut z = self
            .seed
            .wrapping_add(w.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// The next `out.len()` bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let off = (self.pos % 8) as usize;
            let word = self.word(self.pos / 8);
            let n = (8 - off).min(out.len() - i);
            out[i..i + n].copy_from_slice(&word[off..off + n]);
            i += n;
            self.pos += n as u64;
        }
    }
}

/// The seed of file `i` of a run of files of `size` bytes.
fn seed(size: u64, i: usize) -> u64 {
    size.rotate_left(32) ^ (i as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// Checks arriving bytes against the stream they should be.
struct Checker {
    expect: Pattern,
    scratch: Vec<u8>,
    seen: u64,
}

impl Checker {
    fn new(seed: u64) -> Checker {
        Checker {
            expect: Pattern::new(seed),
            scratch: Vec::new(),
            seen: 0,
        }
    }

    fn check(&mut self, chunk: &[u8], what: &str) -> Result<()> {
        self.scratch.resize(chunk.len(), 0);
        self.expect.fill(&mut self.scratch);
        if self.scratch != chunk {
            let at = self.seen
                + self
                    .scratch
                    .iter()
                    .zip(chunk)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0) as u64;
            return Err(Error::Protocol(format!(
                "{what} differs from what was uploaded at byte {at}"
            )));
        }
        self.seen += chunk.len() as u64;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// Samples the servers' RSS and PSS until stopped.
struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<MemoryTrace>,
}

impl Sampler {
    fn start(pids: &[u32], period: Duration) -> Option<Sampler> {
        if pids.is_empty() {
            return None;
        }
        let pids = pids.to_vec();
        let read = move || -> (u64, u64) {
            (
                pids.iter().map(|&p| procs::rss_bytes(p)).sum(),
                pids.iter().map(|&p| procs::pss_bytes(p)).sum(),
            )
        };
        let (baseline_rss, baseline_pss) = read();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut trace = MemoryTrace {
                baseline_rss,
                baseline_pss,
                peak_rss: baseline_rss,
                peak_pss: baseline_pss,
                samples: 1,
            };
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let (rss, pss) = read();
                trace.peak_rss = trace.peak_rss.max(rss);
                trace.peak_pss = trace.peak_pss.max(pss);
                trace.samples += 1;
            }
            // One last look: the phase's end is part of it.
            let (rss, pss) = read();
            trace.peak_rss = trace.peak_rss.max(rss);
            trace.peak_pss = trace.peak_pss.max(pss);
            trace.samples += 1;
            trace
        });
        Some(Sampler { stop, task })
    }

    async fn finish(sampler: Option<Sampler>) -> Result<Option<MemoryTrace>> {
        let Some(s) = sampler else { return Ok(None) };
        let _ = s.stop.send(());
        s.task
            .await
            .map(Some)
            .map_err(|e| Error::Process(format!("memory sampler: {e}")))
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Uploaded {
    id: String,
    size: u64,
}

/// The REST routes of either target: ours through the typed client, the peers' by hand.
struct Routes {
    http: reqwest::Client,
    base: String,
    target: Target,
    ours: chat_client::Client,
}

impl Routes {
    fn new(target: Target, addr: std::net::SocketAddr) -> Result<Routes> {
        let (http, base, ours) = crate::setup::node_clients(addr, Duration::from_secs(600))?;
        Ok(Routes {
            http,
            base,
            target,
            ours,
        })
    }

    async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(Error::Protocol(format!("{what}: {status} {body:.200}")))
    }

    /// Uploads file `i`, generated as it is sent; returns its id and how long it took.
    async fn upload_one(
        &self,
        token: &str,
        room: u64,
        i: usize,
        size: u64,
        chunk: usize,
    ) -> Result<(String, Duration)> {
        let body = futures_util::stream::unfold(
            (Pattern::new(seed(size, i)), size),
            move |(mut pattern, left)| async move {
                if left == 0 {
                    return None;
                }
                let mut buf = vec![0u8; left.min(chunk as u64) as usize];
                pattern.fill(&mut buf);
                let left = left - buf.len() as u64;
                Some((Ok::<_, std::io::Error>(buf), (pattern, left)))
            },
        );
        let body = reqwest::Body::wrap_stream(body);
        let name = format!("bench-{i}.bin");
        let started = Instant::now();
        let up = if self.target == Target::Ours {
            let ours = self.ours.with_token(token);
            let att = ours
                .upload(RoomId(room), &name, body, Some(size), None)
                .await?;
            Uploaded {
                id: att.id,
                size: att.size,
            }
        } else {
            let resp = self
                .http
                .post(format!("{}/api/rooms/{room}/attachments", self.base))
                .query(&[("name", name)])
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_LENGTH, size)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body)
                .send()
                .await?;
            Self::check(resp, "upload").await?.json().await?
        };
        let took = started.elapsed();
        if up.size != size {
            return Err(Error::Protocol(format!(
                "upload {i}: the server stored {} bytes of {size}",
                up.size
            )));
        }
        Ok((up.id, took))
    }

    async fn send(&self, token: &str, room: u64, i: usize, id: &str) -> Result<()> {
        let message = SendMessage {
            id: format!("bench-file-{i}"),
            body: String::new(),
            reply_to: None,
            mentions: Vec::new(),
            mention_room: false,
            attachments: vec![id.to_owned()],
        };
        if self.target == Target::Ours {
            let ours = self.ours.with_token(token);
            ours.send_message(RoomId(room), &message).await?;
            return Ok(());
        }
        let resp = self
            .http
            .post(format!("{}/api/rooms/{room}/messages", self.base))
            .bearer_auth(token)
            .json(&message)
            .send()
            .await?;
        Self::check(resp, "message with an attachment").await?;
        Ok(())
    }

    /// Downloads file `i` and compares it with its stream as it arrives.
    async fn download_one(&self, token: &str, id: &str, i: usize, size: u64) -> Result<Duration> {
        let what = format!("download of file {i}");
        let started = Instant::now();
        let mut resp = if self.target == Target::Ours {
            self.ours
                .with_token(token)
                .download(id, false, None)
                .await?
        } else {
            let url = format!("{}/api/attachments/{id}", self.base);
            let resp = self.http.get(url).bearer_auth(token).send();
            Self::check(resp.await?, &what).await?
        };
        let mut checker = Checker::new(seed(size, i));
        while let Some(chunk) = resp.chunk().await? {
            checker.check(&chunk, &what)?;
        }
        if checker.seen != size {
            return Err(Error::Protocol(format!(
                "{what}: {} bytes of {size}",
                checker.seen
            )));
        }
        Ok(started.elapsed())
    }
}

/// Runs the job once with files of `size` bytes: provisions `p.uploads` users in one room of
/// node 0, uploads, sends, downloads, verifies.
pub async fn files(dep: &Deployment, p: &FilesParams, size: u64) -> Result<FilesRun> {
    let uploads = p.uploads.max(1);
    let prov: Provisioned = provision(dep, 1, uploads).await?;
    let room = prov.rooms[0].0;
    let routes = Arc::new(Routes::new(dep.target, dep.nodes[0])?);
    let period = Duration::from_millis(p.sample_ms.max(1));
    // Let the registrations' allocations settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu0 = CpuSnapshot::take(dep);
    let sampler = Sampler::start(&dep.server_pids, period);
    let started = Instant::now();
    let done = try_join_all(prov.users.iter().enumerate().map(|(i, user)| {
        let routes = routes.clone();
        let token = user.token.clone();
        let chunk = p.chunk_bytes.max(1);
        tokio::spawn(async move { routes.upload_one(&token, room, i, size, chunk).await })
    }))
    .await
    .map_err(|e| Error::Process(format!("upload task: {e}")))?
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let upload_wall = started.elapsed();
    let upload_memory = Sampler::finish(sampler).await?;
    let cpu1 = CpuSnapshot::take(dep);

    for (i, (user, (id, _))) in prov.users.iter().zip(&done).enumerate() {
        routes.send(&user.token, room, i, id).await?;
    }

    let cpu2 = CpuSnapshot::take(dep);
    let sampler = Sampler::start(&dep.server_pids, period);
    let started = Instant::now();
    let n = prov.users.len();
    let times = try_join_all(done.iter().enumerate().map(|(i, (id, _))| {
        let routes = routes.clone();
        // Another member of the room than the uploader (itself when alone).
        let token = prov.users[(i + 1) % n].token.clone();
        let id = id.clone();
        tokio::spawn(async move { routes.download_one(&token, &id, i, size).await })
    }))
    .await
    .map_err(|e| Error::Process(format!("download task: {e}")))?
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let download_wall = started.elapsed();
    let download_memory = Sampler::finish(sampler).await?;
    let cpu3 = CpuSnapshot::take(dep);

    let up = cpu0.delta(&cpu1);
    let down = cpu2.delta(&cpu3);
    let gib = (size * n as u64) as f64 / (1024.0 * MIB as f64);
    let upload_times: Vec<Duration> = done.iter().map(|(_, t)| *t).collect();
    Ok(FilesRun {
        file_bytes: size,
        upload: Transfer::of(size, &upload_times, upload_wall),
        download: Transfer::of(size, &times, download_wall),
        upload_memory,
        download_memory,
        upload_cpu_s_per_gib: up.servers / gib.max(1e-12),
        download_cpu_s_per_gib: down.servers / gib.max(1e-12),
        bench_cores: (up.bench + down.bench)
            / (upload_wall + download_wall).as_secs_f64().max(1e-9),
        messages: n,
        verified: times.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// The machine's own speed
// ---------------------------------------------------------------------------------------------

/// A directory removed (with everything in it) on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under `parent` (the system's temporary directory if `None`).
    pub fn new(parent: Option<&Path>, prefix: &str) -> Result<TempDir> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `job(i)` for `i in 0..n` on `n` threads at once; the wall time and each job's time.
async fn at_once<F>(n: usize, job: F) -> Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> std::io::Result<()> + Send + Sync + 'static,
{
    let job = Arc::new(job);
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let job = job.clone();
            tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                job(i).map(|()| t.elapsed())
            })
        })
        .collect();
    let mut times = Vec::with_capacity(n);
    for h in handles {
        times.push(
            h.await
                .map_err(|e| Error::Process(format!("disk job: {e}")))??,
        );
    }
    Ok((started.elapsed(), times))
}

/// The reference: `n` files of `size` bytes written from [`Pattern`] at once, read back and
/// compared at once, then copied at once, in a new directory under `parent`; `chunk` bytes
/// per read or write, like the client's. Nothing is synced to disk, as the servers do not
/// either: all three mostly measure the page cache, as the servers' transfers do.
pub async fn disk_reference(
    parent: Option<&Path>,
    n: usize,
    size: u64,
    chunk: usize,
) -> Result<DiskRun> {
    let dir = TempDir::new(parent, "chat-bench-disk")?;
    let path = |d: &Path, kind: &str, i: usize| d.join(format!("{kind}-{i}"));
    let root = dir.path().to_path_buf();
    let chunk = chunk.max(1);

    let d = root.clone();
    let (wall, times) = at_once(n, move |i| {
        let mut f = std::fs::File::create(path(&d, "file", i))?;
        let mut pattern = Pattern::new(seed(size, i));
        let mut buf = vec![0u8; chunk];
        let mut left = size;
        while left > 0 {
            let k = left.min(chunk as u64) as usize;
            pattern.fill(&mut buf[..k]);
            f.write_all(&buf[..k])?;
            left -= k as u64;
        }
        Ok(())
    })
    .await?;
    let write = Transfer::of(size, &times, wall);

    let d = root.clone();
    let (wall, times) = at_once(n, move |i| {
        let mut f = std::fs::File::open(path(&d, "file", i))?;
        let mut checker = Checker::new(seed(size, i));
        let mut buf = vec![0u8; chunk];
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            checker
                .check(&buf[..k], "a file read back")
                .map_err(std::io::Error::other)?;
        }
        if checker.seen != size {
            return Err(std::io::Error::other("a file read back is short"));
        }
        Ok(())
    })
    .await?;
    let read = Transfer::of(size, &times, wall);

    let d = root.clone();
    let (wall, times) = at_once(n, move |i| {
        let mut from = std::fs::File::open(path(&d, "file", i))?;
        let mut to = std::fs::File::create(path(&d, "copy", i))?;
        // A loop, not `std::io::copy`: that hands file-to-file copies to the kernel
        // (`copy_file_range`), which can share extents instead of moving the bytes.
        let mut buf = vec![0u8; chunk];
        loop {
            let k = from.read(&mut buf)?;
            if k == 0 {
                break;
            }
            to.write_all(&buf[..k])?;
        }
        Ok(())
    })
    .await?;
    let copy = Transfer::of(size, &times, wall);
    drop(dir);
    Ok(DiskRun {
        file_bytes: size,
        write,
        read,
        copy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_does_not_depend_on_chunking() {
        let mut whole = vec![0u8; 1000];
        Pattern::new(7).fill(&mut whole);
        let mut p = Pattern::new(7);
        let mut pieces = Vec::new();
        for n in [1, 3, 8, 13, 0, 64, 911] {
            let mut buf = vec![0u8; n];
            p.fill(&mut buf);
            pieces.extend_from_slice(&buf);
        }
        assert_eq!(pieces, whole);
        let mut other = vec![0u8; 1000];
        Pattern::new(8).fill(&mut other);
        assert_ne!(other, whole);
    }

    #[test]
    fn checker_finds_the_first_wrong_byte() {
        let mut data = vec![0u8; 100];
        Pattern::new(3).fill(&mut data);
        let mut c = Checker::new(3);
        c.check(&data[..40], "x").unwrap();
        data[57] ^= 1;
        let err = c.check(&data[40..], "x").unwrap_err().to_string();
        assert!(err.contains("byte 57"), "{err}");
    }

    #[test]
    fn transfer_percentiles() {
        let times: Vec<Duration> = (1..=20).map(Duration::from_secs).collect();
        let t = Transfer::of(MIB, &times, Duration::from_secs(20));
        assert_eq!(t.files, 20);
        assert_eq!(t.p50_s, 10.0);
        assert_eq!(t.p99_s, 20.0);
        assert_eq!(t.max_s, 20.0);
        assert!((t.mib_per_s - 1.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn disk_reference_writes_reads_and_copies() {
        let r = disk_reference(None, 3, 100_000, 4096).await.unwrap();
        assert_eq!(r.write.files, 3);
        assert_eq!(r.read.bytes, 300_000);
        assert!(r.copy.mib_per_s > 0.0);
    }
}
