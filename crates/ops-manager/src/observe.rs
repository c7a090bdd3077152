//! Reads the world of one request from the API (fresh reads, never a cache, so decisions after a
//! restart or a status write see the latest state).

use std::collections::BTreeMap;

use api::names::{LABEL_INSTANCE, LABEL_NAME, LABEL_ROLE};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use operator_common::error::{Error, Result};

use crate::kinds::OpsKind;
use crate::model::{
    ContainerImage, ContainerState, KindSteps, PdbView, PeerRequest, PodView, RequestView, StsView,
    Target, World,
};
use crate::plan::{IntOrPercent, desired_healthy};

/// One request with its world.
pub struct Observed<K> {
    /// The request object as read.
    pub object: K,
    /// Its view.
    pub view: RequestView,
    /// The world.
    pub world: World,
}

/// Reads the request `name` and its world; None when the request is gone.
pub async fn observe<K: OpsKind>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Observed<K>>> {
    let kind = K::KIND;
    let requests: Api<K> = Api::namespaced(client.clone(), namespace);
    let Some(object) = requests
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading {} {namespace}/{name}", kind.ops_kind()), e))?
    else {
        return Ok(None);
    };
    let view = object.view();
    let db_api: Api<K::Db> = Api::namespaced(client.clone(), namespace);
    let db_obj = db_api.get_opt(&view.database).await.map_err(|e| {
        Error::kube(
            format!("reading {} {namespace}/{}", kind.as_str(), view.database),
            e,
        )
    })?;
    let db = db_obj.as_ref().map(K::db_view);
    let active = !view.deleting && !view.phase().is_final();
    let mut world = World {
        now: Timestamp::now(),
        db,
        validation: Ok(()),
        images: None,
        statefulsets: Vec::new(),
        pods: Vec::new(),
        pdbs: Vec::new(),
        peers: Vec::new(),
        handover: None,
        action_error: None,
    };
    if !active {
        return Ok(Some(Observed {
            object,
            view,
            world,
        }));
    }
    let versions = Api::<K::Version>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing {}s", kind.version_kind()), e))?
        .items;
    world.validation = crate::validate::validate(&view, world.db.as_ref(), &versions);
    if let (Some(db), Some(target)) = (world.db.as_ref(), view.target_version.as_deref()) {
        let find = |n: &str| versions.iter().find(|v| v.name_any() == n).map(K::images);
        if let Some(target) = find(target) {
            let current = find(&db.version).unwrap_or_else(|| target.clone());
            world.images = Some(Target { current, target });
        }
    }
    match view.phase() {
        api::OpsRequestPhase::Pending => {
            world.peers = requests
                .list(&ListParams::default())
                .await
                .map_err(|e| {
                    Error::kube(format!("listing {}s in {namespace}", kind.ops_kind()), e)
                })?
                .items
                .iter()
                .filter(|r| r.database() == view.database && r.name_any() != view.name)
                .filter(|r| r.meta().deletion_timestamp.is_none())
                .map(|r| {
                    let v = r.view();
                    PeerRequest {
                        name: v.name,
                        created: v.created,
                        op_type: v.op_type,
                        phase: v.status.phase,
                    }
                })
                .collect();
        }
        api::OpsRequestPhase::Progressing => {
            let selector = format!(
                "{LABEL_NAME}={},{LABEL_INSTANCE}={}",
                kind.resource_name(),
                view.database
            );
            let lp = ListParams::default().labels(&selector);
            let listing = |what: &str| {
                let action = format!(
                    "listing the {what} of {} {namespace}/{}",
                    kind.as_str(),
                    view.database
                );
                move |e| Error::kube(action, e)
            };
            let sts = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .list(&lp)
                .await
                .map_err(listing("StatefulSets"))?
                .items;
            let pods = Api::<Pod>::namespaced(client.clone(), namespace)
                .list(&lp)
                .await
                .map_err(listing("pods"))?
                .items;
            let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), namespace)
                .list(&lp)
                .await
                .map_err(listing("PodDisruptionBudgets"))?
                .items;
            world.statefulsets = sts.iter().map(sts_view).collect();
            world.pods = pods.iter().map(pod_view).collect();
            world.pdbs = pdbs.iter().map(|b| pdb_view(b, &pods)).collect();
            if kind.switches_over() && world.db.as_ref().is_some_and(|d| d.clustered) {
                let lease = Api::<Lease>::namespaced(client.clone(), namespace)
                    .get_opt(&kind.leader_lease(&view.database))
                    .await
                    .map_err(|e| {
                        Error::kube(
                            format!(
                                "reading the primary Lease of {} {namespace}/{}",
                                kind.as_str(),
                                view.database
                            ),
                            e,
                        )
                    })?;
                world.handover = lease.as_ref().and_then(handover);
            }
        }
        _ => {}
    }
    Ok(Some(Observed {
        object,
        view,
        world,
    }))
}

/// The handover a primary Lease's annotations request: (pod, until).
pub fn handover(lease: &Lease) -> Option<(String, Timestamp)> {
    let annotations = lease.metadata.annotations.as_ref()?;
    let from = annotations
        .get(api::names::HANDOVER_FROM_ANNOTATION)
        .filter(|f| !f.is_empty())?;
    let until = annotations
        .get(api::names::HANDOVER_UNTIL_ANNOTATION)?
        .parse()
        .ok()?;
    Some((from.clone(), until))
}

fn images(list: Option<&Vec<Container>>) -> Vec<ContainerImage> {
    list.map(|l| {
        l.iter()
            .map(|c| ContainerImage::new(&c.name, c.image.clone().unwrap_or_default()))
            .collect()
    })
    .unwrap_or_default()
}

fn sts_view(sts: &StatefulSet) -> StsView {
    let spec = sts.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    StsView {
        name: sts.name_any(),
        containers: images(spec.map(|s| &s.containers)),
        init_containers: images(spec.and_then(|s| s.init_containers.as_ref())),
    }
}

fn states(list: Option<&Vec<ContainerStatus>>) -> Vec<ContainerState> {
    list.map(|l| {
        l.iter()
            .map(|s| {
                let waiting = s.state.as_ref().and_then(|st| st.waiting.as_ref());
                ContainerState {
                    name: s.name.clone(),
                    image: s.image.clone(),
                    ready: s.ready,
                    waiting_reason: waiting.and_then(|w| w.reason.clone()),
                    waiting_message: waiting.and_then(|w| w.message.clone()),
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

fn pod_view(pod: &Pod) -> PodView {
    let name = pod.name_any();
    let sts = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "StatefulSet")
        .map(|o| o.name.clone())
        .or_else(|| name.rsplit_once('-').map(|(s, _)| s.to_owned()))
        .unwrap_or_default();
    let ordinal = pod
        .labels()
        .get("apps.kubernetes.io/pod-index")
        .and_then(|i| i.parse().ok())
        .or_else(|| name.rsplit_once('-').and_then(|(_, o)| o.parse().ok()))
        .unwrap_or(i32::MAX);
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let spec = pod.spec.as_ref();
    PodView {
        uid: pod.uid().unwrap_or_default(),
        sts,
        ordinal,
        role: pod.labels().get(LABEL_ROLE).cloned(),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        containers: images(spec.map(|s| &s.containers)),
        init_containers: images(spec.and_then(|s| s.init_containers.as_ref())),
        statuses: states(status.and_then(|s| s.container_statuses.as_ref())),
        init_statuses: states(status.and_then(|s| s.init_container_statuses.as_ref())),
        name,
    }
}

fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector else { return false };
    let labels_ok = sel
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let exprs_ok = sel.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.clone().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

fn int_or_percent(v: &IntOrString) -> IntOrPercent {
    match v {
        IntOrString::Int(n) => IntOrPercent::Int(*n),
        IntOrString::String(s) => {
            IntOrPercent::Percent(s.trim_end_matches('%').parse().unwrap_or(100))
        }
    }
}

fn pdb_view(pdb: &PodDisruptionBudget, pods: &[Pod]) -> PdbView {
    let spec = pdb.spec.clone().unwrap_or_default();
    let selected: Vec<String> = pods
        .iter()
        .filter(|p| selects(spec.selector.as_ref(), p.labels()))
        .map(ResourceExt::name_any)
        .collect();
    let min = spec.min_available.as_ref().map(int_or_percent);
    let max = spec.max_unavailable.as_ref().map(int_or_percent);
    PdbView {
        name: pdb.name_any(),
        desired_healthy: desired_healthy(min.as_ref(), max.as_ref(), selected.len() as i32),
        pods: selected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pod_view_reads_owner_ordinal_role_and_container_states() {
        let p = pod(json!({
            "metadata": {"name": "db-2", "uid": "u", "labels": {"kubedb.com/role": "primary", "apps.kubernetes.io/pod-index": "2"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "s", "controller": true}]},
            "spec": {"containers": [{"name": "mssql", "image": "img:2"}], "initContainers": [{"name": "mssql-init", "image": "init:1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "mssql", "image": "img:2", "imageID": "", "ready": false, "restartCount": 0,
                                              "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no"}}}]},
        }));
        let v = pod_view(&p);
        assert_eq!(
            (
                v.name.as_str(),
                v.sts.as_str(),
                v.ordinal,
                v.role.as_deref()
            ),
            ("db-2", "db", 2, Some("primary"))
        );
        assert!(v.ready && !v.terminating);
        assert_eq!(
            v.init_containers,
            [ContainerImage::new("mssql-init", "init:1")]
        );
        assert_eq!(
            v.statuses[0].waiting_reason.as_deref(),
            Some("ImagePullBackOff")
        );
        // Without owner or index label, both come from the name.
        let bare = pod_view(&pod(json!({"metadata": {"name": "sdb-leaf-1"}})));
        assert_eq!((bare.sts.as_str(), bare.ordinal), ("sdb-leaf", 1));
    }

    #[test]
    fn pdb_view_counts_selected_pods_and_desired_healthy() {
        let pods: Vec<Pod> = ["a-0", "a-1", "a-2"]
            .iter()
            .map(|n| pod(json!({"metadata": {"name": n, "labels": {"set": "a"}}})))
            .chain([pod(
                json!({"metadata": {"name": "b-0", "labels": {"set": "b"}}}),
            )])
            .collect();
        let cases = [
            (
                json!({"selector": {"matchLabels": {"set": "a"}}, "minAvailable": 2}),
                3,
                2,
            ),
            (
                json!({"selector": {"matchLabels": {"set": "a"}}, "maxUnavailable": 1}),
                3,
                2,
            ),
            (
                json!({"selector": {"matchExpressions": [{"key": "set", "operator": "In", "values": ["a", "b"]}]}, "maxUnavailable": "50%"}),
                4,
                2,
            ),
            (
                json!({"selector": {"matchLabels": {"set": "c"}}, "minAvailable": 1}),
                0,
                1,
            ),
        ];
        for (spec, selected, desired) in cases {
            let pdb: PodDisruptionBudget =
                serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
            let v = pdb_view(&pdb, &pods);
            assert_eq!(
                (v.pods.len(), v.desired_healthy),
                (selected, desired),
                "{spec}"
            );
        }
    }
}
