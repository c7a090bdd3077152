//! Pure planning of an UpdateVersion: which image each container gets, which StatefulSets need a
//! template change, which pods must restart and in what order, whether a pod is done, whether it
//! failed, and whether evicting it keeps the PodDisruptionBudgets satisfied.

use std::collections::BTreeMap;

use api::ops::{ImageChange, UpdatePlan};

use crate::model::{
    ContainerImage, DbKind, KindSteps, PdbView, PodView, StsView, Target, VersionImages,
};

/// An image slot of a catalog Version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Db,
    Standalone,
    Coordinator,
    Init,
    Exporter,
}

const SLOTS: [Slot; 5] = [
    Slot::Db,
    Slot::Standalone,
    Slot::Coordinator,
    Slot::Init,
    Slot::Exporter,
];

fn image(v: &VersionImages, slot: Slot) -> Option<&str> {
    match slot {
        Slot::Db => Some(v.db.as_str()),
        Slot::Standalone => v.standalone.as_deref(),
        Slot::Coordinator => Some(v.coordinator.as_str()),
        Slot::Init => v.init.as_deref(),
        Slot::Exporter => v.exporter.as_deref(),
    }
    .filter(|i| !i.is_empty())
}

/// The slot a container fills, from its name, when its image does not identify it.
fn slot_by_name(container: &str, standalone_singlestore: bool) -> Option<Slot> {
    use api::names::{mssql, singlestore};
    match container {
        mssql::CONTAINER => Some(Slot::Db),
        singlestore::CONTAINER if standalone_singlestore => Some(Slot::Standalone),
        singlestore::CONTAINER => Some(Slot::Db),
        mssql::COORDINATOR_CONTAINER | singlestore::COORDINATOR_CONTAINER => {
            Some(Slot::Coordinator)
        }
        mssql::INIT_CONTAINER | singlestore::INIT_CONTAINER => Some(Slot::Init),
        mssql::EXPORTER_CONTAINER => Some(Slot::Exporter),
        _ => None,
    }
}

/// The image `container` (currently running `current_image`) must run at the target version, or
/// None when it keeps its image: the Version defines none for it (a user sidecar), or it is a
/// coordinator running an image neither Version names (the provisioner's `--agent-image`: the
/// in-pod agent is not part of the catalog, so a version update leaves it as it is).
///
/// The slot is found by matching the current image against the current Version first (so it
/// follows whatever the provisioner rendered), then by container name.
pub fn target_image(
    container: &str,
    current_image: &str,
    images: &Target,
    standalone_singlestore: bool,
) -> Option<String> {
    let by_image = SLOTS
        .iter()
        .copied()
        .find(|s| image(&images.current, *s) == Some(current_image));
    let slot = match by_image {
        Some(slot) => slot,
        None => {
            let slot = slot_by_name(container, standalone_singlestore)?;
            let overridden = slot == Slot::Coordinator
                && image(&images.target, slot).is_some_and(|target| target != current_image);
            if overridden {
                return None;
            }
            slot
        }
    };
    image(&images.target, slot)
        .or_else(|| {
            (slot == Slot::Standalone)
                .then(|| image(&images.target, Slot::Db))
                .flatten()
        })
        .map(str::to_owned)
}

/// Whether a StatefulSet is the standalone SingleStore one (cluster-in-a-box image).
pub fn is_standalone_singlestore(kind: DbKind, clustered: bool) -> bool {
    kind == DbKind::Singlestore && !clustered
}

/// Target images of one StatefulSet: container name → image, for containers and init containers
/// (init containers under the key `init:<name>`).
pub fn sts_targets(sts: &StsView, images: &Target, standalone: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in &sts.containers {
        if let Some(t) = target_image(&c.name, &c.image, images, standalone) {
            out.insert(c.name.clone(), t);
        }
    }
    for c in &sts.init_containers {
        if let Some(t) = target_image(&c.name, &c.image, images, standalone) {
            out.insert(init_key(&c.name), t);
        }
    }
    out
}

fn init_key(name: &str) -> String {
    format!("init:{name}")
}

/// The image changes one StatefulSet needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPatch {
    /// StatefulSet name.
    pub sts: String,
    /// Containers to change.
    pub containers: Vec<ContainerImage>,
    /// Init containers to change.
    pub init_containers: Vec<ContainerImage>,
}

fn changes(
    list: &[ContainerImage],
    targets: &BTreeMap<String, String>,
    key: impl Fn(&str) -> String,
) -> Vec<ContainerImage> {
    list.iter()
        .filter_map(|c| {
            let t = targets.get(&key(&c.name))?;
            (t != &c.image).then(|| ContainerImage::new(&c.name, t))
        })
        .collect()
}

/// The StatefulSets whose templates are not at the target yet, each with EVERY container and init
/// container image the target defines for it (not only the ones that differ).
///
/// The patch is a server-side apply under the ops-manager's field manager, and an apply states the
/// whole set of fields that manager owns: an image left out of a later apply would be removed from
/// the template if the ops-manager is its only owner (for example an init image it set in an
/// earlier request that the provisioner never re-applied). Applying the full set each time keeps
/// the result stable whatever the ownership history.
pub fn sts_patches(statefulsets: &[StsView], images: &Target, standalone: bool) -> Vec<StsPatch> {
    statefulsets
        .iter()
        .filter_map(|sts| {
            let targets = sts_targets(sts, images, standalone);
            let behind = !changes(&sts.containers, &targets, str::to_owned).is_empty()
                || !changes(&sts.init_containers, &targets, init_key).is_empty();
            behind.then(|| StsPatch {
                sts: sts.name.clone(),
                containers: wanted(&sts.containers, &targets, str::to_owned),
                init_containers: wanted(&sts.init_containers, &targets, init_key),
            })
        })
        .collect()
}

/// Every container of `list` that has a target image, with that image.
fn wanted(
    list: &[ContainerImage],
    targets: &BTreeMap<String, String>,
    key: impl Fn(&str) -> String,
) -> Vec<ContainerImage> {
    list.iter()
        .filter_map(|c| Some(ContainerImage::new(&c.name, targets.get(&key(&c.name))?)))
        .collect()
}

/// Whether `pod`'s spec already asks for every target image of its StatefulSet.
fn spec_at_target(pod: &PodView, targets: &BTreeMap<String, String>) -> bool {
    changes(&pod.containers, targets, str::to_owned).is_empty()
        && changes(&pod.init_containers, targets, init_key).is_empty()
}

fn same_image(running: &str, wanted: &str) -> bool {
    let norm = |s: &str| {
        s.strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s)
            .to_owned()
    };
    norm(running) == norm(wanted)
}

/// A pod is done when its spec and its running containers use the target images, it is Ready and
/// it is not terminating.
pub fn pod_updated(pod: &PodView, targets: &BTreeMap<String, String>) -> bool {
    let running_ok = pod.containers.iter().all(|c| match targets.get(&c.name) {
        Some(want) => pod
            .statuses
            .iter()
            .any(|s| s.name == c.name && s.ready && same_image(&s.image, want)),
        None => true,
    });
    pod.healthy() && spec_at_target(pod, targets) && running_ok
}

/// Container waiting reasons that mean the pod will not become Ready by itself soon.
const FAILING_REASONS: [&str; 6] = [
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Why `pod` is failing on its images, if it is (e.g. `container mssql: ImagePullBackOff: ...`).
pub fn pod_failure(pod: &PodView) -> Option<String> {
    pod.init_statuses
        .iter()
        .chain(pod.statuses.iter())
        .find_map(|s| {
            let reason = s.waiting_reason.as_deref()?;
            FAILING_REASONS.contains(&reason).then(|| {
                let mut cause = format!("container {} ({}): {reason}", s.name, s.image);
                if let Some(msg) = s.waiting_message.as_deref().filter(|m| !m.is_empty()) {
                    cause.push_str(": ");
                    cause.push_str(msg);
                }
                cause
            })
        })
}

/// Restart rank of a pod in its database: lower goes first.
///
/// - MSSQL: secondaries of `<db>` (0), arbiter pods (1), the primary (2).
/// - SingleStore: child aggregators (0), leaves (1), the master aggregator (2), which its agent
///   hands over to an updated child first; a standalone pod is alone anyway.
fn rank(kind: DbKind, pod: &PodView, leader: Option<&str>) -> u8 {
    let is_leader = leader == Some(pod.name.as_str());
    match kind {
        DbKind::MSSQLServer if is_leader => 2,
        DbKind::MSSQLServer if pod.sts.ends_with("-arbiter") => 1,
        DbKind::MSSQLServer => 0,
        DbKind::Singlestore if is_leader => 2,
        DbKind::Singlestore if pod.sts.ends_with("-leaf") => 1,
        DbKind::Singlestore => 0,
    }
}

/// The pod that must go last in its group: the one labelled with the leader role, else (a
/// SingleStore cluster without role labels) `<db>-aggregator-0`.
pub fn leader(kind: DbKind, pods: &[PodView], clustered: bool) -> Option<String> {
    if !clustered {
        return None;
    }
    let labelled = pods
        .iter()
        .filter(|p| !p.terminating && p.role.as_deref() == Some(kind.leader_role()))
        .min_by_key(|p| p.ordinal);
    match labelled {
        Some(p) => Some(p.name.clone()),
        None if kind == DbKind::Singlestore => pods
            .iter()
            .filter(|p| p.sts.ends_with("-aggregator"))
            .min_by_key(|p| p.ordinal)
            .map(|p| p.name.clone()),
        None => None,
    }
}

/// The plan: pods whose spec does not yet use the target images, in restart order, and every
/// container image that changes.
pub fn make_plan(
    kind: DbKind,
    clustered: bool,
    statefulsets: &[StsView],
    pods: &[PodView],
    images: &Target,
) -> UpdatePlan {
    let standalone = is_standalone_singlestore(kind, clustered);
    let targets: BTreeMap<&str, BTreeMap<String, String>> = statefulsets
        .iter()
        .map(|s| (s.name.as_str(), sts_targets(s, images, standalone)))
        .collect();
    let leader = leader(kind, pods, clustered);
    let mut restart: Vec<&PodView> = pods
        .iter()
        .filter(|p| {
            targets
                .get(p.sts.as_str())
                .is_some_and(|t| !spec_at_target(p, t))
        })
        .collect();
    restart.sort_by_key(|p| (rank(kind, p, leader.as_deref()), p.sts.clone(), p.ordinal));
    let mut image_changes: Vec<ImageChange> = Vec::new();
    for sts in statefulsets {
        let t = &targets[sts.name.as_str()];
        let pairs = sts.containers.iter().map(|c| (c, t.get(&c.name))).chain(
            sts.init_containers
                .iter()
                .map(|c| (c, t.get(&init_key(&c.name)))),
        );
        for (c, want) in pairs {
            let Some(want) = want else { continue };
            let change = ImageChange {
                container: c.name.clone(),
                from: c.image.clone(),
                to: want.clone(),
            };
            if change.from != change.to && !image_changes.contains(&change) {
                image_changes.push(change);
            }
        }
    }
    UpdatePlan {
        pods: restart.into_iter().map(|p| p.name.clone()).collect(),
        images: image_changes,
    }
}

/// The next pod to restart: a pod already in flight first; otherwise the first remaining pod of
/// the plan, except that the current leader (the role may have moved since planning) goes after
/// the other remaining pods of its own StatefulSet. `same_set` tells whether two pods share one.
pub fn next_pod<'a>(
    remaining: &[&'a str],
    in_flight: Option<&'a str>,
    leader: Option<&str>,
    same_set: impl Fn(&str, &str) -> bool,
) -> Option<&'a str> {
    if let Some(p) = in_flight {
        return Some(p);
    }
    let first = *remaining.first()?;
    if Some(first) == leader
        && let Some(other) = remaining
            .iter()
            .find(|p| **p != first && same_set(p, first))
    {
        return Some(other);
    }
    Some(first)
}

/// Whether `pod` may be evicted now: every PDB selecting it keeps its desired healthy count, and
/// without a PDB every other pod of the database is healthy (never more than one member down).
pub fn eviction_allowed(pod: &PodView, pods: &[PodView], pdbs: &[PdbView]) -> Result<(), String> {
    let healthy = |name: &str| pods.iter().any(|p| p.name == name && p.healthy());
    let covering: Vec<&PdbView> = pdbs.iter().filter(|b| b.pods.contains(&pod.name)).collect();
    for pdb in &covering {
        let now = pdb.pods.iter().filter(|n| healthy(n)).count() as i32;
        let after = now - i32::from(pod.healthy());
        if after < pdb.desired_healthy {
            return Err(format!(
                "evicting {} would leave {after} healthy pods; PodDisruptionBudget {} needs {}",
                pod.name, pdb.name, pdb.desired_healthy
            ));
        }
    }
    if covering.is_empty()
        && let Some(other) = pods.iter().find(|p| p.name != pod.name && !p.healthy())
    {
        {
            return Err(format!(
                "pod {} is not Ready yet; restarting {} now would take a second member down",
                other.name, pod.name
            ));
        }
    }
    Ok(())
}

/// `desiredHealthy` of a PDB from its spec (Kubernetes rules: percentages round up).
pub fn desired_healthy(
    min_available: Option<&IntOrPercent>,
    max_unavailable: Option<&IntOrPercent>,
    expected: i32,
) -> i32 {
    let scale = |v: &IntOrPercent| match v {
        IntOrPercent::Int(n) => *n,
        IntOrPercent::Percent(p) => (p * expected + 99) / 100,
    };
    match (min_available, max_unavailable) {
        (_, Some(max)) => (expected - scale(max)).max(0),
        (Some(min), None) => scale(min),
        (None, None) => expected,
    }
}

/// An int-or-percent PDB value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A count.
    Int(i32),
    /// A percentage.
    Percent(i32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn target_images_follow_slots_and_names() {
        let t = mssql_target();
        let cases = [
            ("mssql", MSSQL_OLD, Some(MSSQL_NEW)),
            ("mssql", "custom/mssql:x", Some(MSSQL_NEW)),
            (
                "mssql-coordinator",
                api::fixtures::MSSQL_COORDINATOR_IMAGE,
                Some(api::fixtures::MSSQL_COORDINATOR_IMAGE),
            ),
            (
                "mssql-init",
                api::fixtures::MSSQL_INIT_IMAGE,
                Some(api::fixtures::MSSQL_INIT_IMAGE),
            ),
            ("sidecar", "busybox", None),
            // The provisioner's --agent-image: a coordinator image no Version names stays.
            ("mssql-coordinator", "registry.example/db-agent:dev", None),
            ("mssql-arbiter", "registry.example/db-agent:dev", None),
        ];
        for (name, current, want) in cases {
            assert_eq!(
                target_image(name, current, &t, false).as_deref(),
                want,
                "{name}"
            );
        }
        let s = sdb_target();
        assert_eq!(
            target_image(
                "singlestore",
                &s.current.standalone.clone().unwrap(),
                &s,
                true
            ),
            s.target.standalone.clone()
        );
        assert_eq!(
            target_image("singlestore", &s.current.db, &s, false),
            Some(s.target.db.clone())
        );
    }

    #[test]
    fn plan_orders_secondaries_then_primary() {
        let t = mssql_target();
        let sts = vec![mssql_sts("db", MSSQL_OLD)];
        let mut pods = vec![
            pod("db-0", "db", 0, MSSQL_OLD, Some("secondary")),
            pod("db-1", "db", 1, MSSQL_OLD, Some("primary")),
            pod("db-2", "db", 2, MSSQL_OLD, Some("secondary")),
        ];
        let plan = make_plan(DbKind::MSSQLServer, true, &sts, &pods, &t);
        assert_eq!(plan.pods, ["db-0", "db-2", "db-1"]);
        assert_eq!(
            plan.images,
            [ImageChange {
                container: "mssql".into(),
                from: MSSQL_OLD.into(),
                to: MSSQL_NEW.into()
            }]
        );
        // A pod already on the target spec is not restarted again.
        pods[0] = pod("db-0", "db", 0, MSSQL_NEW, Some("secondary"));
        let plan = make_plan(DbKind::MSSQLServer, true, &sts, &pods, &t);
        assert_eq!(plan.pods, ["db-2", "db-1"]);
    }

    #[test]
    fn singlestore_order_is_children_leaves_master() {
        let t = sdb_target();
        let sts = vec![
            sdb_sts("s-aggregator", &t.current.db),
            sdb_sts("s-leaf", &t.current.db),
        ];
        let pods = vec![
            pod("s-leaf-1", "s-leaf", 1, &t.current.db, None),
            pod(
                "s-aggregator-0",
                "s-aggregator",
                0,
                &t.current.db,
                Some("Aggregator"),
            ),
            pod("s-leaf-0", "s-leaf", 0, &t.current.db, None),
            pod(
                "s-aggregator-1",
                "s-aggregator",
                1,
                &t.current.db,
                Some("Master"),
            ),
            pod(
                "s-aggregator-2",
                "s-aggregator",
                2,
                &t.current.db,
                Some("Aggregator"),
            ),
        ];
        let plan = make_plan(DbKind::Singlestore, true, &sts, &pods, &t);
        assert_eq!(
            plan.pods,
            [
                "s-aggregator-0",
                "s-aggregator-2",
                "s-leaf-0",
                "s-leaf-1",
                "s-aggregator-1"
            ]
        );
        // Without role labels the master is aggregator-0.
        let unlabelled: Vec<PodView> = pods
            .into_iter()
            .map(|mut p| {
                p.role = None;
                p
            })
            .collect();
        let plan = make_plan(DbKind::Singlestore, true, &sts, &unlabelled, &t);
        assert_eq!(
            plan.pods,
            [
                "s-aggregator-1",
                "s-aggregator-2",
                "s-leaf-0",
                "s-leaf-1",
                "s-aggregator-0"
            ]
        );
    }

    #[test]
    fn next_pod_defers_the_current_leader_within_its_set() {
        type Case<'a> = (
            &'a [&'a str],
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (&["a-0", "a-1"], None, None, Some("a-0")),
            (&["a-0", "a-1"], None, Some("a-0"), Some("a-1")),
            (&["a-0"], None, Some("a-0"), Some("a-0")),
            (&["a-0", "l-0"], None, Some("a-0"), Some("a-0")),
            (&["a-0", "a-1"], Some("a-1"), Some("a-0"), Some("a-1")),
            (&[], None, None, None),
        ];
        let same = |x: &str, y: &str| x[..1] == y[..1];
        for (remaining, in_flight, leader, want) in cases {
            assert_eq!(
                next_pod(remaining, in_flight, leader, same),
                want,
                "{remaining:?} {in_flight:?} {leader:?}"
            );
        }
    }

    #[test]
    fn updated_needs_target_spec_running_image_and_ready() {
        let targets = BTreeMap::from([("mssql".to_owned(), MSSQL_NEW.to_owned())]);
        let good = pod("db-0", "db", 0, MSSQL_NEW, None);
        assert!(pod_updated(&good, &targets));
        let mut not_ready = good.clone();
        not_ready.ready = false;
        let mut old_running = good.clone();
        old_running.statuses[0].image = MSSQL_OLD.into();
        let mut terminating = good.clone();
        terminating.terminating = true;
        let old_spec = pod("db-0", "db", 0, MSSQL_OLD, None);
        for (what, p) in [
            ("not ready", not_ready),
            ("old running", old_running),
            ("terminating", terminating),
            ("old spec", old_spec),
        ] {
            assert!(!pod_updated(&p, &targets), "{what}");
        }
    }

    #[test]
    fn failures_name_container_and_reason() {
        let mut p = pod("db-0", "db", 0, MSSQL_NEW, None);
        assert_eq!(pod_failure(&p), None);
        p.statuses[0].waiting_reason = Some("ErrImagePull".into());
        assert_eq!(
            pod_failure(&p),
            None,
            "a first pull error may still recover"
        );
        p.statuses[0].waiting_reason = Some("ImagePullBackOff".into());
        p.statuses[0].waiting_message = Some("Back-off pulling image".into());
        assert_eq!(
            pod_failure(&p).as_deref(),
            Some(
                format!("container mssql ({MSSQL_NEW}): ImagePullBackOff: Back-off pulling image")
                    .as_str()
            )
        );
    }

    #[test]
    fn eviction_respects_pdb_and_one_at_a_time() {
        let mut pods = vec![
            pod("db-0", "db", 0, MSSQL_OLD, None),
            pod("db-1", "db", 1, MSSQL_OLD, None),
            pod("db-2", "db", 2, MSSQL_OLD, None),
        ];
        let pdb = PdbView {
            name: "db".into(),
            pods: vec!["db-0".into(), "db-1".into(), "db-2".into()],
            desired_healthy: 2,
        };
        assert_eq!(
            eviction_allowed(&pods[0], &pods, std::slice::from_ref(&pdb)),
            Ok(())
        );
        assert_eq!(eviction_allowed(&pods[0], &pods, &[]), Ok(()));
        pods[1].ready = false;
        let err = eviction_allowed(&pods[0], &pods, std::slice::from_ref(&pdb)).unwrap_err();
        assert!(
            err.contains("would leave 1 healthy pods") && err.contains("needs 2"),
            "{err}"
        );
        assert!(
            eviction_allowed(&pods[0], &pods, &[])
                .unwrap_err()
                .contains("db-1 is not Ready")
        );
        // Evicting the pod that is itself down costs nothing.
        assert_eq!(eviction_allowed(&pods[1].clone(), &pods, &[pdb]), Ok(()));
    }

    #[test]
    fn desired_healthy_table() {
        use IntOrPercent::*;
        let cases = [
            (Some(Int(2)), None, 3, 2),
            (Some(Percent(51)), None, 3, 2),
            (None, Some(Int(1)), 3, 2),
            (None, Some(Percent(50)), 3, 1),
            (None, None, 3, 3),
        ];
        for (min, max, expected, want) in cases {
            assert_eq!(
                desired_healthy(min.as_ref(), max.as_ref(), expected),
                want,
                "{min:?} {max:?}"
            );
        }
    }

    #[test]
    fn patches_carry_every_target_image_of_sets_that_are_behind() {
        let t = mssql_target();
        let sts = vec![mssql_sts("db", MSSQL_OLD), mssql_sts("done", MSSQL_NEW)];
        let patches = sts_patches(&sts, &t, false);
        assert_eq!(
            patches,
            [StsPatch {
                sts: "db".into(),
                containers: vec![
                    ContainerImage::new("mssql", MSSQL_NEW),
                    ContainerImage::new(
                        "mssql-coordinator",
                        api::fixtures::MSSQL_COORDINATOR_IMAGE
                    ),
                ],
                init_containers: vec![ContainerImage::new(
                    "mssql-init",
                    api::fixtures::MSSQL_INIT_IMAGE
                )],
            }]
        );
    }

    #[test]
    fn a_set_missing_an_unchanged_image_converges_in_one_patch() {
        // Regression: applying only the differing image dropped the other image the
        // ops-manager alone owned, and the next patch dropped the first: an endless loop.
        let t = mssql_target();
        let mut sts = mssql_sts("db", MSSQL_NEW);
        sts.init_containers[0].image = String::new();
        let patches = sts_patches(&[sts.clone()], &t, false);
        assert_eq!(patches.len(), 1);
        assert!(
            patches[0]
                .containers
                .iter()
                .any(|c| c.name == "mssql" && c.image == MSSQL_NEW)
        );
        // Applying the patch's full set leaves nothing to do.
        let mut applied = sts;
        applied.containers = patches[0].containers.clone();
        applied.init_containers = patches[0].init_containers.clone();
        assert!(sts_patches(&[applied], &t, false).is_empty());
    }
}
