//! Database roles, standing in for KubeDB's SingleStore coordinator sidecars.
//!
//! SQL Server availability groups are not handled here any more: the product's own in-pod agent
//! (`db-agent`) elects, fails over and labels them, against the simulated SQL Servers of
//! `crate::db::mssql`. This stand-in remains for SingleStore until its agent exists.
//!
//! Rule: the pods of one SingleStore aggregator StatefulSet (labels
//! `app.kubernetes.io/name=singlestores.kubedb.com`, `app.kubernetes.io/instance=<db>`, a
//! `singlestore-coordinator` container, and a StatefulSet name ending in `-aggregator`) form a
//! group. In each group exactly one pod carries the leader role (`kubedb.com/role=master`) and
//! every other pod the follower role (`aggregator`). The first leader is the lowest-ordinal Ready
//! pod. When the leader is deleted, evicted, gone or not Ready for `--failover-delay`, the
//! lowest-ordinal Ready, non-terminating follower is promoted; a pod that comes back in the old
//! leader's place (a new uid) joins as a follower. (The decision function is generic over the
//! role names; its tests use SQL Server's.)

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::pods::is_healthy;
use super::statefulset::POD_INDEX_LABEL;

pub const ROLE_LABEL: &str = "kubedb.com/role";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MSSQL_NAME: &str = "mssqlservers.kubedb.com";
pub const MSSQL_COORDINATOR: &str = "mssql-coordinator";
pub const MSSQL_PRIMARY: &str = "primary";
pub const MSSQL_SECONDARY: &str = "secondary";
pub const SINGLESTORE_NAME: &str = "singlestores.kubedb.com";
pub const SINGLESTORE_COORDINATOR: &str = "singlestore-coordinator";
pub const SINGLESTORE_MASTER: &str = "master";
pub const SINGLESTORE_AGGREGATOR: &str = "aggregator";

/// Identifies a group: namespace, database, StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub namespace: String,
    pub instance: String,
    pub set: String,
}

/// Leader and follower label values of a group's database kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleNames {
    pub leader: &'static str,
    pub follower: &'static str,
}

pub const MSSQL_ROLES: RoleNames = RoleNames {
    leader: MSSQL_PRIMARY,
    follower: MSSQL_SECONDARY,
};
pub const SINGLESTORE_ROLES: RoleNames = RoleNames {
    leader: SINGLESTORE_MASTER,
    follower: SINGLESTORE_AGGREGATOR,
};

/// The group a pod belongs to, if any.
pub fn group_of(pod: &Pod) -> Option<(GroupKey, RoleNames)> {
    let labels = pod.labels();
    let instance = labels.get(INSTANCE_LABEL)?.clone();
    let has = |container: &str| {
        pod.spec
            .as_ref()
            .is_some_and(|s| s.containers.iter().any(|c| c.name == container))
    };
    let set = pod
        .name_any()
        .rsplit_once('-')
        .map(|(set, _)| set.to_owned())?;
    let roles = match labels.get(NAME_LABEL)?.as_str() {
        SINGLESTORE_NAME if has(SINGLESTORE_COORDINATOR) && set.ends_with("-aggregator") => {
            SINGLESTORE_ROLES
        }
        _ => return None,
    };
    Some((
        GroupKey {
            namespace: pod.namespace()?,
            instance,
            set,
        },
        roles,
    ))
}

/// A pod as the role logic sees it.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub uid: String,
    pub ordinal: i32,
    pub healthy: bool,
    pub terminating: bool,
    pub role: Option<String>,
}

/// What the controller remembers per group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupState {
    /// Uid of the current leader.
    pub leader: Option<String>,
    /// Name of the current leader's pod: a pod returning under that name is not promoted.
    pub leader_name: Option<String>,
    /// When the leader was first seen unhealthy or gone.
    pub unhealthy_since: Option<Instant>,
}

/// Decision of one pass for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub state: GroupState,
    /// Label changes: pod name → role value.
    pub labels: BTreeMap<String, String>,
    /// When to look again (a pending failover).
    pub wake: Option<Duration>,
}

/// Chooses the leader and the labels of a group. Pure.
pub fn decide(
    members: &[Member],
    state: &GroupState,
    roles: RoleNames,
    now: Instant,
    delay: Duration,
) -> Decision {
    let mut state = state.clone();
    let mut wake = None;
    // Adopt a labelled leader when starting without memory.
    let pick = |m: Option<&Member>| (m.map(|m| m.uid.clone()), m.map(|m| m.name.clone()));
    if state.leader.is_none() {
        (state.leader, state.leader_name) = pick(
            members
                .iter()
                .filter(|m| m.role.as_deref() == Some(roles.leader) && m.healthy)
                .min_by_key(|m| m.ordinal),
        );
    }
    let promotable = |old_name: Option<&String>| {
        members
            .iter()
            .filter(|m| m.healthy && Some(&m.name) != old_name)
            .min_by_key(|m| m.ordinal)
    };
    match state.leader.clone() {
        None => {
            (state.leader, state.leader_name) = pick(promotable(None));
            state.unhealthy_since = None;
        }
        Some(leader) => {
            let healthy = members.iter().any(|m| m.uid == leader && m.healthy);
            if healthy {
                state.unhealthy_since = None;
            } else {
                let since = *state.unhealthy_since.get_or_insert(now);
                let due = since + delay;
                if now >= due {
                    // Prefer another pod; a lone group re-elects the pod that came back.
                    let fallback = || {
                        members
                            .iter()
                            .filter(|m| m.healthy && m.uid != leader)
                            .min_by_key(|m| m.ordinal)
                    };
                    if let Some(next) = promotable(state.leader_name.as_ref()).or_else(fallback) {
                        (state.leader, state.leader_name) = pick(Some(next));
                        state.unhealthy_since = None;
                    }
                    // Without a Ready candidate, keep waiting for any change.
                } else {
                    wake = Some(due - now);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for m in members {
        if m.terminating {
            continue;
        }
        let desired = if Some(&m.uid) == state.leader.as_ref() {
            roles.leader
        } else if state.leader.is_some() {
            roles.follower
        } else {
            continue;
        };
        if m.role.as_deref() != Some(desired) {
            labels.insert(m.name.clone(), desired.to_owned());
        }
    }
    Decision {
        state,
        labels,
        wake,
    }
}

/// The role controller.
pub struct Controller {
    pub client: Client,
    pub pods: Store<Pod>,
    pub delay: Duration,
    pub groups: HashMap<GroupKey, GroupState>,
}

impl Controller {
    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let mut grouped: BTreeMap<GroupKey, (RoleNames, Vec<Member>)> = BTreeMap::new();
        for pod in self.pods.state() {
            let Some((key, roles)) = group_of(&pod) else {
                continue;
            };
            let ordinal = pod
                .labels()
                .get(POD_INDEX_LABEL)
                .and_then(|i| i.parse().ok())
                .or_else(|| {
                    pod.name_any()
                        .rsplit_once('-')
                        .and_then(|(_, o)| o.parse().ok())
                })
                .unwrap_or(i32::MAX);
            grouped
                .entry(key)
                .or_insert_with(|| (roles, Vec::new()))
                .1
                .push(Member {
                    name: pod.name_any(),
                    uid: pod.uid().unwrap_or_default(),
                    ordinal,
                    healthy: is_healthy(&pod),
                    terminating: pod.metadata.deletion_timestamp.is_some(),
                    role: pod.labels().get(ROLE_LABEL).cloned(),
                });
        }
        // Groups whose pods are all gone are forgotten only when the set is empty; keep
        // memory for groups with no pods right now so a returning pod is not made leader early.
        let mut next = None;
        let now = Instant::now();
        let keys: Vec<GroupKey> = self
            .groups
            .keys()
            .cloned()
            .chain(grouped.keys().cloned())
            .collect();
        for key in keys {
            let (roles, members) = match grouped.get(&key) {
                Some((roles, members)) => (*roles, members.as_slice()),
                None => {
                    self.groups.remove(&key);
                    continue;
                }
            };
            let state = self.groups.get(&key).cloned().unwrap_or_default();
            let decision = decide(members, &state, roles, now, self.delay);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
            for (pod, role) in &decision.labels {
                let patch = serde_json::json!({ "metadata": { "labels": { ROLE_LABEL: role } } });
                match api
                    .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            next = super::informers::earliest(next, decision.wake);
            self.groups.insert(key, decision.state);
        }
        Ok(next)
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

    fn member(ordinal: i32, uid: &str, healthy: bool, role: Option<&str>) -> Member {
        Member {
            name: format!("db-{ordinal}"),
            uid: uid.to_owned(),
            ordinal,
            healthy,
            terminating: false,
            role: role.map(str::to_owned),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bootstrap_elects_lowest_ready_ordinal() {
        let now = Instant::now();
        let members = [
            member(0, "a", false, None),
            member(1, "b", true, None),
            member(2, "c", true, None),
        ];
        let d = decide(
            &members,
            &GroupState::default(),
            MSSQL_ROLES,
            now,
            Duration::from_secs(1),
        );
        assert_eq!(d.state.leader.as_deref(), Some("b"));
        assert_eq!(
            d.labels,
            labels(&[
                ("db-0", "secondary"),
                ("db-1", "primary"),
                ("db-2", "secondary")
            ])
        );
        assert_eq!(d.wake, None);
    }

    #[test]
    fn nothing_labelled_without_a_ready_pod() {
        let members = [member(0, "a", false, None)];
        let d = decide(
            &members,
            &GroupState::default(),
            MSSQL_ROLES,
            Instant::now(),
            Duration::from_secs(1),
        );
        assert!(d.labels.is_empty() && d.state.leader.is_none());
    }

    #[test]
    fn failover_waits_for_the_delay_then_promotes() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(1);
        let state = GroupState {
            leader: Some("a".into()),
            leader_name: Some("db-0".into()),
            unhealthy_since: None,
        };
        // Leader gone (its pod was deleted); a replacement with a new uid is already Ready.
        let members = [
            member(0, "a2", true, None),
            member(1, "b", true, Some("secondary")),
            member(2, "c", true, Some("secondary")),
        ];
        let waiting = decide(&members, &state, MSSQL_ROLES, t0, delay);
        assert_eq!(waiting.state.leader.as_deref(), Some("a"));
        assert_eq!(waiting.wake, Some(delay));
        assert_eq!(waiting.labels, labels(&[("db-0", "secondary")]));

        let promoted = decide(&members, &waiting.state, MSSQL_ROLES, t0 + delay, delay);
        assert_eq!(
            promoted.state.leader.as_deref(),
            Some("b"),
            "lowest Ready ordinal other than the old leader's pod"
        );
        assert_eq!(
            promoted.labels,
            labels(&[("db-0", "secondary"), ("db-1", "primary")])
        );
    }

    #[test]
    fn failover_skips_the_unhealthy_old_leader() {
        let t0 = Instant::now();
        let delay = Duration::from_millis(500);
        let state = GroupState {
            leader: Some("a".into()),
            leader_name: Some("db-0".into()),
            unhealthy_since: Some(t0),
        };
        let mut old = member(0, "a", false, Some("primary"));
        old.terminating = false;
        let members = [
            old,
            member(1, "b", false, Some("secondary")),
            member(2, "c", true, Some("secondary")),
        ];
        let d = decide(&members, &state, MSSQL_ROLES, t0 + delay, delay);
        assert_eq!(d.state.leader.as_deref(), Some("c"));
        assert_eq!(
            d.labels,
            labels(&[("db-0", "secondary"), ("db-2", "primary")])
        );
    }

    #[test]
    fn leader_recovering_in_time_keeps_its_role() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(1);
        let state = GroupState {
            leader: Some("a".into()),
            leader_name: Some("db-0".into()),
            unhealthy_since: Some(t0),
        };
        let members = [
            member(0, "a", true, Some("primary")),
            member(1, "b", true, Some("secondary")),
        ];
        let d = decide(
            &members,
            &state,
            MSSQL_ROLES,
            t0 + Duration::from_millis(300),
            delay,
        );
        assert_eq!(
            d.state,
            GroupState {
                leader: Some("a".into()),
                leader_name: Some("db-0".into()),
                unhealthy_since: None
            }
        );
        assert!(d.labels.is_empty());
    }

    #[test]
    fn adopts_labelled_leader_and_fixes_duplicates() {
        let members = [
            member(0, "a", true, Some("master")),
            member(1, "b", true, Some("master")),
            member(2, "c", true, None),
        ];
        let d = decide(
            &members,
            &GroupState::default(),
            SINGLESTORE_ROLES,
            Instant::now(),
            Duration::from_secs(1),
        );
        assert_eq!(d.state.leader.as_deref(), Some("a"));
        assert_eq!(
            d.labels,
            labels(&[("db-1", "aggregator"), ("db-2", "aggregator")])
        );
    }

    #[test]
    fn recognises_groups() {
        let pod = |name: &str, kind: &str, container: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {NAME_LABEL: kind, INSTANCE_LABEL: "db"}},
                "spec": {"containers": [{"name": container}]}
            }))
            .unwrap()
        };
        assert!(
            group_of(&pod("db-1", MSSQL_NAME, MSSQL_COORDINATOR)).is_none(),
            "SQL Server roles are the agents' business"
        );
        let (key, roles) = group_of(&pod(
            "db-aggregator-0",
            SINGLESTORE_NAME,
            SINGLESTORE_COORDINATOR,
        ))
        .unwrap();
        assert_eq!(
            (key.set.as_str(), roles),
            ("db-aggregator", SINGLESTORE_ROLES)
        );
        assert!(group_of(&pod("db-leaf-0", SINGLESTORE_NAME, SINGLESTORE_COORDINATOR)).is_none());
    }
}
