//! A cache as the app would have written it: `rooms` group rooms sharing `messages` messages,
//! a signed-in account, written through the app's own [`Cache`] API.
//!
//! Messages are spread round-robin over the rooms, one every few minutes of the last year, with
//! bodies of 6–24 words drawn from a fixed vocabulary with a Zipf-like skew (a few words are in
//! many messages, most in few), so search meets both common and rare words. Everything is
//! seeded: the same arguments give the same cache.
//!
//! History goes in as the app stores it: all but each room's newest message as REST pages
//! ([`Cache::store_page`]), the newest ones as live events ([`Cache::apply_event`]) in time
//! order, so the room list is ordered by activity like after a day of use.

use crate::{Error, Result};
use chat_desktop::cache::Cache;
use protocol::event::Role;
use protocol::rest::{NotifyLevel, Room, RoomKind, User, Visibility};
use protocol::{EventBody, RoomEvent, RoomId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// What goes into a cache.
#[derive(Debug, Clone, Copy)]
pub struct Fill {
    pub rooms: u32,
    pub messages: u64,
    pub seed: u64,
}

/// The signed-in account the cache belongs to (the app finds its token in the keychain).
#[derive(Debug, Clone)]
pub struct Account {
    /// As the user typed it (`http://127.0.0.1:PORT`).
    pub server_url: String,
    pub user: User,
    pub token: String,
}

impl Account {
    /// A user on a server at `server_url`.
    pub fn new(server_url: &str) -> Account {
        Account {
            server_url: server_url.to_owned(),
            user: User {
                id: ME,
                username: "bench_user".to_owned(),
                created_ts: START_TS,
                admin: false,
                display_name: None,
            },
            token: "bench-token-not-valid-anywhere".to_owned(),
        }
    }

    /// The server as the app stores it, and the keychain account of the token.
    pub fn keys(&self) -> Result<(String, String)> {
        let server =
            chat_desktop::api::display_url(&chat_desktop::api::parse_server_url(&self.server_url)?);
        let account = chat_desktop::credentials::account_key(&server, &self.user.username);
        Ok((server, account))
    }
}

/// The cache's owner. Senders are other users, so nothing counts as the owner's own message.
const ME: UserId = UserId(1);
/// Other members who write.
const SENDERS: [&str; 6] = ["ada", "brian", "chiara", "dmitri", "erin", "farid"];
/// 2025-12-07 00:00 UTC: the history covers the year before.
const START_TS: i64 = 1_733_529_600_000;
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
/// Events per [`Cache::store_page`] call (one transaction).
const CHUNK: usize = 5000;

/// The name of room `i` (1-based).
pub fn room_name(i: u32) -> String {
    format!("room-{i:02}")
}

/// The settings keys the backend reads at start (`chat_desktop::backend` `key`): the app must
/// find a server, a user and an account owner to resume the session. `tests/smoke.rs` opens a
/// backend on a filled cache, so a renamed key fails there.
mod key {
    pub const SERVER_URL: &str = "server_url";
    pub const USERNAME: &str = "username";
    pub const USER: &str = "user";
    pub const ACCOUNT: &str = "account";
    pub const LAST_ROOM: &str = "last_room";
}

/// Writes the session of `account` into `cache` (not its token: see [`save_token`]).
pub async fn sign_in(cache: &Cache, account: &Account) -> Result<()> {
    let (server, _) = account.keys()?;
    let owner = format!("{server}|{}|{}", account.user.id, account.user.created_ts);
    cache.set_setting(key::SERVER_URL, &server).await?;
    cache.set_setting(key::ACCOUNT, &owner).await?;
    cache
        .set_setting(key::USERNAME, &account.user.username)
        .await?;
    cache.set_json_setting(key::USER, &account.user).await?;
    Ok(())
}

/// Puts the account's token into `store` (the real keychain for the app runs).
pub fn save_token(
    store: &dyn chat_desktop::credentials::TokenStore,
    account: &Account,
) -> Result<()> {
    let (_, key) = account.keys()?;
    Ok(store.save(&key, &account.token)?)
}

/// A deterministic vocabulary: common English words first (the head of the distribution),
/// then made-up words from syllables.
pub fn vocabulary() -> Vec<String> {
    const COMMON: &[&str] = &[
        "the", "and", "to", "a", "of", "is", "it", "that", "for", "on", "we", "you", "this",
        "with", "be", "have", "are", "not", "can", "at", "will", "just", "so", "do", "if",
        "meeting", "release", "build", "deploy", "review", "tomorrow", "today", "thanks", "please",
        "update", "issue", "test", "server", "client", "lunch", "weekend", "coffee", "design",
        "budget", "customer", "invoice", "ticket", "draft", "plan", "report",
    ];
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ren", "sto", "va", "qui", "der", "pol", "zan", "tri", "mo", "gel",
        "bra", "nu", "fex", "sil", "or", "ith", "cam",
    ];
    let mut words: Vec<String> = COMMON.iter().map(|w| (*w).to_owned()).collect();
    for a in SYLLABLES {
        for b in SYLLABLES {
            for c in SYLLABLES {
                if words.len() >= 5000 {
                    return words;
                }
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

/// A word index with a Zipf-like skew: log-uniform over `1..=len`.
pub fn skewed_index(rng: &mut StdRng, len: usize) -> usize {
    let x = (len as f64).powf(rng.random::<f64>());
    (x as usize).saturating_sub(1).min(len - 1)
}

fn body(rng: &mut StdRng, words: &[String]) -> String {
    let n = rng.random_range(6..=24);
    let mut text = String::new();
    for i in 0..n {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(&words[skewed_index(rng, words.len())]);
    }
    text
}

/// Message `seq` of room `room`, the `index`-th of `total` overall.
fn event(
    rng: &mut StdRng,
    words: &[String],
    room: u32,
    seq: u64,
    index: u64,
    total: u64,
) -> RoomEvent {
    let step = YEAR_MS / i64::try_from(total.max(1)).unwrap_or(i64::MAX);
    let sender = (index % SENDERS.len() as u64) as usize;
    RoomEvent {
        room: RoomId(u64::from(room)),
        seq,
        ts: START_TS - YEAR_MS + step * i64::try_from(index).unwrap_or(0),
        event: EventBody::Message {
            id: format!("bench-{room}-{seq}"),
            sender: UserId(10 + sender as u64),
            sender_name: SENDERS[sender].to_owned(),
            body: body(rng, words),
            edited_ts: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
        },
    }
}

/// The text of the newest message of the room that was active last (the one the app had open
/// when it was last used, and opens again at start), and that room's number; `None` without
/// messages.
pub fn newest(fill: &Fill) -> Option<Newest> {
    newest_two(fill).0
}

/// A room's number and the text of its newest message.
pub type Newest = (u32, String);

/// [`newest`], and the same for the room active just before it (the one the benchmark clicks
/// on; `None` with fewer than two rooms or messages).
pub fn newest_two(fill: &Fill) -> (Option<Newest>, Option<Newest>) {
    let (mut last, mut before) = (None, None);
    for (_, e) in fill_events(fill) {
        if last.as_ref().is_some_and(|l: &RoomEvent| l.room != e.room) {
            before = last.take();
        }
        last = Some(e);
    }
    let pick = |e: Option<RoomEvent>| {
        let e = e?;
        let EventBody::Message { body, .. } = e.event else {
            return None;
        };
        Some((u32::try_from(e.room.0).ok()?, body))
    };
    (pick(last), pick(before))
}

/// Every message of `fill` in time order, with its room's message count so far.
fn fill_events(fill: &Fill) -> impl Iterator<Item = (u64, RoomEvent)> {
    let words = vocabulary();
    let mut rng = StdRng::seed_from_u64(fill.seed);
    let rooms = fill.rooms.max(1);
    let total = fill.messages;
    let mut seqs = vec![0u64; rooms as usize];
    (0..total).map(move |i| {
        let r = (i % u64::from(rooms)) as usize;
        seqs[r] += 1;
        let e = event(&mut rng, &words, r as u32 + 1, seqs[r], i, total);
        (seqs[r], e)
    })
}

/// Messages room `r` (1-based) gets out of `fill`.
fn per_room(fill: &Fill, r: u32) -> u64 {
    let rooms = u64::from(fill.rooms.max(1));
    fill.messages / rooms + u64::from(u64::from(r - 1) < fill.messages % rooms)
}

/// Fills `cache` (empty, opened by the caller) with `fill`'s rooms and messages. Returns the
/// number of messages written.
pub async fn fill_cache(cache: &Cache, fill: &Fill) -> Result<u64> {
    if fill.rooms == 0 {
        return Err(Error::Invalid("at least one room".into()));
    }
    let rooms: Vec<Room> = (1..=fill.rooms)
        .map(|r| {
            let n = per_room(fill, r);
            Room {
                id: RoomId(u64::from(r)),
                name: room_name(r),
                kind: RoomKind::Group,
                visibility: Visibility::Private,
                member_count: 1 + SENDERS.len() as u64,
                // The newest message comes in live below.
                last_seq: n.saturating_sub(1),
                role: Some(Role::Member),
                read_seq: n,
                unread: 0,
                mentions: 0,
                peer: None,
                peer_display_name: None,
                topic: String::new(),
                notify: NotifyLevel::All,
            }
        })
        .collect();
    cache.sync_rooms(&rooms).await?;
    let counts: Vec<u64> = (1..=fill.rooms).map(|r| per_room(fill, r)).collect();
    let mut pages: Vec<Vec<RoomEvent>> = vec![Vec::new(); fill.rooms as usize];
    let mut live = Vec::new();
    let mut written = 0;
    for (seq, e) in fill_events(fill) {
        let r = (e.room.0 - 1) as usize;
        if seq == counts[r] {
            live.push(e);
            continue;
        }
        pages[r].push(e);
        if pages[r].len() >= CHUNK {
            let page = std::mem::take(&mut pages[r]);
            written += page.len() as u64;
            cache.store_page(RoomId(r as u64 + 1), &page, None).await?;
        }
    }
    for (r, page) in pages.into_iter().enumerate() {
        written += page.len() as u64;
        // The whole history down to seq 1 is cached: no fetch when scrolling back.
        cache
            .store_page(RoomId(r as u64 + 1), &page, Some(1))
            .await?;
    }
    for e in &live {
        cache.apply_event(e, ME).await?;
        written += 1;
    }
    Ok(written)
}

/// Creates a cache at `path` (which must not exist) filled with `fill`, signed in as `account`.
/// `keep_per_room` is the retention (the app's default keeps 5,000 per room).
pub async fn create(
    path: &Path,
    keep_per_room: u32,
    fill: &Fill,
    account: Option<&Account>,
) -> Result<u64> {
    if path.exists() {
        return Err(Error::Invalid(format!("{} exists", path.display())));
    }
    let cache = Cache::open(path, keep_per_room).await?;
    if let Some(account) = account {
        sign_in(&cache, account).await?;
    }
    let written = fill_cache(&cache, fill).await?;
    if let Some((room, _)) = newest(fill) {
        // The app was last used in the room active last.
        cache
            .set_json_setting(key::LAST_ROOM, &RoomId(u64::from(room)))
            .await?;
    }
    // Leave a plain file behind (no WAL to replay at the app's start).
    cache.scrub().await;
    cache.close().await;
    Ok(written)
}
