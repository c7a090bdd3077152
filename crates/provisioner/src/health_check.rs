//! The health-check scheduler: `--health-check=pod-readiness` derives health from pod readiness;
//! `--health-check=sql` probes the database every `spec.healthChecker.periodSeconds` (bounded by
//! `timeoutSeconds`) and applies `failureThreshold` across probes.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tokio::time::Instant;

use crate::health::{FailureTracker, HealthReport, ProbeSettings};
use crate::status::Health;

/// Readiness of the pods that serve the primary endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHealth {
    /// A pod of the primary StatefulSets (for an AG: the pod with the primary role) is Ready.
    pub serving: bool,
    /// Why not, when not.
    pub message: String,
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The StatefulSet a pod belongs to (`<set>-<ordinal>`).
pub fn pod_set(pod: &Pod) -> Option<String> {
    pod.labels()
        .get(api::names::LABEL_PETSET)
        .cloned()
        .or_else(|| pod.name_any().rsplit_once('-').map(|(s, _)| s.to_owned()))
}

/// Pod-readiness health: some pod of `sets` is Ready; with `role` set, that pod must carry
/// `kubedb.com/role=<role>` (the AG primary).
pub fn pod_health<P: Borrow<Pod>>(pods: &[P], sets: &[String], role: Option<&str>) -> PodHealth {
    let serving = pods.iter().map(Borrow::borrow).any(|p| {
        pod_set(p).is_some_and(|s| sets.contains(&s))
            && pod_ready(p)
            && role.is_none_or(|r| {
                p.labels().get(api::names::LABEL_ROLE).map(String::as_str) == Some(r)
            })
    });
    let message = if serving {
        String::new()
    } else if let Some(role) = role {
        format!(
            "no Ready pod of StatefulSet {} carries the {role} role",
            sets.join(", ")
        )
    } else {
        format!("no pod of StatefulSet {} is Ready", sets.join(", "))
    };
    PodHealth { serving, message }
}

/// The pod that carries `role` in `sets`, if any.
pub fn role_holder<P: Borrow<Pod>>(pods: &[P], sets: &[String], role: &str) -> Option<String> {
    pods.iter()
        .map(Borrow::borrow)
        .filter(|p| {
            pod_set(p).is_some_and(|s| sets.contains(&s)) && p.metadata.deletion_timestamp.is_none()
        })
        .find(|p| p.labels().get(api::names::LABEL_ROLE).map(String::as_str) == Some(role))
        .map(|p| p.name_any())
}

/// Combines an SQL probe verdict with the failure tracker's decision.
pub fn sql_health(report: &HealthReport, ready_after_threshold: bool) -> Health {
    Health {
        accepting: report.accepting_connection || ready_after_threshold,
        ready: ready_after_threshold,
        message: report.message.clone(),
    }
}

struct Entry {
    tracker: FailureTracker,
    last_probe: Instant,
    last: Health,
}

/// Per-database SQL probe state.
#[derive(Default)]
pub struct SqlProbes {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for SqlProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlProbes").finish_non_exhaustive()
    }
}

impl SqlProbes {
    /// The last health of `key` when its period has not elapsed yet.
    pub fn cached(&self, key: &str, settings: &ProbeSettings) -> Option<Health> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?;
        (entry.last_probe.elapsed() < settings.period).then(|| entry.last.clone())
    }

    /// Records a probe report and returns the health after `failureThreshold`.
    pub fn record(&self, key: &str, settings: &ProbeSettings, report: &HealthReport) -> Health {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
            tracker: FailureTracker::new(settings.failure_threshold),
            last_probe: Instant::now(),
            last: Health::default(),
        });
        entry
            .tracker
            .set_failure_threshold(settings.failure_threshold);
        let verdict = entry.tracker.observe(report.is_healthy());
        entry.last_probe = Instant::now();
        entry.last = sql_health(report, verdict.ready);
        entry.last.clone()
    }

    /// Forgets a deleted database.
    pub fn forget(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Time until the next probe of `key` is due.
    pub fn next_due(&self, key: &str, settings: &ProbeSettings) -> Duration {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .map(|e| settings.period.saturating_sub(e.last_probe.elapsed()))
            .unwrap_or(settings.period)
            .max(Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use std::collections::BTreeMap;

    fn pod(name: &str, set: &str, ready: bool, role: Option<&str>) -> Pod {
        let mut labels = BTreeMap::from([(api::names::LABEL_PETSET.to_owned(), set.to_owned())]);
        if let Some(role) = role {
            labels.insert(api::names::LABEL_ROLE.into(), role.into());
        }
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_readiness_table() {
        let sets = vec!["db".to_owned()];
        let cases = [
            (vec![pod("db-0", "db", true, None)], None, true),
            (vec![pod("db-0", "db", false, None)], None, false),
            (
                vec![pod("db-arbiter-0", "db-arbiter", true, None)],
                None,
                false,
            ),
            (
                vec![
                    pod("db-0", "db", true, Some("secondary")),
                    pod("db-1", "db", false, Some("primary")),
                ],
                Some("primary"),
                false,
            ),
            (
                vec![
                    pod("db-0", "db", true, Some("secondary")),
                    pod("db-1", "db", true, Some("primary")),
                ],
                Some("primary"),
                true,
            ),
        ];
        for (i, (pods, role, serving)) in cases.into_iter().enumerate() {
            let health = pod_health(&pods, &sets, role);
            assert_eq!(health.serving, serving, "case {i}: {}", health.message);
            assert_eq!(health.message.is_empty(), serving, "case {i}");
        }
        let pods = [
            pod("db-0", "db", true, Some("secondary")),
            pod("db-2", "db", true, Some("primary")),
        ];
        assert_eq!(
            role_holder(&pods, &sets, "primary").as_deref(),
            Some("db-2")
        );
    }

    #[test]
    fn sql_probes_apply_threshold_and_period() {
        let probes = SqlProbes::default();
        let settings = ProbeSettings {
            period: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            failure_threshold: 2,
            write_check: true,
        };
        let ok = HealthReport {
            accepting_connection: true,
            read_ok: Some(true),
            write_ok: Some(true),
            failure: None,
            message: "ok".into(),
        };
        let bad = HealthReport {
            accepting_connection: false,
            read_ok: None,
            write_ok: None,
            failure: None,
            message: "refused".into(),
        };
        assert!(probes.cached("a", &settings).is_none());
        assert!(probes.record("a", &settings, &ok).ready);
        assert!(
            probes.cached("a", &settings).is_some(),
            "within the period the last result is reused"
        );
        assert!(
            probes.record("a", &settings, &bad).ready,
            "one failure is tolerated with threshold 2"
        );
        let after = probes.record("a", &settings, &bad);
        assert!(!after.ready && !after.accepting);
        assert!(probes.next_due("a", &settings) <= Duration::from_secs(60));
        probes.forget("a");
        assert!(probes.cached("a", &settings).is_none());
    }
}
