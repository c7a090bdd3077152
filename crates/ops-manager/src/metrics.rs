//! The ops-manager's Prometheus metrics (registered in the operator's own registry, whose prefix
//! `kubedb_ops_manager` is prepended to every name). Labels are bounded: kind, type, result, step.
//! No object names. Documented in `docs/metrics.md`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The metric handles.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `ops_requests_total{kind,type,result}`: requests that finished (Successful, Failed, Skipped).
    pub requests: IntCounterVec,
    /// `ops_request_duration_seconds{kind,type}`: from Progressing to a final phase.
    pub request_duration: HistogramVec,
    /// `ops_step_duration_seconds{kind,step}`: pause, update_petsets, restart_pod, restart_pods.
    pub step_duration: HistogramVec,
    /// `ops_requests_in_progress{kind}`: requests currently Progressing.
    pub in_progress: IntGaugeVec,
    /// `ops_pods_restarted_total{kind}`: pods restarted onto the target images.
    pub pods_restarted: IntCounterVec,
    /// `ops_reconcile_errors_total{kind}`: reconciles that ended in an API error (retried).
    pub reconcile_errors: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "ops_requests_total",
                "Ops requests that reached a final phase, by kind, type and result",
            ),
            &["kind", "type", "result"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "ops_request_duration_seconds",
                "Time from Progressing to Successful or Failed, by kind and type",
            )
            .buckets(vec![
                1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
            ]),
            &["kind", "type"],
        )?;
        let step_duration = HistogramVec::new(
            HistogramOpts::new(
                "ops_step_duration_seconds",
                "Duration of ops-request steps, by kind and step",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            &["kind", "step"],
        )?;
        let in_progress = IntGaugeVec::new(
            Opts::new(
                "ops_requests_in_progress",
                "Ops requests currently Progressing, by kind",
            ),
            &["kind"],
        )?;
        let pods_restarted = IntCounterVec::new(
            Opts::new(
                "ops_pods_restarted_total",
                "Pods restarted onto the target images, by kind",
            ),
            &["kind"],
        )?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "ops_reconcile_errors_total",
                "Reconciles that failed with an API error and were retried, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(step_duration.clone()))?;
        registry.register(Box::new(in_progress.clone()))?;
        registry.register(Box::new(pods_restarted.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        Ok(Self {
            requests,
            request_duration,
            step_duration,
            in_progress,
            pods_restarted,
            reconcile_errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_prefixed_series() {
        let registry = Registry::new_custom(Some("kubedb_ops_manager".into()), None).unwrap();
        let m = Metrics::register(&registry).unwrap();
        m.requests
            .with_label_values(&["MSSQLServer", "UpdateVersion", "Successful"])
            .inc();
        m.in_progress.with_label_values(&["MSSQLServer"]).set(1);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(
            names.contains(&"kubedb_ops_manager_ops_requests_total".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"kubedb_ops_manager_ops_requests_in_progress".to_owned()),
            "{names:?}"
        );
        assert!(
            Metrics::register(&registry).is_err(),
            "double registration is an error"
        );
    }
}
