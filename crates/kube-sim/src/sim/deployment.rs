//! Deployment controller without ReplicaSets: pods `<deploy>-<template hash>-<suffix>` owned by
//! the Deployment, surged up on a template change and the old ones deleted as new ones get Ready.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use super::pods::{is_ready, is_terminating};
use super::statefulset::{ignore_conflict, ignore_not_found};
use super::util::{
    controller_of, controller_ref, fnv32a, safe_encode, selector_matches, stable_hash,
};

pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// A pod as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub current: bool,
    pub ready: bool,
    pub terminating: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Delete(String),
}

/// Plans one step. RollingUpdate: create current-template pods up to `replicas`, then delete old
/// pods as current ones become Ready (never fewer Ready pods than before); Recreate: delete every
/// old pod first. Extra current pods are deleted, not-Ready ones first.
pub fn plan(replicas: i32, recreate: bool, pods: &[PodView]) -> Vec<Action> {
    let live: Vec<&PodView> = pods.iter().filter(|p| !p.terminating).collect();
    let old: Vec<&PodView> = live.iter().copied().filter(|p| !p.current).collect();
    let mut current: Vec<&PodView> = live.iter().copied().filter(|p| p.current).collect();
    let replicas = replicas.max(0) as usize;
    let mut actions = Vec::new();
    if recreate && !old.is_empty() {
        return old.iter().map(|p| Action::Delete(p.name.clone())).collect();
    }
    if recreate && pods.iter().any(|p| p.terminating && !p.current) {
        return actions;
    }
    for _ in current.len()..replicas {
        actions.push(Action::Create);
    }
    if current.len() > replicas {
        current.sort_by_key(|p| (p.ready, std::cmp::Reverse(p.name.clone())));
        for p in &current[..current.len() - replicas] {
            actions.push(Action::Delete(p.name.clone()));
        }
    }
    let current_ready = current.iter().filter(|p| p.ready).count().min(replicas);
    let keep_old = replicas.saturating_sub(current_ready);
    let mut old_sorted = old.clone();
    old_sorted.sort_by_key(|p| (p.ready, std::cmp::Reverse(p.name.clone())));
    let excess = old_sorted.len().saturating_sub(keep_old);
    for p in &old_sorted[..excess] {
        actions.push(Action::Delete(p.name.clone()));
    }
    actions
}

/// The Deployment controller.
pub struct Controller {
    pub client: Client,
    pub deployments: Store<Deployment>,
    pub pods: Store<Pod>,
    pub seed: u64,
    pub created: u64,
}

impl Controller {
    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let mut by_owner: std::collections::HashMap<String, Vec<std::sync::Arc<Pod>>> =
            std::collections::HashMap::new();
        for pod in self.pods.state() {
            if let Some(owner) = controller_of(pod.metadata.owner_references.as_ref()) {
                by_owner.entry(owner.uid.clone()).or_default().push(pod);
            }
        }
        for d in self.deployments.state() {
            if d.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = d.namespace().unwrap_or_default();
            let name = d.name_any();
            let uid = d.uid().unwrap_or_default();
            let spec = d.spec.clone().unwrap_or_default();
            let hash = stable_hash(&spec.template);
            let owned: Vec<_> = by_owner
                .get(&uid)
                .into_iter()
                .flatten()
                .filter(|p| selector_matches(Some(&spec.selector), p.metadata.labels.as_ref()))
                .collect();
            let views: Vec<PodView> = owned
                .iter()
                .map(|p| PodView {
                    name: p.name_any(),
                    current: p.labels().get(TEMPLATE_HASH_LABEL) == Some(&hash),
                    ready: is_ready(p),
                    terminating: is_terminating(p),
                })
                .collect();
            let replicas = spec.replicas.unwrap_or(1);
            let recreate =
                spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            if !spec.paused.unwrap_or(false) {
                for action in plan(replicas, recreate, &views) {
                    match action {
                        Action::Create => {
                            self.created += 1;
                            let suffix = safe_encode(u64::from(fnv32a(
                                format!("{}/{}/{}", self.seed, uid, self.created).as_bytes(),
                            )));
                            let suffix: String =
                                suffix.chars().chain("bcdfg".chars()).take(5).collect();
                            let template_meta = spec.template.metadata.clone().unwrap_or_default();
                            let mut labels = template_meta.labels.unwrap_or_default();
                            labels.insert(TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
                            let pod = Pod {
                                metadata: ObjectMeta {
                                    name: Some(format!("{name}-{hash}-{suffix}")),
                                    namespace: Some(ns.clone()),
                                    labels: Some(labels),
                                    annotations: template_meta.annotations,
                                    owner_references: Some(vec![controller_ref(
                                        "apps/v1",
                                        "Deployment",
                                        &name,
                                        &uid,
                                    )]),
                                    ..ObjectMeta::default()
                                },
                                spec: spec.template.spec.clone(),
                                status: None,
                            };
                            ignore_conflict(api.create(&PostParams::default(), &pod).await)?;
                        }
                        Action::Delete(pod) => {
                            ignore_not_found(
                                api.delete(&pod, &DeleteParams::default()).await.map(|_| ()),
                            )?;
                        }
                    }
                }
            }
            let live: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
            let ready = live.iter().filter(|p| p.ready).count() as i32;
            let updated = live.iter().filter(|p| p.current).count() as i32;
            let total = live.len() as i32;
            let available = ready >= replicas;
            let old_conditions = d
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let now = super::util::time_at(k8s_openapi::jiff::Timestamp::now());
            let cond = |type_: &str, ok: bool, reason: &str| {
                let status = if ok { "True" } else { "False" };
                let since = old_conditions
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status)
                    .and_then(|c| c.last_transition_time.clone())
                    .unwrap_or_else(|| now.clone());
                serde_json::json!({"type": type_, "status": status, "reason": reason,
                    "lastTransitionTime": since, "lastUpdateTime": since})
            };
            let status = serde_json::json!({
                "observedGeneration": d.metadata.generation,
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": (replicas - ready).max(0),
                "conditions": [
                    cond("Available", available, if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }),
                    cond("Progressing", true, if updated == replicas && total == replicas { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }),
                ],
            });
            let old = serde_json::to_value(d.status.clone().unwrap_or_default())?;
            let differs = [
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ]
            .iter()
            .any(|k| old.get(k).cloned().unwrap_or(serde_json::json!(0)) != status[k].clone())
                || ["Available", "Progressing"]
                    .iter()
                    .enumerate()
                    .any(|(i, t)| {
                        let new = &status["conditions"][i];
                        !old_conditions.iter().any(|c| {
                            c.type_ == *t
                                && c.status == new["status"]
                                && c.reason.as_deref() == new["reason"].as_str()
                        })
                    });
            if differs {
                let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                ignore_not_found(
                    dapi.patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&serde_json::json!({ "status": status })),
                    )
                    .await
                    .map(|_| ()),
                )?;
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

    fn pod(name: &str, current: bool, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            current,
            ready,
            terminating: false,
        }
    }

    #[test]
    fn plans() {
        let del = |n: &str| Action::Delete(n.into());
        type Case = (&'static str, i32, bool, Vec<PodView>, Vec<Action>);
        let cases: Vec<Case> = vec![
            (
                "scale from zero",
                2,
                false,
                vec![],
                vec![Action::Create, Action::Create],
            ),
            (
                "steady",
                2,
                false,
                vec![pod("a", true, true), pod("b", true, true)],
                vec![],
            ),
            (
                "scale down not-ready first",
                1,
                false,
                vec![pod("a", true, true), pod("b", true, false)],
                vec![del("b")],
            ),
            (
                "template change surges and keeps old until new Ready",
                2,
                false,
                vec![pod("o1", false, true), pod("o2", false, true)],
                vec![Action::Create, Action::Create],
            ),
            (
                "one new Ready replaces one old",
                2,
                false,
                vec![
                    pod("o1", false, true),
                    pod("o2", false, true),
                    pod("n1", true, true),
                    pod("n2", true, false),
                ],
                vec![del("o2")],
            ),
            (
                "recreate deletes old first",
                1,
                true,
                vec![pod("o1", false, true)],
                vec![del("o1")],
            ),
        ];
        for (name, replicas, recreate, pods, expected) in cases {
            assert_eq!(plan(replicas, recreate, &pods), expected, "{name}");
        }
    }
}
