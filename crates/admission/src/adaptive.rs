//! The global in-flight limit, adapted to measured latency by AIMD with a latency target.
//!
//! Why AIMD on a latency target, and not Vegas or a gradient: those two steer by the ratio of
//! the current round trip to the *no-load* round trip, and here the no-load round trip is one
//! fdatasync, whose own jitter is as large as the queueing we want to see (p50 0.26 ms, p99
//! 0.73 ms on this machine's disk). A target on the window's mean latency is what the spike's
//! promise is about (admitted p99 ≤ 50 ms), it converges under noise, and it cannot drift down
//! to nothing because one fsync was slow. The additive step is √limit, so the limit climbs from
//! tens to tens of thousands of commands in seconds (the batch endpoint puts thousands in
//! flight at once), and backs off by a tenth per window above target.

use crate::Nanos;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveRules {
    /// Commands in flight allowed at start.
    pub initial: u64,
    pub min: u64,
    pub max: u64,
    /// The mean latency, from admission to reply, the limit steers to. 20 ms by default: with
    /// 15 ms, a group commit of the faster sequencer (up to 16,384 commands at ~1.3 µs) alone
    /// came close to the target, and the in-process spike's goodput fell to 60–86% of capacity
    /// (three runs); with 20 ms, 102% and 122%, admitted p99 30 ms (`bench/RESULTS.md`).
    pub latency_target_ms: u64,
    /// How often the limit is reconsidered.
    pub window_ms: u64,
}

impl Default for AdaptiveRules {
    fn default() -> AdaptiveRules {
        AdaptiveRules { initial: 4_096, min: 32, max: 1 << 20, latency_target_ms: 20, window_ms: 100 }
    }
}

impl AdaptiveRules {
    pub fn check(&self) -> Result<(), String> {
        if self.min == 0 || self.min > self.max || !(self.min..=self.max).contains(&self.initial) {
            return Err("the adaptive limit needs 1 <= min <= initial <= max".into());
        }
        if self.latency_target_ms == 0 || self.window_ms == 0 {
            return Err("latency_target_ms and window_ms must be positive".into());
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct AdaptiveLimit {
    rules: AdaptiveRules,
    limit: u64,
    window_start: Nanos,
    latency_sum: u128,
    samples: u64,
    /// The most commands in flight seen in this window: the limit only grows if it was used.
    peak_in_flight: u64,
}

/// What the last window decided, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Grew,
    Shrank,
    Held,
}

impl AdaptiveLimit {
    pub fn new(rules: AdaptiveRules, now: Nanos) -> AdaptiveLimit {
        AdaptiveLimit {
            limit: rules.initial,
            rules,
            window_start: now,
            latency_sum: 0,
            samples: 0,
            peak_in_flight: 0,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// New bounds and target. Rules that differ from the ones in force restart the limit at
    /// their `initial` (an operator who pinned the limit and then restores the rules gets the
    /// restored rules' limit, not the pinned one); the same rules again change nothing.
    pub fn set_rules(&mut self, rules: AdaptiveRules) {
        if rules != self.rules {
            self.limit = rules.initial;
        }
        self.rules = rules;
        self.limit = self.limit.clamp(rules.min, rules.max);
    }

    /// Notes how many commands are in flight (called on admission).
    pub fn observe_in_flight(&mut self, in_flight: u64) {
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
    }

    /// One completed submission and its latency; ends the window when it is due.
    pub fn on_sample(&mut self, latency: Nanos, now: Nanos) -> Option<Decision> {
        self.latency_sum += u128::from(latency);
        self.samples += 1;
        if now < self.window_start + self.rules.window_ms * 1_000_000 {
            return None;
        }
        let mean = (self.latency_sum / u128::from(self.samples)) as u64;
        let decision = if mean > self.rules.latency_target_ms * 1_000_000 {
            self.limit = (self.limit - self.limit / 10).max(self.rules.min);
            Decision::Shrank
        } else if self.peak_in_flight * 10 >= self.limit * 8 {
            self.limit = (self.limit + self.limit.isqrt().max(1)).min(self.rules.max);
            Decision::Grew
        } else {
            Decision::Held
        };
        self.window_start = now;
        (self.latency_sum, self.samples, self.peak_in_flight) = (0, 0, 0);
        Some(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rules() -> AdaptiveRules {
        AdaptiveRules { initial: 100, min: 10, max: 1_000, latency_target_ms: 10, window_ms: 100 }
    }

    #[test]
    fn shrinks_above_target_and_grows_only_when_used() {
        let mut limit = AdaptiveLimit::new(rules(), 0);
        // Slow replies: a tenth off per window, never below min.
        let mut now = 0;
        for _ in 0..100 {
            now += 100 * MS;
            assert_eq!(limit.on_sample(30 * MS, now), Some(Decision::Shrank));
        }
        assert_eq!(limit.limit(), 10);
        // Fast replies but the limit is not used: held.
        now += 100 * MS;
        limit.observe_in_flight(2);
        assert_eq!(limit.on_sample(MS, now), Some(Decision::Held));
        assert_eq!(limit.limit(), 10);
        // Fast and used: grows by √limit per window, up to max.
        let mut last = limit.limit();
        for _ in 0..200 {
            now += 100 * MS;
            limit.observe_in_flight(limit.limit());
            limit.on_sample(MS, now);
            assert!(limit.limit() >= last && limit.limit() <= 1_000);
            last = limit.limit();
        }
        assert_eq!(limit.limit(), 1_000);
    }

    #[test]
    fn regression_restoring_the_rules_after_a_pin_restores_the_limit() {
        let mut limit = AdaptiveLimit::new(AdaptiveRules::default(), 0);
        let pinned = AdaptiveRules { initial: 32, min: 32, max: 32, ..AdaptiveRules::default() };
        limit.set_rules(pinned);
        assert_eq!(limit.limit(), 32);
        limit.set_rules(AdaptiveRules::default());
        assert_eq!(limit.limit(), AdaptiveRules::default().initial);
        // The same rules again leave a limit that has moved where it moved.
        limit.observe_in_flight(limit.limit());
        limit.on_sample(MS, 100 * MS);
        let grown = limit.limit();
        assert!(grown > AdaptiveRules::default().initial);
        limit.set_rules(AdaptiveRules::default());
        assert_eq!(limit.limit(), grown);
    }

    #[test]
    fn samples_inside_a_window_only_accumulate() {
        let mut limit = AdaptiveLimit::new(rules(), 0);
        assert_eq!(limit.on_sample(50 * MS, 10 * MS), None);
        assert_eq!(limit.on_sample(50 * MS, 99 * MS), None);
        // The mean of the window (50, 50, 1 ms) is above target.
        assert_eq!(limit.on_sample(MS, 100 * MS), Some(Decision::Shrank));
        assert_eq!(limit.limit(), 90);
    }

    /// A closed-loop model of the engine: latency is in-flight / capacity, plus a floor. The limit
    /// must settle where the mean latency is near the target, whatever it started from.
    #[test]
    fn converges_on_a_queue_model() {
        for initial in [10u64, 500, 1_000] {
            let r = AdaptiveRules { initial, min: 10, max: 1_000, latency_target_ms: 20, window_ms: 100 };
            let mut limit = AdaptiveLimit::new(r, 0);
            let capacity_per_ms = 10; // 10,000 commands/s
            let mut now = 0;
            let mut latencies = Vec::new();
            for _ in 0..600 {
                now += 100 * MS;
                // Offered load far above capacity: in flight = the limit.
                let in_flight = limit.limit();
                limit.observe_in_flight(in_flight);
                let latency = MS + in_flight / capacity_per_ms * MS;
                latencies.push(latency);
                limit.on_sample(latency, now);
            }
            let tail = &latencies[500..];
            let mean = tail.iter().sum::<u64>() / tail.len() as u64;
            assert!((10 * MS..=25 * MS).contains(&mean), "start {initial}: mean {} ms", mean / MS);
        }
    }
}
