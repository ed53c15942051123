//! Token-bucket rate limits (governor): per user for messages, per client IP for logins, and a
//! bucket per connection for all frames. Limits are per node.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::metrics::LimitKind;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use protocol::UserId;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct RateLimits {
    messages: DefaultKeyedRateLimiter<UserId>,
    rooms: DefaultKeyedRateLimiter<UserId>,
    dms: DefaultKeyedRateLimiter<UserId>,
    invites: DefaultKeyedRateLimiter<UserId>,
    room_mentions: DefaultKeyedRateLimiter<UserId>,
    logins: DefaultKeyedRateLimiter<IpAddr>,
    frames: Quota,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// `n` per hour, all of them at once if need be.
fn hourly(n: u32) -> DefaultKeyedRateLimiter<UserId> {
    RateLimiter::keyed(Quota::per_hour(nz(n)).allow_burst(nz(n)))
}

fn verdict(
    result: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    kind: LimitKind,
) -> ApiResult<()> {
    result.map_err(|not_until| {
        crate::metrics::get().rate_limited(kind);
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::rate_limited(wait.as_millis().max(1) as u64)
    })
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        Self {
            messages: RateLimiter::keyed(
                Quota::per_second(nz(config.msgs_per_sec)).allow_burst(nz(config.msgs_burst)),
            ),
            rooms: hourly(config.rooms_per_hour),
            dms: hourly(config.dms_per_hour),
            invites: hourly(config.invites_per_hour),
            room_mentions: hourly(ROOM_MENTIONS_PER_HOUR),
            logins: RateLimiter::keyed(
                Quota::per_minute(nz(config.logins_per_min))
                    .allow_burst(nz(config.logins_per_min.div_ceil(3))),
            ),
            frames: Quota::per_second(nz(config.frames_per_sec))
                .allow_burst(nz(config.frames_burst)),
        }
    }

    /// One message, edit or delete by `user`.
    pub fn message(&self, user: UserId) -> ApiResult<()> {
        verdict(self.messages.check_key(&user), LimitKind::Message)
    }

    /// One room created by `user`.
    pub fn room(&self, user: UserId) -> ApiResult<()> {
        // Counted with the per-user message limits in the metrics.
        verdict(self.rooms.check_key(&user), LimitKind::Message)
    }

    /// One direct room opened by `user`.
    pub fn dm(&self, user: UserId) -> ApiResult<()> {
        // Counted with the per-user message limits in the metrics.
        verdict(self.dms.check_key(&user), LimitKind::Message)
    }

    /// One invite sent by `user`.
    pub fn invite(&self, user: UserId) -> ApiResult<()> {
        // Counted with the per-user message limits in the metrics.
        verdict(self.invites.check_key(&user), LimitKind::Message)
    }

    /// One `@room` mention by `user`.
    pub fn room_mention(&self, user: UserId) -> ApiResult<()> {
        // Counted with the per-user message limits in the metrics.
        verdict(self.room_mentions.check_key(&user), LimitKind::Message)
    }

    /// One login or registration attempt from `ip`.
    pub fn login(&self, ip: IpAddr) -> ApiResult<()> {
        verdict(self.logins.check_key(&ip), LimitKind::Login)
    }

    /// A new bucket for one connection's frames.
    pub fn frame_bucket(&self) -> FrameBucket {
        FrameBucket(RateLimiter::direct(self.frames))
    }

    /// Forgets idle keys so the keyed limiters do not grow without bound.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.messages,
            &self.rooms,
            &self.dms,
            &self.invites,
            &self.room_mentions,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.logins.retain_recent();
        self.logins.shrink_to_fit();
    }
}

/// One connection's frame bucket.
pub struct FrameBucket(DefaultDirectRateLimiter);

impl FrameBucket {
    pub fn check(&self) -> ApiResult<()> {
        verdict(self.0.check(), LimitKind::Frame)
    }
}

/// `@room` mentions one user may send per hour (all of them at once if need be), whatever
/// the room: each notifies every member.
pub const ROOM_MENTIONS_PER_HOUR: u32 = 10;

/// How often [`RateLimits::forget_idle`] runs.
pub const FORGET_EVERY: Duration = Duration::from_secs(60);
