//! What a `bench` run measures and how often, from the environment.
//!
//! - `BENCH_QUICK=1`: a short smoke run (one run each, small N, 10 s windows).
//! - `BENCH_RUNS=n`: runs per measurement (default 3; quick 1).
//! - `BENCH_SIZES=0,100,1000`: N of the standalone scale runs.
//! - `BENCH_MIX=100`: databases in the mixed run (0 skips it).
//! - `BENCH_STEADY_SECS=60`: length of the steady-state window.
//! - `BENCH_ONLY=startup,scale,mix,update`: run only these parts.

use std::time::Duration;

use anyhow::Context as _;

/// The parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// Process start to first reconcile and to Lease acquired.
    Startup,
    /// N standalone MSSQLServers: convergence, requests, steady state, memory.
    Scale,
    /// A mix of MSSQL standalone and AG, SingleStore standalone and topology.
    Mix,
    /// UpdateVersion of an AG of 3 and of 5 and of a SingleStore of 2 aggregators + 2 leaves,
    /// with their agents' cost, switchover and failovers.
    Update,
}

impl Part {
    fn parse(s: &str) -> anyhow::Result<Part> {
        match s.trim() {
            "startup" => Ok(Part::Startup),
            "scale" => Ok(Part::Scale),
            "mix" => Ok(Part::Mix),
            "update" => Ok(Part::Update),
            other => anyhow::bail!(
                "BENCH_ONLY: unknown part {other:?} (expected startup, scale, mix or update)"
            ),
        }
    }
}

/// Everything a run does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// A smoke run.
    pub quick: bool,
    /// Runs per measurement.
    pub runs: usize,
    /// Parts to run.
    pub parts: Vec<Part>,
    /// N of the standalone scale runs (0 measures an idle operator).
    pub sizes: Vec<usize>,
    /// Databases in the mixed run.
    pub mix: usize,
    /// Steady-state window after convergence.
    pub steady: Duration,
    /// Wait after start-up before the idle (N = 0) memory sample.
    pub idle_settle: Duration,
    /// Give up on convergence when the Ready count has not grown for this long.
    pub stall: Duration,
    /// Replicas of the availability groups updated.
    pub update_sizes: Vec<i32>,
    /// Aggregators and leaves of the SingleStore cluster updated.
    pub update_singlestore: (i32, i32),
    /// kube-sim `--pod-start-delay` of the update runs.
    pub pod_start_delay: Duration,
}

impl Plan {
    /// The plan from environment variables read through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Plan> {
        let quick = var("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
        let number = |name: &str| -> anyhow::Result<Option<usize>> {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .with_context(|| format!("{name}={v:?} is not a non-negative integer"))
                })
                .transpose()
        };
        let runs = number("BENCH_RUNS")?.unwrap_or(if quick { 1 } else { 3 });
        anyhow::ensure!(runs > 0, "BENCH_RUNS must be at least 1");
        let sizes = match var("BENCH_SIZES").filter(|v| !v.trim().is_empty()) {
            Some(list) => list
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse::<usize>()
                        .with_context(|| format!("BENCH_SIZES: {n:?} is not a number"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            None if quick => vec![0, 10, 50],
            None => vec![0, 100, 1000],
        };
        let parts = match var("BENCH_ONLY").filter(|v| !v.trim().is_empty()) {
            Some(list) => {
                let mut parts = list
                    .split(',')
                    .map(Part::parse)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                parts.sort();
                parts.dedup();
                parts
            }
            None => vec![Part::Startup, Part::Scale, Part::Mix, Part::Update],
        };
        let steady = number("BENCH_STEADY_SECS")?.unwrap_or(if quick { 10 } else { 60 });
        Ok(Plan {
            quick,
            runs,
            parts,
            sizes,
            mix: number("BENCH_MIX")?.unwrap_or(if quick { 20 } else { 100 }),
            steady: Duration::from_secs(steady as u64),
            idle_settle: Duration::from_secs(if quick { 2 } else { 5 }),
            stall: Duration::from_secs(if quick { 15 } else { 30 }),
            update_sizes: if quick { vec![3] } else { vec![3, 5] },
            update_singlestore: (2, 2),
            pod_start_delay: Duration::from_secs(1),
        })
    }

    /// Whether `part` runs.
    pub fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(vars: &[(&str, &str)]) -> anyhow::Result<Plan> {
        Plan::from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_are_the_full_run() {
        let p = plan(&[]).unwrap();
        assert!(!p.quick);
        assert_eq!(p.runs, 3);
        assert_eq!(p.sizes, vec![0, 100, 1000]);
        assert_eq!(p.mix, 100);
        assert_eq!(p.steady, Duration::from_secs(60));
        assert_eq!(p.update_sizes, vec![3, 5]);
        assert_eq!(p.update_singlestore, (2, 2));
        assert!(p.has(Part::Startup) && p.has(Part::Update));
    }

    #[test]
    fn quick_is_small_and_overridable() {
        let p = plan(&[("BENCH_QUICK", "1")]).unwrap();
        assert!(p.quick);
        assert_eq!((p.runs, p.sizes.clone(), p.mix), (1, vec![0, 10, 50], 20));
        assert_eq!(p.steady, Duration::from_secs(10));
        let p = plan(&[
            ("BENCH_QUICK", "1"),
            ("BENCH_RUNS", "2"),
            ("BENCH_SIZES", " 5, 7"),
            ("BENCH_STEADY_SECS", "3"),
        ])
        .unwrap();
        assert_eq!((p.runs, p.sizes), (2, vec![5, 7]));
        assert_eq!(p.steady, Duration::from_secs(3));
        assert!(!plan(&[("BENCH_QUICK", "0")]).unwrap().quick);
    }

    #[test]
    fn only_selects_parts_in_order() {
        let p = plan(&[("BENCH_ONLY", "update,startup,update")]).unwrap();
        assert_eq!(p.parts, vec![Part::Startup, Part::Update]);
        assert!(!p.has(Part::Scale));
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (("BENCH_RUNS", "x"), "BENCH_RUNS=\"x\""),
            (("BENCH_RUNS", "0"), "at least 1"),
            (("BENCH_SIZES", "1,a"), "BENCH_SIZES: \"a\""),
            (("BENCH_ONLY", "memory"), "unknown part \"memory\""),
            (("BENCH_STEADY_SECS", "-1"), "BENCH_STEADY_SECS"),
        ];
        for ((k, v), want) in cases {
            let err = plan(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(want), "{k}={v}: {err}");
        }
    }
}
