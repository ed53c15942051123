//! Partitions: how rooms and users are spread over Redis Cluster slots (see `docs/CLUSTER.md`).
//!
//! A data set has a fixed number `P` of partitions. Room `r` lives in partition `r % P`, user
//! `u` in partition `u % P`. Each partition has a hash tag, chosen once and for all so that the
//! `P` tags land in `P` distinct slots spread evenly over the 16384 slots of a cluster: tag `p`
//! is the first string `p.n` (`n` = 0, 1, …) whose slot lies in the `p`-th of `P` equal slot
//! ranges. (Plain `{0}`, `{1}`, … bunch up: CRC16 of short decimal strings clusters.) Any even
//! split of the slots over masters then gives each master about `P / masters` partitions.
//!
//! Every key a partition's scripts touch, and the partition's bus channel, carry its tag, so a
//! script that declares them runs on one node in a cluster and its `SPUBLISH` is local. On a
//! standalone Redis the tags are plain characters of the names: one code path serves both.

/// Redis Cluster's slot count.
pub const SLOTS: u16 = 16384;

/// Partitions of a new data set. More than masters will ever be (each master gets whole
/// partitions), few enough that a node subscribes to each channel without noticing.
pub const DEFAULT_PARTITIONS: u16 = 64;

/// CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The cluster slot of `key`, hash tags included (what `CLUSTER KEYSLOT` answers): only the part
/// between the first `{` and the next `}` counts, if that part is not empty.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

/// The partitions of one data set: their count and precomputed tags.
#[derive(Debug, Clone)]
pub struct Partitions {
    /// `tags[p]` is partition `p`'s hash tag without braces, e.g. `3.41`.
    tags: Vec<String>,
}

impl Partitions {
    /// The `count` partitions (1 ..= [`SLOTS`]; clamped into that range).
    pub fn new(count: u16) -> Self {
        let count = count.clamp(1, SLOTS);
        let tags = (0..count).map(|p| tag_for(p, count)).collect();
        Self { tags }
    }

    pub fn count(&self) -> u16 {
        self.tags.len() as u16
    }

    /// The partition of a room.
    pub fn of_room(&self, room: u64) -> u16 {
        (room % u64::from(self.count())) as u16
    }

    /// The partition of a user.
    pub fn of_user(&self, user: u64) -> u16 {
        (user % u64::from(self.count())) as u16
    }

    /// Partition `p`'s hash tag without braces.
    pub fn tag(&self, p: u16) -> &str {
        &self.tags[usize::from(p) % self.tags.len()]
    }

    /// Partition `p`'s bus channel, `bus{<tag>}`: every node `SSUBSCRIBE`s to each.
    pub fn channel(&self, p: u16) -> String {
        format!("bus{{{}}}", self.tag(p))
    }

    /// Every partition's bus channel, by partition.
    pub fn channels(&self) -> Vec<String> {
        (0..self.count()).map(|p| self.channel(p)).collect()
    }

    /// The bus channel of a room's events (and typing).
    pub fn room_channel(&self, room: u64) -> String {
        self.channel(self.of_room(room))
    }

    /// The bus channel of a user's messages (read markers, presence, revoked sessions).
    pub fn user_channel(&self, user: u64) -> String {
        self.channel(self.of_user(user))
    }

    /// The same mapping in Lua, for the scripts that publish: `room_channel(id)` and
    /// `user_channel(id)` (ids as numbers or decimal strings).
    pub fn lua(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|t| format!("'{t}'")).collect();
        format!(
            r#"
local BUS_TAGS = {{{}}}
local function room_channel(room)
  return 'bus{{' .. BUS_TAGS[tonumber(room) % #BUS_TAGS + 1] .. '}}'
end
local function user_channel(user)
  return 'bus{{' .. BUS_TAGS[tonumber(user) % #BUS_TAGS + 1] .. '}}'
end
"#,
            tags.join(",")
        )
    }
}

impl Default for Partitions {
    fn default() -> Self {
        Self::new(DEFAULT_PARTITIONS)
    }
}

/// Partition `p`'s tag among `count`: the first `p.n` whose slot falls in the `p`-th of
/// `count` equal slot ranges. Each range holds at least one slot and CRC16 spreads the
/// candidates evenly, so the search ends after about `count` tries.
fn tag_for(p: u16, count: u16) -> String {
    let (lo, hi) = slot_range(p, count);
    (0u32..)
        .map(|n| format!("{p}.{n}"))
        .find(|tag| (lo..hi).contains(&key_slot(tag.as_bytes())))
        .unwrap_or_default()
}

/// Slots `[lo, hi)` of the `p`-th of `count` equal ranges.
fn slot_range(p: u16, count: u16) -> (u16, u16) {
    let at = |i: u32| (i * u32::from(SLOTS) / u32::from(count)) as u16;
    (at(u32::from(p)), at(u32::from(p) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.0 (and the Redis Cluster spec's test
        // vector: CRC16 of "123456789" is 0x31C3).
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"user:1000"), 1649);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn tags_are_stable() {
        // Tags are part of the data set's key names: changing how they are chosen needs a
        // migration. These pin the first few of the default layout.
        let parts = Partitions::default();
        let first: Vec<&str> = (0..4).map(|p| parts.tag(p)).collect();
        assert_eq!(first, ["0.178", "1.2", "2.303", "3.63"]);
        assert_eq!(parts.channel(2), "bus{2.303}");
    }

    /// The slot ranges `redis-cli --cluster create` gives `masters` masters (its own
    /// arithmetic: a float cursor, rounded).
    fn master_ranges(masters: u32) -> Vec<(u16, u16)> {
        let per = f64::from(SLOTS) / f64::from(masters);
        let mut first = 0i64;
        (0..masters)
            .map(|m| {
                let mut last = (f64::from(m) * per + per - 1.0).round() as i64;
                if m == masters - 1 {
                    last = i64::from(SLOTS) - 1;
                }
                let range = (first as u16, (last + 1) as u16);
                first = last + 1;
                range
            })
            .collect()
    }

    #[test]
    fn tags_spread_evenly() {
        for count in [DEFAULT_PARTITIONS, 16, 100, 256, 1024] {
            let parts = Partitions::new(count);
            let slots: Vec<u16> = (0..count)
                .map(|p| key_slot(parts.channel(p).as_bytes()))
                .collect();
            let mut distinct = slots.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), usize::from(count), "{count}: slots collide");
            for (p, slot) in slots.iter().enumerate() {
                let (lo, hi) = slot_range(p as u16, count);
                assert!((lo..hi).contains(slot), "{count}: partition {p} at {slot}");
            }
            for masters in [3, 5] {
                let per: Vec<usize> = master_ranges(masters)
                    .iter()
                    .map(|(lo, hi)| slots.iter().filter(|s| (lo..hi).contains(s)).count())
                    .collect();
                // A partition whose slot range straddles two masters' may land on either.
                let ideal = f64::from(count) / f64::from(masters);
                assert!(
                    per.iter().all(|&n| (n as f64 - ideal).abs() < 2.0),
                    "{count} partitions over {masters} masters: {per:?}"
                );
            }
        }
    }

    #[test]
    fn rooms_and_users_map_to_their_partition() {
        let parts = Partitions::new(8);
        assert_eq!(parts.of_room(17), 1);
        assert_eq!(parts.room_channel(17), parts.channel(1));
        assert_eq!(parts.user_channel(8), parts.channel(0));
        assert_eq!(Partitions::new(0).count(), 1);
    }
}
