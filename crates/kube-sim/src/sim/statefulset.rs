//! StatefulSet controller: pods `<sts>-<ordinal>`, PVCs `<claim>-<pod>`, ordered or parallel
//! management, RollingUpdate (partition, highest ordinal first) and OnDelete, and status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::pods::{is_running_and_ready, is_terminating};
use super::util::{
    controller_of, controller_ref, inputs_fingerprint, selector_matches, stable_hash,
    uid_and_version,
};

pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The revision name of a template, as in the `controller-revision-hash` label: `<sts>-<hash>`.
pub fn revision_name(sts_name: &str, template: &PodTemplateSpec) -> String {
    format!("{sts_name}-{}", stable_hash(template))
}

/// Update strategy, reduced to what the planner needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    OnDelete,
    /// Pods with an ordinal at or above `partition` are updated.
    RollingUpdate {
        partition: i32,
    },
}

/// What the planner needs to know about a StatefulSet.
#[derive(Clone, Debug)]
pub struct SetView {
    pub replicas: i32,
    /// First ordinal (`spec.ordinals.start`).
    pub start: i32,
    pub parallel: bool,
    pub strategy: Strategy,
    pub current_revision: String,
    pub update_revision: String,
}

/// What the planner needs to know about one of its pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub ordinal: i32,
    pub revision: String,
    /// `status.phase` is set (the pod was accepted by a kubelet).
    pub created: bool,
    pub running_ready: bool,
    pub terminating: bool,
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the pod of this ordinal at this revision.
    Create {
        ordinal: i32,
        revision: String,
    },
    Delete {
        name: String,
    },
}

/// The next actions for a StatefulSet, following the Kubernetes StatefulSet controller:
/// create missing replicas (OrderedReady: one at a time, each after the lower ones are Running and
/// Ready), delete condemned pods highest ordinal first, then (RollingUpdate) delete the highest
/// outdated pod at or above the partition once every higher pod is updated and Ready.
pub fn plan(set: &SetView, pods: &[PodView]) -> Vec<Action> {
    let mut actions = Vec::new();
    let by_ordinal: BTreeMap<i32, &PodView> = pods.iter().map(|p| (p.ordinal, p)).collect();
    let end = set.start + set.replicas.max(0);
    let in_range = |ord: i32| ord >= set.start && ord < end;
    let monotonic = !set.parallel;

    for ordinal in set.start..end {
        match by_ordinal.get(&ordinal) {
            None => {
                let revision = match set.strategy {
                    Strategy::RollingUpdate { partition } if ordinal < partition => {
                        set.current_revision.clone()
                    }
                    _ => set.update_revision.clone(),
                };
                actions.push(Action::Create { ordinal, revision });
                if monotonic {
                    return actions;
                }
            }
            Some(pod) if monotonic && (pod.terminating || !pod.running_ready) => return actions,
            Some(_) => {}
        }
    }

    let mut condemned: Vec<&PodView> = pods.iter().filter(|p| !in_range(p.ordinal)).collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    for pod in &condemned {
        if pod.terminating {
            if monotonic {
                return actions;
            }
            continue;
        }
        // Ordered scale-down waits until every other pod is healthy.
        let others_unhealthy = pods
            .iter()
            .any(|p| p.name != pod.name && (p.terminating || !p.running_ready));
        if monotonic && others_unhealthy {
            return actions;
        }
        actions.push(Action::Delete {
            name: pod.name.clone(),
        });
        if monotonic {
            return actions;
        }
    }
    if !actions.is_empty() {
        return actions;
    }

    let Strategy::RollingUpdate { partition } = set.strategy else {
        return actions;
    };
    for ordinal in (set.start.max(partition)..end).rev() {
        let Some(pod) = by_ordinal.get(&ordinal) else {
            return actions;
        };
        if pod.revision != set.update_revision && !pod.terminating {
            actions.push(Action::Delete {
                name: pod.name.clone(),
            });
            return actions;
        }
        if pod.terminating || !pod.running_ready {
            return actions;
        }
    }
    actions
}

/// The counting part of StatefulSet status, computed as the Kubernetes controller does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub current: i32,
    pub updated: i32,
    pub current_revision: String,
}

/// Counts pods; `rolling` tells whether a completed rolling update moves the current revision
/// (Kubernetes does this only for RollingUpdate, never for OnDelete).
pub fn counts(set: &SetView, pods: &[PodView], rolling: bool) -> Counts {
    let mut c = Counts {
        current_revision: set.current_revision.clone(),
        ..Counts::default()
    };
    for pod in pods {
        if pod.created {
            c.replicas += 1;
        }
        if pod.running_ready {
            c.ready += 1;
        }
        if pod.created && !pod.terminating {
            if pod.revision == set.current_revision {
                c.current += 1;
            }
            if pod.revision == set.update_revision {
                c.updated += 1;
            }
        }
    }
    if rolling && c.updated == c.replicas && c.ready == c.replicas {
        c.current = c.updated;
        c.current_revision = set.update_revision.clone();
    }
    c
}

/// Parses the ordinal of `<sts>-<ordinal>`.
pub fn ordinal_of(sts_name: &str, pod_name: &str) -> Option<i32> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The pod a StatefulSet creates for an ordinal from a template.
pub fn build_pod(
    sts: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Pod {
    let sts_name = sts.name_any();
    let name = format!("{sts_name}-{ordinal}");
    let spec = sts.spec.clone().unwrap_or_default();
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.to_owned(), revision.to_owned());
    labels.insert(POD_NAME_LABEL.to_owned(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_owned(), ordinal.to_string());
    let mut pod_spec = template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    if !spec.service_name.clone().unwrap_or_default().is_empty() {
        pod_spec.subdomain = spec.service_name.clone();
    }
    let mut volumes = pod_spec.volumes.take().unwrap_or_default();
    for claim in spec.volume_claim_templates.iter().flatten() {
        let claim_name = claim.name_any();
        volumes.retain(|v| v.name != claim_name);
        volumes.push(Volume {
            name: claim_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{claim_name}-{name}"),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    if !volumes.is_empty() {
        pod_spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.namespace(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![controller_ref(
                "apps/v1",
                "StatefulSet",
                &sts_name,
                &sts.uid().unwrap_or_default(),
            )]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// The PVCs of a pod: `<claim>-<pod>`, labelled with the claim template's labels and the set's
/// selector labels. They have no owner, so they outlive the pod and the set.
pub fn build_claims(sts: &StatefulSet, pod_name: &str) -> Vec<PersistentVolumeClaim> {
    let spec = sts.spec.clone().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|claim| {
            let mut labels = claim.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(format!("{}-{pod_name}", claim.name_any())),
                    namespace: sts.namespace(),
                    labels: Some(labels),
                    annotations: claim.metadata.annotations.clone(),
                    ..ObjectMeta::default()
                },
                spec: claim.spec.clone(),
                status: None,
            }
        })
        .collect()
}

fn set_view(sts: &StatefulSet, update_revision: &str) -> SetView {
    let spec = sts.spec.clone().unwrap_or_default();
    let strategy = match spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
    {
        Some("OnDelete") => Strategy::OnDelete,
        _ => Strategy::RollingUpdate {
            partition: spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
        },
    };
    let current_revision = sts
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| update_revision.to_owned());
    SetView {
        replicas: spec.replicas.unwrap_or(1),
        start: spec.ordinals.and_then(|o| o.start).unwrap_or(0),
        parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
        strategy,
        current_revision,
        update_revision: update_revision.to_owned(),
    }
}

/// The StatefulSet controller with its memory of templates per revision (what Kubernetes keeps
/// in ControllerRevisions), used to recreate pods below a partition at the old revision.
pub struct Controller {
    pub client: Client,
    pub sets: Store<StatefulSet>,
    pub pods: Store<Pod>,
    pub claims: Store<PersistentVolumeClaim>,
    pub templates: HashMap<String, PodTemplateSpec>,
    /// Revision numbers per StatefulSet uid, as recorded in its ControllerRevisions.
    pub revisions: HashMap<String, BTreeMap<String, i64>>,
    /// The inputs (see [`inputs_of`]) each StatefulSet was last reconciled from without error,
    /// by uid: a pass skips the sets whose inputs have not changed since, so a pass costs little
    /// per unchanged set however many sets exist.
    pub reconciled: HashMap<String, String>,
}

/// What a StatefulSet's reconcile depends on: its resourceVersion and the uid and
/// resourceVersion of each pod it owns. Equal inputs give the same actions and status, which were
/// already carried out (our own writes change a resourceVersion and so the inputs).
pub fn inputs_of(sts: &StatefulSet, pods: &[Arc<Pod>]) -> String {
    inputs_fingerprint(sts, pods.iter().map(|p| uid_and_version(p.as_ref())))
}

impl Controller {
    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        // Index pods by controller uid (owned) and by namespace (orphans, for adoption).
        let mut owned: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        let mut orphans: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self.pods.state() {
            match controller_of(pod.metadata.owner_references.as_ref()) {
                Some(owner) => owned.entry(owner.uid.clone()).or_default().push(pod),
                None => orphans
                    .entry(pod.namespace().unwrap_or_default())
                    .or_default()
                    .push(pod),
            }
        }
        let mut retry = None;
        let sets = self.sets.state();
        let live: std::collections::HashSet<String> = sets.iter().filter_map(|s| s.uid()).collect();
        self.reconciled.retain(|uid, _| live.contains(uid));
        for sts in sets {
            if sts.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let uid = sts.uid().unwrap_or_default();
            let ns = sts.namespace().unwrap_or_default();
            let adopted = self
                .adopt(
                    &sts,
                    orphans.get(&ns).map(Vec::as_slice).unwrap_or_default(),
                )
                .await?;
            if adopted {
                // The adopted pods arrive with the next watch event.
                continue;
            }
            let pods = owned.remove(&uid).unwrap_or_default();
            let inputs = inputs_of(&sts, &pods);
            if self.reconciled.get(&uid) == Some(&inputs) {
                continue;
            }
            match self.reconcile(&sts, &pods).await {
                Ok(true) => {
                    self.reconciled.insert(uid, inputs);
                }
                Ok(false) => {
                    self.reconciled.remove(&uid);
                    retry = Some(super::informers::RETRY_AFTER_ERROR);
                }
                Err(error) => {
                    self.reconciled.remove(&uid);
                    tracing::warn!(statefulset = %sts.name_any(), error = %format!("{error:#}"), "sim statefulset");
                    retry = Some(super::informers::RETRY_AFTER_ERROR);
                }
            }
        }
        Ok(retry)
    }

    /// Reconciles one set; returns whether it is settled for its current inputs (every action
    /// went through), so that passes may skip it until its inputs change.
    async fn reconcile(
        &mut self,
        sts: &Arc<StatefulSet>,
        all_pods: &[Arc<Pod>],
    ) -> anyhow::Result<bool> {
        let mut settled = true;
        let name = sts.name_any();
        let ns = sts.namespace().unwrap_or_default();
        let spec = sts.spec.clone().unwrap_or_default();
        let update_revision = revision_name(&name, &spec.template);
        self.templates
            .entry(update_revision.clone())
            .or_insert_with(|| spec.template.clone());
        self.record_revision(sts, &update_revision).await?;
        let view = set_view(sts, &update_revision);

        let owned: Vec<&Arc<Pod>> = all_pods
            .iter()
            .filter(|p| selector_matches(Some(&spec.selector), p.metadata.labels.as_ref()))
            .collect();
        let views: Vec<PodView> = owned
            .iter()
            .filter_map(|p| {
                Some(PodView {
                    name: p.name_any(),
                    ordinal: ordinal_of(&name, &p.name_any())?,
                    revision: p.labels().get(REVISION_LABEL).cloned().unwrap_or_default(),
                    created: p.status.as_ref().and_then(|s| s.phase.as_ref()).is_some(),
                    running_ready: is_running_and_ready(p),
                    terminating: is_terminating(p),
                })
            })
            .collect();

        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for action in plan(&view, &views) {
            match action {
                Action::Create { ordinal, revision } => {
                    let template = self.templates.get(&revision).unwrap_or(&spec.template);
                    let pod = build_pod(sts, template, ordinal, &revision);
                    for claim in build_claims(sts, &pod.name_any()) {
                        let exists = self
                            .claims
                            .get(&ObjectRef::new(&claim.name_any()).within(&ns))
                            .is_some();
                        if !exists {
                            ignore_conflict(
                                claims_api.create(&PostParams::default(), &claim).await,
                            )?;
                            bind_claim(&claims_api, &claim).await;
                        }
                    }
                    match pods_api.create(&PostParams::default(), &pod).await {
                        Ok(_) => {}
                        // A pod of that name still exists (e.g. a terminating one of an earlier
                        // set): try again when pods change, not only when this set's do.
                        Err(kube::Error::Api(status)) if status.code == 409 => settled = false,
                        Err(error) => return Err(error.into()),
                    }
                }
                Action::Delete { name } => {
                    ignore_not_found(
                        pods_api
                            .delete(&name, &DeleteParams::default())
                            .await
                            .map(|_| ()),
                    )?;
                }
            }
        }

        let rolling = matches!(view.strategy, Strategy::RollingUpdate { .. });
        let c = counts(&view, &views, rolling);
        let status = StatefulSetStatus {
            replicas: c.replicas,
            ready_replicas: Some(c.ready),
            available_replicas: Some(c.ready),
            current_replicas: Some(c.current),
            updated_replicas: Some(c.updated),
            current_revision: Some(c.current_revision),
            update_revision: Some(update_revision),
            observed_generation: sts.metadata.generation,
            collision_count: Some(0),
            conditions: sts.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if sts.status.as_ref() != Some(&status) {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &ns);
            let patch = serde_json::json!({ "status": status });
            ignore_not_found(
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
            )?;
        }
        Ok(settled)
    }
}

/// The revision number a StatefulSet's update revision gets: kept when it is already the newest,
/// else one more than the newest (a template returning to an old revision moves it forward, as
/// in Kubernetes).
pub fn next_revision_number(known: &BTreeMap<String, i64>, revision: &str) -> Option<i64> {
    let newest = known.values().copied().max().unwrap_or(0);
    match known.get(revision) {
        Some(&n) if n == newest => None,
        _ => Some(newest + 1),
    }
}

/// The ControllerRevision recording a template.
pub fn controller_revision(
    sts: &StatefulSet,
    revision: &str,
    number: i64,
    template: &PodTemplateSpec,
) -> serde_json::Value {
    let mut labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_LABEL.to_owned(), revision.to_owned());
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision,
            "namespace": sts.namespace(),
            "labels": labels,
            "ownerReferences": [controller_ref("apps/v1", "StatefulSet", &sts.name_any(), &sts.uid().unwrap_or_default())],
        },
        "data": {"spec": {"template": template}},
        "revision": number,
    })
}

impl Controller {
    /// Records the update revision as a ControllerRevision (created, or its number moved up).
    async fn record_revision(&mut self, sts: &StatefulSet, revision: &str) -> anyhow::Result<()> {
        let uid = sts.uid().unwrap_or_default();
        let known = self.revisions.entry(uid).or_default();
        let Some(number) = next_revision_number(known, revision) else {
            return Ok(());
        };
        let template = sts
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let body = controller_revision(sts, revision, number, &template);
        let api: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
            Api::namespaced(self.client.clone(), &sts.namespace().unwrap_or_default());
        let params = PatchParams::apply("kube-sim-statefulset").force();
        api.patch(revision, &params, &Patch::Apply(&body)).await?;
        known.insert(revision.to_owned(), number);
        Ok(())
    }

    /// Adopts pods without a controller that match the selector and are named `<sts>-<n>`, as
    /// the Kubernetes controller does (e.g. after an orphaning delete of an earlier set).
    async fn adopt(&self, sts: &StatefulSet, orphans: &[Arc<Pod>]) -> anyhow::Result<bool> {
        let name = sts.name_any();
        let selector = sts.spec.as_ref().map(|s| &s.selector);
        let mut adopted = false;
        for pod in orphans {
            if is_terminating(pod)
                || ordinal_of(&name, &pod.name_any()).is_none()
                || !selector_matches(selector, pod.metadata.labels.as_ref())
            {
                continue;
            }
            let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
            refs.push(controller_ref(
                "apps/v1",
                "StatefulSet",
                &name,
                &sts.uid().unwrap_or_default(),
            ));
            let patch = serde_json::json!({
                "metadata": {"ownerReferences": refs, "resourceVersion": pod.resource_version()}
            });
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            match api
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => adopted = true,
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(adopted)
    }
}

/// Marks a new claim Bound (there is no volume provisioner to do it).
async fn bind_claim(api: &Api<PersistentVolumeClaim>, claim: &PersistentVolumeClaim) {
    let capacity = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.clone());
    let patch = serde_json::json!({
        "status": {
            "phase": "Bound",
            "accessModes": claim.spec.as_ref().and_then(|s| s.access_modes.clone()),
            "capacity": capacity,
        }
    });
    if let Err(error) = api
        .patch_status(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(%error, "sim: could not mark a PVC Bound");
    }
}

/// Treats 409 AlreadyExists/Conflict as success: the cache was behind and the next pass sees it.
pub fn ignore_conflict<T>(result: kube::Result<T>) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Treats 404 NotFound as success: the object is already gone.
pub fn ignore_not_found(result: kube::Result<()>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
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

    fn set(replicas: i32, parallel: bool, strategy: Strategy) -> SetView {
        SetView {
            replicas,
            start: 0,
            parallel,
            strategy,
            current_revision: "old".into(),
            update_revision: "new".into(),
        }
    }

    /// `spec` per pod: ordinal, revision, ready, terminating.
    fn pods(spec: &[(i32, &str, bool, bool)]) -> Vec<PodView> {
        spec.iter()
            .map(|&(ordinal, revision, ready, terminating)| PodView {
                name: format!("s-{ordinal}"),
                ordinal,
                revision: revision.into(),
                created: true,
                running_ready: ready,
                terminating,
            })
            .collect()
    }

    fn create(ordinal: i32, revision: &str) -> Action {
        Action::Create {
            ordinal,
            revision: revision.into(),
        }
    }

    fn delete(ordinal: i32) -> Action {
        Action::Delete {
            name: format!("s-{ordinal}"),
        }
    }

    #[test]
    fn plans() {
        let rolling = Strategy::RollingUpdate { partition: 0 };
        type Case = (&'static str, SetView, Vec<PodView>, Vec<Action>);
        let cases: Vec<Case> = vec![
            (
                "ordered: first pod",
                set(3, false, rolling.clone()),
                vec![],
                vec![create(0, "new")],
            ),
            (
                "ordered: waits for pod 0 Ready",
                set(3, false, rolling.clone()),
                pods(&[(0, "new", false, false)]),
                vec![],
            ),
            (
                "ordered: next after Ready",
                set(3, false, rolling.clone()),
                pods(&[(0, "new", true, false)]),
                vec![create(1, "new")],
            ),
            (
                "parallel: all at once",
                set(3, true, rolling.clone()),
                pods(&[(1, "new", false, false)]),
                vec![create(0, "new"), create(2, "new")],
            ),
            (
                "ordered scale down: highest first, one at a time",
                set(1, false, rolling.clone()),
                pods(&[
                    (0, "new", true, false),
                    (1, "new", true, false),
                    (2, "new", true, false),
                ]),
                vec![delete(2)],
            ),
            (
                "ordered scale down waits for terminating pod",
                set(1, false, rolling.clone()),
                pods(&[
                    (0, "new", true, false),
                    (1, "new", true, false),
                    (2, "new", true, true),
                ]),
                vec![],
            ),
            (
                "parallel scale down: all condemned",
                set(1, true, rolling.clone()),
                pods(&[
                    (0, "new", true, false),
                    (1, "new", true, false),
                    (2, "new", false, false),
                ]),
                vec![delete(2), delete(1)],
            ),
            (
                "rolling: highest outdated first",
                set(3, false, rolling.clone()),
                pods(&[
                    (0, "old", true, false),
                    (1, "old", true, false),
                    (2, "old", true, false),
                ]),
                vec![delete(2)],
            ),
            (
                "rolling: waits for the updated pod to be Ready",
                set(3, true, rolling.clone()),
                pods(&[
                    (0, "old", true, false),
                    (1, "old", true, false),
                    (2, "new", false, false),
                ]),
                vec![],
            ),
            (
                "rolling: continues downwards",
                set(3, false, rolling.clone()),
                pods(&[
                    (0, "old", true, false),
                    (1, "old", true, false),
                    (2, "new", true, false),
                ]),
                vec![delete(1)],
            ),
            (
                "rolling with partition 2 leaves lower ordinals",
                set(3, false, Strategy::RollingUpdate { partition: 2 }),
                pods(&[
                    (0, "old", true, false),
                    (1, "old", true, false),
                    (2, "new", true, false),
                ]),
                vec![],
            ),
            (
                "below the partition pods are recreated at the current revision",
                set(3, true, Strategy::RollingUpdate { partition: 2 }),
                pods(&[(1, "old", true, false), (2, "new", true, false)]),
                vec![create(0, "old")],
            ),
            (
                "on delete: no update",
                set(3, false, Strategy::OnDelete),
                pods(&[
                    (0, "old", true, false),
                    (1, "old", true, false),
                    (2, "old", true, false),
                ]),
                vec![],
            ),
            (
                "on delete: a deleted pod returns at the update revision",
                set(3, false, Strategy::OnDelete),
                pods(&[(0, "old", true, false), (2, "old", true, false)]),
                vec![create(1, "new")],
            ),
        ];
        for (name, set, pods, expected) in cases {
            assert_eq!(plan(&set, &pods), expected, "{name}");
        }
    }

    #[test]
    fn status_counts() {
        let view = set(3, false, Strategy::RollingUpdate { partition: 0 });
        let mixed = pods(&[
            (0, "old", true, false),
            (1, "new", true, false),
            (2, "new", false, true),
        ]);
        assert_eq!(
            counts(&view, &mixed, true),
            Counts {
                replicas: 3,
                ready: 2,
                current: 1,
                updated: 1,
                current_revision: "old".into()
            }
        );
        let done = pods(&[
            (0, "new", true, false),
            (1, "new", true, false),
            (2, "new", true, false),
        ]);
        let rolled = counts(&view, &done, true);
        assert_eq!(
            (rolled.current, rolled.current_revision.as_str()),
            (3, "new")
        );
        // OnDelete never moves currentRevision, as in Kubernetes.
        let on_delete = counts(&view, &done, false);
        assert_eq!(
            (on_delete.current, on_delete.current_revision.as_str()),
            (0, "old")
        );
    }

    #[test]
    fn revision_numbers() {
        let mut known = BTreeMap::new();
        assert_eq!(next_revision_number(&known, "a"), Some(1));
        known.insert("a".to_owned(), 1);
        assert_eq!(
            next_revision_number(&known, "a"),
            None,
            "the newest keeps its number"
        );
        assert_eq!(next_revision_number(&known, "b"), Some(2));
        known.insert("b".to_owned(), 2);
        assert_eq!(
            next_revision_number(&known, "a"),
            Some(3),
            "rolling back moves a forward"
        );
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal_of("web", "web-3"), Some(3));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("db-aggregator", "db-aggregator-10"), Some(10));
    }

    #[test]
    fn builds_pods_and_claims() {
        let sts: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "ns", "uid": "u1"},
            "spec": {
                "serviceName": "db-pods",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": "img:1"}]}
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
            }
        }))
        .unwrap();
        let template = sts.spec.as_ref().unwrap().template.clone();
        let rev = revision_name("db", &template);
        assert!(rev.starts_with("db-"));
        let pod = build_pod(&sts, &template, 2, &rev);
        assert_eq!(pod.name_any(), "db-2");
        let labels = pod.labels();
        assert_eq!(labels[REVISION_LABEL], rev);
        assert_eq!(labels[POD_NAME_LABEL], "db-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels["app"], "db");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("StatefulSet", "u1", Some(true))
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.subdomain.as_deref(), Some("db-pods"));
        let volume = &spec.volumes.unwrap()[0];
        assert_eq!(
            volume.persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-db-2"
        );
        let claims = build_claims(&sts, "db-2");
        assert_eq!(claims[0].name_any(), "data-db-2");
        assert_eq!(claims[0].labels()["app"], "db");
    }
}
