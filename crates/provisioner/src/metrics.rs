//! The provisioner's Prometheus metrics, registered in the operator's own registry (whose prefix
//! `kubedb_provisioner_` is prepended to every name). Labels are bounded: kind, result, category,
//! phase, resource and verb — never object names. Documented in `docs/metrics.md`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::database::DbKind;

/// Every phase a database can be counted in (`none` before the first status write).
pub const PHASES: [&str; 8] = [
    "none",
    "Provisioning",
    "DataRestoring",
    "Ready",
    "Critical",
    "NotReady",
    "Halted",
    "Unknown",
];

/// The provisioner's metrics.
pub struct Metrics {
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    databases: IntGaugeVec,
    writes: IntCounterVec,
    health_checks: IntCounterVec,
    /// Reconciles waiting for one of the `--max-concurrent-reconciles` slots.
    pub waiting: IntGauge,
    phases: Mutex<HashMap<(DbKind, String), &'static str>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reconciles = IntCounterVec::new(
            Opts::new(
                "reconciles_total",
                "Reconciles of database objects by kind and result (success or error)",
            ),
            &["kind", "result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "reconcile_errors_total",
                "Failed reconciles by kind and error category",
            ),
            &["kind", "category"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "Duration of one reconcile of a database object",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["kind"],
        )?;
        let databases = IntGaugeVec::new(
            Opts::new(
                "databases",
                "Databases managed by this provisioner by kind and status.phase",
            ),
            &["kind", "phase"],
        )?;
        let writes = IntCounterVec::new(
            Opts::new(
                "api_writes_total",
                "Write requests the provisioner sent, by resource and verb (apply, create, patch, delete)",
            ),
            &["resource", "verb"],
        )?;
        let health_checks = IntCounterVec::new(
            Opts::new(
                "health_checks_total",
                "Database health checks by kind, mode and result (healthy or unhealthy)",
            ),
            &["kind", "mode", "result"],
        )?;
        let waiting = IntGauge::new(
            "reconciles_waiting",
            "Reconciles waiting for a slot (at most --max-concurrent-reconciles run at once)",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(databases.clone()))?;
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(health_checks.clone()))?;
        for kind in [DbKind::MSSQLServer, DbKind::Singlestore] {
            for phase in PHASES {
                databases
                    .with_label_values(&[kind.metric_label(), phase])
                    .set(0);
            }
            for result in ["success", "error"] {
                reconciles.with_label_values(&[kind.metric_label(), result]);
            }
        }
        Ok(Self {
            reconciles,
            errors,
            duration,
            databases,
            writes,
            health_checks,
            waiting,
            phases: Mutex::new(HashMap::new()),
        })
    }

    /// Records the outcome of one reconcile.
    pub fn reconciled(&self, kind: DbKind, took: Duration, error_category: Option<&str>) {
        let result = if error_category.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .with_label_values(&[kind.metric_label(), result])
            .inc();
        if let Some(category) = error_category {
            self.errors
                .with_label_values(&[kind.metric_label(), category])
                .inc();
        }
        self.duration
            .with_label_values(&[kind.metric_label()])
            .observe(took.as_secs_f64());
    }

    /// Counts one write request.
    pub fn write(&self, resource: &str, verb: &str) {
        self.writes.with_label_values(&[resource, verb]).inc();
    }

    /// Counts one health check.
    pub fn health_check(&self, kind: DbKind, mode: &str, healthy: bool) {
        let result = if healthy { "healthy" } else { "unhealthy" };
        self.health_checks
            .with_label_values(&[kind.metric_label(), mode, result])
            .inc();
    }

    /// Records the current phase of one database (`None` before its first status).
    pub fn set_phase(&self, kind: DbKind, key: String, phase: Option<&'static str>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        phases.insert((kind, key), phase.unwrap_or("none"));
        self.publish_phases(&phases);
    }

    /// Forgets a database that is gone.
    pub fn forget(&self, kind: DbKind, key: &str) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        phases.remove(&(kind, key.to_owned()));
        self.publish_phases(&phases);
    }

    fn publish_phases(&self, phases: &HashMap<(DbKind, String), &'static str>) {
        let counts = count_phases(phases.iter().map(|((kind, _), phase)| (*kind, *phase)));
        for kind in [DbKind::MSSQLServer, DbKind::Singlestore] {
            for phase in PHASES {
                let n = counts.get(&(kind, phase)).copied().unwrap_or(0);
                self.databases
                    .with_label_values(&[kind.metric_label(), phase])
                    .set(n);
            }
        }
    }
}

/// Counts databases per (kind, phase).
pub fn count_phases(
    entries: impl Iterator<Item = (DbKind, &'static str)>,
) -> BTreeMap<(DbKind, &'static str), i64> {
    let mut counts = BTreeMap::new();
    for entry in entries {
        *counts.entry(entry).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_gauge_counts_databases() {
        let registry = Registry::new_custom(Some("kubedb_provisioner".into()), None).unwrap();
        let metrics = Metrics::register(&registry).unwrap();
        metrics.set_phase(DbKind::MSSQLServer, "a/x".into(), Some("Ready"));
        metrics.set_phase(DbKind::MSSQLServer, "a/y".into(), Some("Ready"));
        metrics.set_phase(DbKind::Singlestore, "a/z".into(), None);
        metrics.set_phase(DbKind::MSSQLServer, "a/y".into(), Some("Critical"));
        let ready = metrics
            .databases
            .with_label_values(&["mssqlserver", "Ready"]);
        assert_eq!(ready.get(), 1);
        let critical = metrics
            .databases
            .with_label_values(&["mssqlserver", "Critical"]);
        assert_eq!(critical.get(), 1);
        let none = metrics
            .databases
            .with_label_values(&["singlestore", "none"]);
        assert_eq!(none.get(), 1);
        metrics.forget(DbKind::MSSQLServer, "a/x");
        assert_eq!(ready.get(), 0);
        // A second registration in the same registry is an error, not a panic.
        assert!(Metrics::register(&registry).is_err());
    }

    #[test]
    fn reconcile_outcomes_are_counted() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        metrics.reconciled(DbKind::Singlestore, Duration::from_millis(5), None);
        metrics.reconciled(
            DbKind::Singlestore,
            Duration::from_millis(5),
            Some("conflict"),
        );
        let ok = metrics
            .reconciles
            .with_label_values(&["singlestore", "success"])
            .get();
        let err = metrics
            .errors
            .with_label_values(&["singlestore", "conflict"])
            .get();
        assert_eq!((ok, err), (1, 1));
        let text = {
            let mut buf = Vec::new();
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &registry.gather(),
                &mut buf,
            )
            .unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(text.contains("reconcile_duration_seconds_bucket"), "{text}");
    }
}
