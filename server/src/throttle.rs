//! Per-account throttling of password guessing (the per-address limit is in [`crate::limits`]).
//!
//! Each account has a bucket of failed logins: `login_failures_burst` tokens, refilled at
//! `login_failures_per_hour`. A wrong password takes a token. While the bucket is empty the
//! account is "under attack" and a login attempt is refused (`rate_limited`, with the time until
//! the next token) — unless it comes from an address (IPv4, or IPv6 /64) this account logged in
//! from successfully before on this node. Every attempt takes its token before the password is
//! checked and a right password gives it back, so parallel guesses cannot overdraw. So:
//!
//! * guessing from any number of rotating addresses gets at most the account's budget
//!   (burst, then `login_failures_per_hour`), not one budget per address;
//! * the attacker cannot lock the owner out from where the owner usually logs in: those
//!   addresses skip the account bucket (they still have the per-address limit, and their
//!   failures still drain the bucket);
//! * from a new address the owner waits at most one refill interval per attempt once the
//!   attack stops; while an attack keeps the bucket empty, new addresses are refused.
//!
//! State is per node and in memory, like the other limits. Known addresses are kept for
//! accounts that logged in (at most [`KNOWN_PER_ACCOUNT`] each, most recent first); buckets
//! that have refilled are forgotten by [`LoginThrottle::forget_idle`].

use crate::error::ApiError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered per account as "the owner logged in from here".
pub const KNOWN_PER_ACCOUNT: usize = 16;
/// Accounts tracked at most (failure buckets); beyond it the oldest full ones go first, and if
/// none is full the new account is not tracked (the per-address limit still applies).
const MAX_ACCOUNTS: usize = 100_000;

/// One password check let through by [`LoginThrottle::attempt`].
#[derive(Debug, Clone, Copy)]
#[must_use = "pass it to `succeeded` when the password was right"]
pub struct Attempt {
    took: bool,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Account {
    failures: Option<Bucket>,
    /// Address keys (see `client_addr::net_key`) with a successful login, most recent first.
    known: Vec<(IpAddr, Instant)>,
}

pub struct LoginThrottle {
    burst: f64,
    /// Time for one token to come back.
    refill: Duration,
    /// How long a known address is remembered after its last successful login.
    remember: Duration,
    accounts: Mutex<HashMap<String, Account>>,
}

impl LoginThrottle {
    pub fn new(burst: u32, per_hour: u32, remember: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill: Duration::from_secs(3600) / per_hour.max(1),
            remember,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str) -> String {
        username.to_lowercase()
    }

    fn tokens(&self, bucket: Option<Bucket>, now: Instant) -> f64 {
        match bucket {
            None => self.burst,
            Some(b) => {
                let back =
                    now.saturating_duration_since(b.at).as_secs_f64() / self.refill.as_secs_f64();
                (b.tokens + back).min(self.burst)
            }
        }
    }

    /// Before checking a password for `username` from `net`: takes a token from the account's
    /// bucket (given back by [`LoginThrottle::succeeded`]), so concurrent guesses cannot all
    /// slip through before the first one fails. With the bucket empty, only a known address
    /// may try (taking nothing); others get `rate_limited` with the time to the next token.
    pub fn attempt(&self, username: &str, net: IpAddr, now: Instant) -> Result<Attempt, ApiError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key(username);
        if !accounts.contains_key(&key) && accounts.len() >= MAX_ACCOUNTS {
            self.make_room(&mut accounts, now);
            if accounts.len() >= MAX_ACCOUNTS {
                return Ok(Attempt { took: false });
            }
        }
        let account = accounts.entry(key).or_default();
        let tokens = self.tokens(account.failures, now);
        if tokens >= 1.0 {
            account.failures = Some(Bucket {
                tokens: tokens - 1.0,
                at: now,
            });
            return Ok(Attempt { took: true });
        }
        let known = account
            .known
            .iter()
            .any(|(k, at)| *k == net && now.saturating_duration_since(*at) < self.remember);
        if known {
            return Ok(Attempt { took: false });
        }
        let wait = self.refill.mul_f64(1.0 - tokens);
        Err(ApiError::rate_limited(wait.as_millis().max(1) as u64))
    }

    /// Drops up to 1024 accounts that hold nothing worth keeping.
    fn make_room(&self, accounts: &mut HashMap<String, Account>, now: Instant) {
        let idle: Vec<String> = accounts
            .iter()
            .filter(|(_, a)| a.known.is_empty() && self.tokens(a.failures, now) >= self.burst)
            .map(|(k, _)| k.clone())
            .take(1024)
            .collect();
        for k in idle {
            accounts.remove(&k);
        }
    }

    /// The password was right: give back the attempt's token and remember the address.
    pub fn succeeded(&self, username: &str, net: IpAddr, attempt: Attempt, now: Instant) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let account = accounts.entry(Self::key(username)).or_default();
        if attempt.took {
            let tokens = self.tokens(account.failures, now);
            account.failures = Some(Bucket {
                tokens: (tokens + 1.0).min(self.burst),
                at: now,
            });
        }
        account.known.retain(|(k, _)| *k != net);
        account.known.insert(0, (net, now));
        account.known.truncate(KNOWN_PER_ACCOUNT);
    }

    /// Drops refilled buckets and expired addresses, and accounts left with neither.
    pub fn forget_idle(&self, now: Instant) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.retain(|_, a| {
            if self.tokens(a.failures, now) >= self.burst {
                a.failures = None;
            }
            a.known
                .retain(|(_, at)| now.saturating_duration_since(*at) < self.remember);
            a.failures.is_some() || !a.known.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn budget_is_per_account_and_refills() {
        let t = LoginThrottle::new(3, 60, Duration::from_secs(3600));
        let now = Instant::now();
        for i in 0..3 {
            let from = ip(&format!("192.0.2.{i}"));
            let _ = t.attempt("Alice", from, now).unwrap();
        }
        let refused = t.attempt("alice", ip("198.51.100.1"), now).unwrap_err();
        assert_eq!(refused.retry_after_ms, Some(60_000));
        // One token a minute.
        let _ = t
            .attempt("alice", ip("198.51.100.1"), now + Duration::from_secs(60))
            .unwrap();
        // Other accounts are not affected.
        let _ = t.attempt("bob", ip("198.51.100.1"), now).unwrap();
    }

    #[test]
    fn known_address_skips_an_empty_bucket() {
        let t = LoginThrottle::new(2, 60, Duration::from_secs(3600));
        let now = Instant::now();
        let first = t.attempt("alice", ip("192.0.2.10"), now).unwrap();
        t.succeeded("alice", ip("192.0.2.10"), first, now);
        let _ = t.attempt("alice", ip("203.0.113.1"), now).unwrap();
        let _ = t.attempt("alice", ip("203.0.113.1"), now).unwrap();
        assert!(t.attempt("alice", ip("203.0.113.1"), now).is_err());
        let _ = t.attempt("alice", ip("192.0.2.10"), now).unwrap();
        // Forgotten after `remember`.
        let later = now + Duration::from_secs(3601);
        let _ = t.attempt("alice", ip("203.0.113.1"), later).unwrap();
        let _ = t.attempt("alice", ip("203.0.113.1"), later).unwrap();
        assert!(t.attempt("alice", ip("192.0.2.10"), later).is_err());
    }

    #[test]
    fn forget_idle_keeps_what_matters() {
        let t = LoginThrottle::new(1, 60, Duration::from_secs(3600));
        let now = Instant::now();
        let _ = t.attempt("mallory", ip("192.0.2.1"), now).unwrap();
        let ok = t.attempt("alice", ip("192.0.2.10"), now).unwrap();
        t.succeeded("alice", ip("192.0.2.10"), ok, now);
        t.forget_idle(now + Duration::from_secs(120));
        let accounts = t.accounts.lock().unwrap();
        assert!(!accounts.contains_key("mallory"));
        assert!(accounts.contains_key("alice"));
    }
}
