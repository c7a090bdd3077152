//! Disruption controller: PodDisruptionBudget status, which the API server's eviction handler
//! consults (`disruptionsAllowed`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::pods::is_healthy;
use super::util::{LabelIndex, controller_of, inputs_fingerprint, time_at, uid_and_version};

/// Resolves an int-or-percent against a total; percentages round up, as Kubernetes does for
/// both minAvailable and maxUnavailable.
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    format!("invalid value {s:?}: expected an integer or a percentage")
                })?;
            Ok(((pct * i64::from(total) + 99) / 100) as i32)
        }
    }
}

/// The computed numbers of a PDB status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub expected_pods: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub disruptions_allowed: i32,
}

/// PDB math. `pod_count` is the number of matching pods, `controller_scale` the summed
/// `spec.replicas` of their controllers (used for percentages and maxUnavailable, as Kubernetes
/// does), `healthy` the Ready, non-terminating pods.
pub fn budget(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    pod_count: i32,
    controller_scale: Option<i32>,
    healthy: i32,
) -> Result<Budget, String> {
    let (expected, desired) = match (min_available, max_unavailable) {
        (_, Some(max)) => {
            let expected = controller_scale.unwrap_or(pod_count);
            (expected, (expected - scaled(max, expected)?).max(0))
        }
        (Some(IntOrString::Int(n)), None) => (pod_count, *n),
        (Some(min), None) => {
            let expected = controller_scale.unwrap_or(pod_count);
            (expected, scaled(min, expected)?)
        }
        (None, None) => (pod_count, pod_count),
    };
    Ok(Budget {
        expected_pods: expected,
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: (healthy - desired).max(0),
    })
}

/// The PDB controller.
pub struct Controller {
    pub client: Client,
    pub pdbs: Store<PodDisruptionBudget>,
    pub pods: Store<Pod>,
    pub sets: Store<StatefulSet>,
    pub deployments: Store<Deployment>,
    /// The inputs each PDB's status was last computed from, by uid (see [`Controller::inputs`]):
    /// a pass skips the PDBs whose inputs have not changed.
    pub computed: std::collections::HashMap<String, String>,
}

impl Controller {
    fn scale_of(&self, ns: &str, kind: &str, name: &str) -> Option<i32> {
        match kind {
            "StatefulSet" => self
                .sets
                .get(&ObjectRef::new(name).within(ns))
                .map(|s| s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
            "Deployment" => self
                .deployments
                .get(&ObjectRef::new(name).within(ns))
                .map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
            _ => None,
        }
    }

    /// What a PDB's status depends on: its resourceVersion, and the uid and resourceVersion of
    /// each selected pod and of each pod's controller.
    fn inputs(&self, pdb: &PodDisruptionBudget, ns: &str, pods: &[&std::sync::Arc<Pod>]) -> String {
        let dependencies = pods.iter().map(|p| {
            let owner = controller_of(p.metadata.owner_references.as_ref())
                .and_then(|o| {
                    let key = ObjectRef::new(&o.name).within(ns);
                    match o.kind.as_str() {
                        "StatefulSet" => self.sets.get(&key).and_then(|s| s.resource_version()),
                        "Deployment" => self
                            .deployments
                            .get(&ObjectRef::new(&o.name).within(ns))
                            .and_then(|d| d.resource_version()),
                        _ => None,
                    }
                })
                .unwrap_or_default();
            format!("{}:{owner}", uid_and_version(p.as_ref()))
        });
        inputs_fingerprint(pdb, dependencies)
    }

    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let pods = self.pods.state();
        let index = LabelIndex::new(&pods);
        let pdbs = self.pdbs.state();
        let live: std::collections::HashSet<String> = pdbs.iter().filter_map(|p| p.uid()).collect();
        self.computed.retain(|uid, _| live.contains(uid));
        for pdb in pdbs {
            let ns = pdb.namespace().unwrap_or_default();
            let spec = pdb.spec.clone().unwrap_or_default();
            let matching = index.select(&ns, spec.selector.as_ref());
            let uid = pdb.uid().unwrap_or_default();
            let inputs = self.inputs(&pdb, &ns, &matching);
            if self.computed.get(&uid) == Some(&inputs) {
                continue;
            }
            // Recorded before the work: every path below either leaves the status as it is for
            // these inputs or writes it (changing the PDB's resourceVersion, hence the inputs);
            // an error of the write clears it again.
            self.computed.insert(uid.clone(), inputs);
            let mut controllers = BTreeMap::new();
            let mut all_known = true;
            for pod in &matching {
                match controller_of(pod.metadata.owner_references.as_ref()) {
                    Some(owner) => match self.scale_of(&ns, &owner.kind, &owner.name) {
                        Some(scale) => {
                            controllers.insert((owner.kind.clone(), owner.name.clone()), scale);
                        }
                        None => all_known = false,
                    },
                    None => all_known = false,
                }
            }
            let controller_scale =
                (all_known && !controllers.is_empty()).then(|| controllers.values().sum());
            // Pods the API server evicted but that are not terminating yet still count as
            // disrupted (as in Kubernetes); entries of terminating or gone pods are dropped.
            let old_disrupted = pdb
                .status
                .as_ref()
                .and_then(|s| s.disrupted_pods.clone())
                .unwrap_or_default();
            let still_disrupted = |name: &String| {
                matching
                    .iter()
                    .any(|p| &p.name_any() == name && p.metadata.deletion_timestamp.is_none())
            };
            let stale: Vec<&String> = old_disrupted
                .keys()
                .filter(|n| !still_disrupted(n))
                .collect();
            let healthy = matching
                .iter()
                .filter(|p| is_healthy(p) && !old_disrupted.contains_key(&p.name_any()))
                .count() as i32;
            let budget = match budget(
                spec.min_available.as_ref(),
                spec.max_unavailable.as_ref(),
                matching.len() as i32,
                controller_scale,
                healthy,
            ) {
                Ok(b) => b,
                Err(error) => {
                    tracing::warn!(pdb = %pdb.name_any(), %error, "sim: invalid PodDisruptionBudget");
                    continue;
                }
            };
            let old = pdb.status.clone().unwrap_or_default();
            let allowed = budget.disruptions_allowed > 0;
            let (status, reason) = if allowed {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            let generation = pdb.metadata.generation;
            let previous = old
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "DisruptionAllowed")
                .cloned();
            let unchanged = old.expected_pods == budget.expected_pods
                && old.current_healthy == budget.current_healthy
                && old.desired_healthy == budget.desired_healthy
                && old.disruptions_allowed == budget.disruptions_allowed
                && old.observed_generation == generation
                && stale.is_empty()
                && previous.as_ref().is_some_and(|c| {
                    c.status == status && c.reason == reason && c.observed_generation == generation
                });
            if unchanged {
                continue;
            }
            let transition = previous
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time)
                .unwrap_or_else(|| time_at(Timestamp::now()));
            let condition = Condition {
                type_: "DisruptionAllowed".to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: String::new(),
                observed_generation: generation,
                last_transition_time: transition,
            };
            let mut patch = serde_json::json!({
                "status": {
                    "expectedPods": budget.expected_pods,
                    "currentHealthy": budget.current_healthy,
                    "desiredHealthy": budget.desired_healthy,
                    "disruptionsAllowed": budget.disruptions_allowed,
                    "observedGeneration": generation,
                    "conditions": [condition],
                }
            });
            if !stale.is_empty() {
                let removals: serde_json::Map<String, serde_json::Value> = stale
                    .iter()
                    .map(|n| ((*n).clone(), serde_json::Value::Null))
                    .collect();
                patch["status"]["disruptedPods"] = serde_json::Value::Object(removals);
            }
            let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
            match api
                .patch_status(
                    &pdb.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    self.computed.remove(&uid);
                    return Err(e.into());
                }
            }
        }
        Ok(None)
    }
}

impl super::informers::Pass for Controller {
    async fn pass(&mut self) -> anyhow::Result<Option<Duration>> {
        self.pass_once().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i32) -> IntOrString {
        IntOrString::Int(n)
    }
    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.to_owned())
    }

    #[test]
    fn budgets() {
        // (minAvailable, maxUnavailable, pods, scale, healthy) => (expected, desired, allowed)
        let cases = [
            (Some(int(2)), None, 3, Some(3), 3, (3, 2, 1)),
            (Some(int(2)), None, 3, Some(3), 2, (3, 2, 0)),
            (Some(int(3)), None, 3, None, 3, (3, 3, 0)),
            (Some(pct("50%")), None, 3, Some(3), 3, (3, 2, 1)),
            (Some(pct("50%")), None, 2, Some(4), 2, (4, 2, 0)),
            (None, Some(int(1)), 3, Some(3), 3, (3, 2, 1)),
            (None, Some(int(1)), 3, Some(3), 2, (3, 2, 0)),
            (None, Some(pct("34%")), 3, Some(3), 3, (3, 1, 2)),
            (None, Some(int(5)), 3, Some(3), 3, (3, 0, 3)),
            (None, None, 2, None, 2, (2, 2, 0)),
        ];
        for (min, max, pods, scale, healthy, (expected, desired, allowed)) in cases {
            let b = budget(min.as_ref(), max.as_ref(), pods, scale, healthy).unwrap();
            assert_eq!(
                (
                    b.expected_pods,
                    b.desired_healthy,
                    b.disruptions_allowed,
                    b.current_healthy
                ),
                (expected, desired, allowed, healthy),
                "min {min:?} max {max:?} pods {pods} scale {scale:?} healthy {healthy}"
            );
        }
        assert!(budget(Some(&pct("x%")), None, 1, None, 1).is_err());
    }
}
