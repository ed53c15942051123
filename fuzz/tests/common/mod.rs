//! Replays a target's seeds and saved regressions, then seeded random mutations of the seeds,
//! through the same function libFuzzer drives. Runs on stable Rust: CI's fuzz smoke on any
//! machine, and the regression suite for every crash the campaign found.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect();
    out.sort();
    out
}

/// splitmix64: small, seeded, good enough to mutate inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"-1",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1e309",
    b"\\u0000",
    b"\\ud800",
    b"\"type\"",
    b"\"ref\"",
    b"\"room\"",
    b"\"seq\"",
    b"\"body\"",
    b"\"id\"",
    b"\n",
    b"\xff",
    b"/api/v1/rooms/",
    b"?before=",
    b"&limit=",
    b"%",
    b"%00",
    b"$TOKEN",
    b"0",
    b"2",
    b"4294967296",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.truncate(at),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = (at + rng.below(8)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.splice(at..at, other[from..].iter().copied());
            }
            _ => data.insert(at.min(data.len()), rng.next() as u8),
        }
    }
    data.truncate(4096);
    data
}

/// Runs `target` on every seed and regression of `name`, then on `default_iters` mutations
/// (`CHAT_FUZZ_ITERS` overrides; `CHAT_FUZZ_SEED` picks the mutation seed, printed).
pub fn replay(name: &str, default_iters: usize, target: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files(&root.join("seeds").join(name));
    assert!(!seeds.is_empty(), "no seeds for {name}");
    for (path, data) in seeds
        .iter()
        .chain(&files(&root.join("regressions").join(name)))
    {
        eprintln!("{name}: {}", path.display());
        target(data);
    }
    let iters = std::env::var("CHAT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_iters);
    let seed = std::env::var("CHAT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{name}: {iters} mutations with CHAT_FUZZ_SEED={seed}");
    let mut rng = Rng(seed);
    let corpus: Vec<Vec<u8>> = seeds.into_iter().map(|(_, d)| d).collect();
    for i in 0..iters {
        let input = mutate(&mut rng, &corpus);
        let result = std::panic::catch_unwind(|| target(&input));
        if let Err(e) = result {
            eprintln!("{name}: mutation {i} (CHAT_FUZZ_SEED={seed}) failed on input {input:?}");
            std::panic::resume_unwind(e);
        }
    }
}
