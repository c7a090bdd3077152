//! `failureThreshold` bookkeeping: a pure state machine fed one probe result per period.

/// The effective readiness after one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the database counts as ready after this observation.
    pub ready: bool,
    /// Consecutive failed probes so far (0 after a success).
    pub consecutive_failures: u32,
    /// The threshold in force.
    pub failure_threshold: u32,
}

impl Verdict {
    /// True when the last probe failed but the failure is still tolerated (below the threshold),
    /// so the database keeps its ready state.
    pub fn failure_tolerated(&self) -> bool {
        self.ready && self.consecutive_failures > 0
    }
}

/// Applies `spec.healthChecker.failureThreshold`: the database flips to not-ready only after
/// `failure_threshold` consecutive failed probes; one success makes it ready again and resets the
/// count. Before the first success it is not ready (nothing has been verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureTracker {
    failure_threshold: u32,
    consecutive_failures: u32,
    ready: bool,
}

impl FailureTracker {
    /// A tracker with the given threshold; 0 is treated as 1 (the CRD minimum and default).
    pub fn new(failure_threshold: u32) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            consecutive_failures: 0,
            ready: false,
        }
    }

    /// Changes the threshold (e.g. after a spec edit) without losing the failure count. The
    /// current state is re-evaluated against the new threshold.
    pub fn set_failure_threshold(&mut self, failure_threshold: u32) {
        self.failure_threshold = failure_threshold.max(1);
        if self.consecutive_failures >= self.failure_threshold {
            self.ready = false;
        }
    }

    /// Records one probe result and returns the effective readiness.
    pub fn observe(&mut self, probe_succeeded: bool) -> Verdict {
        if probe_succeeded {
            self.consecutive_failures = 0;
            self.ready = true;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if self.consecutive_failures >= self.failure_threshold {
                self.ready = false;
            }
        }
        self.verdict()
    }

    /// The current readiness without recording anything.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            ready: self.ready,
            consecutive_failures: self.consecutive_failures,
            failure_threshold: self.failure_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(threshold: u32, probes: &str) -> Vec<bool> {
        let mut tracker = FailureTracker::new(threshold);
        probes
            .chars()
            .map(|c| tracker.observe(c == 'o').ready)
            .collect()
    }

    #[test]
    fn threshold_sequences() {
        // 'o' = probe ok, 'x' = probe failed; expected readiness after each probe.
        let cases: &[(u32, &str, &[bool])] = &[
            (1, "oxo", &[true, false, true]),
            (3, "oxxxo", &[true, true, true, false, true]),
            (3, "oxxoxx", &[true, true, true, true, true, true]),
            (2, "xxo", &[false, false, true]),
            // A threshold of 0 behaves like 1.
            (0, "ox", &[true, false]),
        ];
        for (threshold, probes, want) in cases {
            assert_eq!(
                run(*threshold, probes),
                *want,
                "threshold {threshold} {probes}"
            );
        }
    }

    #[test]
    fn not_ready_before_first_success() {
        let tracker = FailureTracker::new(3);
        assert!(!tracker.verdict().ready);
        let mut tracker = FailureTracker::new(3);
        let v = tracker.observe(false);
        assert!(!v.ready);
        assert!(!v.failure_tolerated());
    }

    #[test]
    fn counts_and_tolerance_are_reported() {
        let mut tracker = FailureTracker::new(3);
        tracker.observe(true);
        let v = tracker.observe(false);
        assert_eq!(
            v,
            Verdict {
                ready: true,
                consecutive_failures: 1,
                failure_threshold: 3
            }
        );
        assert!(v.failure_tolerated());
        tracker.observe(false);
        let v = tracker.observe(false);
        assert!(!v.ready);
        assert_eq!(v.consecutive_failures, 3);
        assert!(!v.failure_tolerated());
        assert_eq!(tracker.observe(true).consecutive_failures, 0);
    }

    #[test]
    fn lowering_the_threshold_applies_to_the_current_count() {
        let mut tracker = FailureTracker::new(5);
        tracker.observe(true);
        tracker.observe(false);
        tracker.observe(false);
        assert!(tracker.verdict().ready);
        tracker.set_failure_threshold(2);
        assert!(!tracker.verdict().ready);
        assert_eq!(tracker.verdict().failure_threshold, 2);
    }
}
