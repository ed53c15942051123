//! [`Alarm`]: a tokio `Sleep` that a socket's serve loop may poll on every wake-up for the cost
//! of one atomic load.
//!
//! The serve loop waits on the hub's signal, the socket and one timer (keepalive, session
//! refresh, the session's end), and polls all three each time its task wakes, which is once
//! per delivery. Polling a `Sleep` that has not fired costs ~100 instructions (the runtime's
//! budget, the timer entry's state, registering the waker again): bench/analysis.md counted it
//! at about 1.5 % of a delivery. An `Alarm` polls its `Sleep` with a waker of its own, which
//! notes that the timer fired and then wakes the task; until that happened (or the deadline
//! moved), polling the alarm reads that note and compares the task's waker with the one it
//! last saw, and returns `Pending` without touching the timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use tokio::time::{Instant, Sleep};

/// A timer for one task; see the module doc.
pub(super) struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// What the timer wakes: it notes the wake-up and passes it on to the task.
    relay: Arc<Relay>,
    /// `relay` as a waker, made once (the timer sees the same waker on every poll).
    relay_waker: Waker,
    /// The task waker last handed to `relay`, to notice a task whose waker changed.
    seen: Option<Waker>,
    /// The `Sleep` has to be polled on the next poll: it was just made or reset, and has not
    /// registered `relay_waker` with the timer since.
    armed: bool,
}

/// The waker the `Sleep` is polled with.
struct Relay {
    /// The timer woke us since the `Sleep` was last polled.
    fired: AtomicBool,
    /// The task to wake. Locked when the timer fires (rarely) and when the task's waker
    /// changes (in practice never: a spawned task keeps its waker).
    task: Mutex<Option<Waker>>,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted before the task is woken: the poll that follows sees it.
        self.fired.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Alarm {
    pub fn new(deadline: Instant) -> Self {
        let relay = Arc::new(Relay {
            fired: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        Self {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            relay_waker: Waker::from(relay.clone()),
            relay,
            seen: None,
            armed: true,
        }
    }

    /// Moves the deadline (after the alarm went off, or earlier or later).
    pub fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.armed = true;
    }

    /// Ready once the deadline has passed, like `Sleep`; it stays ready until [`Alarm::reset`].
    pub fn poll_alarm(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.seen.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            *self.relay.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
            self.seen = Some(waker);
        }
        // The task waker is in place before the note is read: a timer that fires after this
        // read wakes that waker, so the task polls again and finds the note.
        if !self.armed && !self.relay.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.armed = false;
        let mut relayed = Context::from_waker(&self.relay_waker);
        match self.sleep.as_mut().poll(&mut relayed) {
            Poll::Ready(()) => {
                // Ready until reset, as a `Sleep` is.
                self.armed = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Future for Alarm {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_alarm(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A task waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(alarm: &mut Alarm, waker: &Waker) -> Poll<()> {
        alarm.poll_alarm(&mut Context::from_waker(waker))
    }

    /// The alarm goes off at its deadline, wakes the task, and goes off again after a reset,
    /// at the new deadline and not before.
    #[tokio::test(start_paused = true)]
    async fn goes_off_at_its_deadline_and_again_after_a_reset() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let start = Instant::now();
        let mut alarm = Alarm::new(start + Duration::from_secs(30));
        for _ in 0..3 {
            assert!(poll(&mut alarm, &waker).is_pending());
        }
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(poll(&mut alarm, &waker).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert!(poll(&mut alarm, &waker).is_ready());
        assert!(poll(&mut alarm, &waker).is_ready(), "stays ready");

        alarm.reset(Instant::now() + Duration::from_secs(10));
        assert!(poll(&mut alarm, &waker).is_pending());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(poll(&mut alarm, &waker).is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(poll(&mut alarm, &waker).is_ready());
    }

    /// Reset to an earlier deadline before it went off: it goes off at the earlier one.
    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wins() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut alarm = Alarm::new(Instant::now() + Duration::from_secs(60));
        assert!(poll(&mut alarm, &waker).is_pending());
        alarm.reset(Instant::now() + Duration::from_secs(5));
        assert!(poll(&mut alarm, &waker).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut alarm, &waker).is_ready());
    }

    /// A task whose waker changed between polls is the one woken.
    #[tokio::test(start_paused = true)]
    async fn wakes_the_latest_task_waker() {
        let (old, new) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let mut alarm = Alarm::new(Instant::now() + Duration::from_secs(5));
        assert!(poll(&mut alarm, &Waker::from(old.clone())).is_pending());
        assert!(poll(&mut alarm, &Waker::from(new.clone())).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(old.0.load(Ordering::SeqCst), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut alarm, &Waker::from(new)).is_ready());
    }

    /// In a task, as the serve loop uses it: awaited beside other work, it ends on time.
    #[tokio::test(start_paused = true)]
    async fn ends_a_select_on_time() {
        let start = Instant::now();
        let mut alarm = Alarm::new(start + Duration::from_secs(30));
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut woke = 0;
        loop {
            tokio::select! {
                biased;
                _ = ticks.tick() => woke += 1,
                _ = &mut alarm => break,
            }
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        assert!(woke >= 30);
    }
}
