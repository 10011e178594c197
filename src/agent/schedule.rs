//! When the next attempt happens.
//!
//! - All well: one heartbeat per interval, plus a little jitter.
//! - The endpoint could not be reached: an attempt every probe interval. Such attempts never reach
//!   the endpoint, so they cost it nothing, and they catch the end of a network outage within one
//!   probe interval.
//! - The endpoint answered with an error (5xx, 429, 4xx, 3xx): back off. The first retry comes after
//!   one probe interval, each next one after twice as long, up to the heartbeat interval; a
//!   `Retry-After` is honoured when it asks for longer. Meanwhile the internet targets are still
//!   probed every probe interval, so if the network itself goes down the agent records it as it
//!   happens, and when the probes see it come back the backoff ends (a `Retry-After` still holds):
//!   the end of a real network outage is caught within one probe interval. Probe targets that never
//!   answer (blocked by a firewall) show no such change, so they cannot defeat the backoff.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use tokio::time::Instant;

/// The scheduler's state: how many answered failures in a row, and until when the endpoint must
/// be left alone.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    probe_interval: Duration,
    answered_failures: u32,
    /// Our own backoff after answered failures.
    backoff_until: Option<Instant>,
    /// What the endpoint asked for with `Retry-After`: always honoured.
    asked_until: Option<Instant>,
    /// The probes saw the network down since the last answered failure.
    network_was_down: bool,
}

impl Schedule {
    pub fn new(interval: Duration, probe_interval: Duration) -> Schedule {
        Schedule {
            interval,
            probe_interval,
            answered_failures: 0,
            backoff_until: None,
            asked_until: None,
            network_was_down: false,
        }
    }

    /// A heartbeat got through: back to the normal rhythm. Returns the wait before the next one.
    pub fn delivered(&mut self) -> Duration {
        self.answered_failures = 0;
        self.backoff_until = None;
        self.asked_until = None;
        self.network_was_down = false;
        jittered(self.interval)
    }

    /// An attempt failed at `now`. `answered`: the endpoint answered (with an error status);
    /// `retry_after`: what it asked for. Returns the wait before the next tick (an attempt, or a
    /// probe of the internet targets while the endpoint is left alone).
    pub fn failed(
        &mut self,
        now: Instant,
        answered: bool,
        retry_after: Option<Duration>,
    ) -> Duration {
        self.network_was_down = false;
        if !answered {
            self.backoff_until = None;
            self.asked_until = None;
            return self.probe_interval;
        }
        self.answered_failures = self.answered_failures.saturating_add(1);
        let doublings = self.answered_failures.saturating_sub(1).min(20);
        let backoff = self
            .probe_interval
            .saturating_mul(1 << doublings)
            .min(self.interval.max(self.probe_interval));
        self.backoff_until = Some(now + backoff);
        self.asked_until = retry_after.map(|wait| now + wait);
        self.probe_interval
            .min(backoff.max(retry_after.unwrap_or(Duration::ZERO)))
    }

    fn not_before(&self) -> Option<Instant> {
        self.backoff_until.max(self.asked_until)
    }

    /// Whether the endpoint may be contacted at `now`.
    pub fn endpoint_allowed(&self, now: Instant) -> bool {
        self.not_before().is_none_or(|at| now >= at)
    }

    /// The probes saw the network down.
    pub fn network_down(&mut self) {
        self.network_was_down = true;
    }

    /// The probes reach the internet: if they had seen it down, a network outage just ended, so
    /// our own backoff ends too (the endpoint's `Retry-After` still holds).
    pub fn network_up(&mut self) {
        if std::mem::replace(&mut self.network_was_down, false) {
            self.backoff_until = None;
        }
    }

    /// The wait before the next tick while the endpoint is left alone.
    pub fn until_next_tick(&self, now: Instant) -> Duration {
        match self.not_before() {
            Some(at) if at > now => self.probe_interval.min(at - now),
            _ => Duration::ZERO,
        }
    }
}

/// The wall clock running this much ahead of the monotonic clock between two ticks means the
/// machine was asleep (the monotonic clock stops in suspend on Linux and macOS: docs/platform.md §9).
pub const SLEEP_SLACK: chrono::Duration = chrono::Duration::seconds(30);

/// Whether the machine slept between two (wall clock, monotonic clock) readings.
pub fn slept(
    before: (chrono::DateTime<chrono::Utc>, Instant),
    now: (chrono::DateTime<chrono::Utc>, Instant),
) -> bool {
    let awake =
        chrono::Duration::from_std(now.1.saturating_duration_since(before.1)).unwrap_or_default();
    now.0 - (before.0 + awake) > SLEEP_SLACK
}

/// The interval plus up to a tenth of it (at most 3 s), so that devices started together do not
/// all call at the same second.
fn jittered(interval: Duration) -> Duration {
    let spread = (interval / 10).min(Duration::from_secs(3));
    if spread.is_zero() {
        return interval;
    }
    let random = RandomState::new().hash_one(std::time::Instant::now());
    interval + Duration::from_nanos(random % spread.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// A wall clock ahead of the monotonic one by more than 30 s means a sleep; drift does not.
    #[test]
    fn sleep_is_noticed() {
        let (wall, mono) = (chrono::Utc::now(), Instant::now());
        let later =
            |wall_s: i64, mono_s: u64| (wall + chrono::Duration::seconds(wall_s), mono + S(mono_s));
        assert!(
            !slept((wall, mono), later(60, 60)),
            "awake the whole minute"
        );
        assert!(!slept((wall, mono), later(85, 60)), "within the slack");
        assert!(slept((wall, mono), later(7260, 60)), "two hours asleep");
        assert!(
            !slept((wall, mono), later(-5, 60)),
            "the clock stepped back"
        );
    }

    /// 5xx answers back off 5, 10, 20, 40, 60, 60 s (probe interval 5, interval 60); a
    /// Retry-After longer than that wins; unreachable attempts stay at the probe interval.
    #[tokio::test(start_paused = true)]
    async fn backoff_table() {
        let mut schedule = Schedule::new(S(60), S(5));
        let mut endpoint_waits = Vec::new();
        for _ in 0..6 {
            let now = Instant::now();
            let tick = schedule.failed(now, true, None);
            assert_eq!(
                tick,
                S(5),
                "the internet targets are still probed every 5 s"
            );
            let mut waited = Duration::ZERO;
            while !schedule.endpoint_allowed(Instant::now()) {
                let step = schedule.until_next_tick(Instant::now());
                tokio::time::sleep(step).await;
                waited += step;
            }
            endpoint_waits.push(waited.as_secs());
        }
        assert_eq!(endpoint_waits, [5, 10, 20, 40, 60, 60]);

        schedule.failed(Instant::now(), true, Some(S(120)));
        assert!(!schedule.endpoint_allowed(Instant::now() + S(119)));
        assert!(schedule.endpoint_allowed(Instant::now() + S(120)));
        schedule.network_down();
        schedule.network_up();
        assert!(
            !schedule.endpoint_allowed(Instant::now() + S(61)),
            "Retry-After holds through a network outage"
        );

        // Our own backoff ends when the probes see the network come back, not before, and
        // probes that never saw it down (a firewall blocking them) change nothing.
        schedule.failed(Instant::now(), true, None);
        schedule.network_up();
        assert!(!schedule.endpoint_allowed(Instant::now()));
        schedule.network_down();
        assert!(!schedule.endpoint_allowed(Instant::now()));
        schedule.network_up();
        assert!(schedule.endpoint_allowed(Instant::now()));

        assert_eq!(schedule.failed(Instant::now(), false, None), S(5));
        let next = schedule.delivered();
        assert!(next >= S(60) && next < S(63), "{next:?}");
        assert_eq!(schedule.failed(Instant::now(), true, None), S(5));
        assert!(
            schedule.endpoint_allowed(Instant::now() + S(5)),
            "count reset"
        );
    }
}
