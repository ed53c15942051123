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
    logins: DefaultKeyedRateLimiter<IpAddr>,
    frames: Quota,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
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
        self.messages.retain_recent();
        self.logins.retain_recent();
        self.messages.shrink_to_fit();
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

/// How often [`RateLimits::forget_idle`] runs.
pub const FORGET_EVERY: Duration = Duration::from_secs(60);
