//! The simulated kubelet of the single node: scheduling, pod IPs, container states, readiness,
//! image pull failures, graceful termination, and (through the process runtime) real processes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::pods::is_terminating;
use super::process::{ContainerProcess, ProcessRuntime, ProcessState};
use super::util::{fnv32a, glob_match, time_at};

/// Annotation that makes a pod fail readiness while it is `"false"`.
pub const READY_ANNOTATION: &str = "sim.kube-sim.dev/ready";
/// Time from ErrImagePull to ImagePullBackOff.
pub const IMAGE_PULL_BACKOFF_AFTER: Duration = Duration::from_millis(500);
/// Simulated time containers without a process need to stop (capped by the grace period).
pub const SIMULATED_STOP: Duration = Duration::from_millis(100);
/// The node's address.
pub const HOST_IP: &str = "127.0.0.1";

/// Lifecycle stage of a pod on the simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Scheduled; containers are being created (`--pod-start-delay`).
    Creating,
    /// Some image cannot be pulled; `backoff` after [`IMAGE_PULL_BACKOFF_AFTER`].
    PullFailed {
        images: BTreeSet<String>,
        backoff: bool,
    },
    /// Containers started at `since`.
    Running { since: Timestamp },
}

/// What the kubelet remembers about a pod (by uid).
#[derive(Debug)]
pub struct PodRuntime {
    pub ip: Ipv4Addr,
    pub scheduled: Timestamp,
    pub scheduled_at: Instant,
    pub stage: Stage,
    pub stage_at: Instant,
    pub terminating_at: Option<Instant>,
    pub processes: BTreeMap<String, ContainerProcess>,
    /// The last status written, so a server that normalises it differently cannot cause a loop.
    pub last_written: Option<PodStatus>,
    /// The pod's resourceVersion when a reconcile last found nothing further to do (no pending
    /// delay, no processes to watch): until the pod changes, passes skip it.
    pub settled_at: Option<String>,
}

/// A deterministic image digest (`sha256:` + 64 hex digits derived from the image string with
/// FNV-1a; not a real SHA-256, since there are no image bytes).
pub fn image_id(image: &str) -> String {
    let mut hex = String::with_capacity(64);
    for round in 0u8..8 {
        let mut bytes = image.as_bytes().to_vec();
        bytes.push(round);
        hex.push_str(&format!("{:08x}", fnv32a(&bytes)));
    }
    format!("sha256:{hex}")
}

/// Allocates distinct loopback pod IPs. The first 254 are `127.A.B.1` to `127.A.B.254`, where A.B
/// are the API server's port (so several simulated clusters on one machine do not collide); more
/// pods continue in the following /24 blocks `127.A.(B+1).x`, and so on. Never `127.0.0.x`.
/// Freed addresses are reused lowest first.
#[derive(Debug)]
pub struct IpAllocator {
    prefix: [u8; 2],
    used: BTreeSet<u32>,
}

/// Hosts per /24 block (x in 1..=254).
const HOSTS_PER_BLOCK: u32 = 254;

impl IpAllocator {
    pub fn for_port(port: u16) -> Self {
        let [hi, lo] = port.to_be_bytes();
        // Keep clear of 127.0.x.x, where the API server itself listens.
        let prefix = if hi == 0 { [1, lo] } else { [hi, lo] };
        IpAllocator {
            prefix,
            used: BTreeSet::new(),
        }
    }

    fn address(&self, index: u32) -> Ipv4Addr {
        let block = (u32::from(self.prefix[1]) + index / HOSTS_PER_BLOCK) % 256;
        let host = index % HOSTS_PER_BLOCK + 1;
        Ipv4Addr::new(127, self.prefix[0], block as u8, host as u8)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        // The lowest index not in use: the first gap in the sorted set.
        let mut index = 0;
        for &used in &self.used {
            if used != index {
                break;
            }
            index += 1;
        }
        if index >= HOSTS_PER_BLOCK * 256 {
            return None;
        }
        self.used.insert(index);
        Some(self.address(index))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        let [_, a, block, host] = ip.octets();
        if a != self.prefix[0] || host == 0 || host == 255 {
            return;
        }
        let block_index = (u32::from(block) + 256 - u32::from(self.prefix[1])) % 256;
        self.used
            .remove(&(block_index * HOSTS_PER_BLOCK + u32::from(host) - 1));
    }
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, since: Time) -> PodCondition {
    PodCondition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.map(str::to_owned),
        last_transition_time: Some(since),
        ..PodCondition::default()
    }
}

/// Keeps the previous transition time of a condition whose status did not change.
fn stable_conditions(
    mut desired: Vec<PodCondition>,
    previous: Option<&PodStatus>,
) -> Vec<PodCondition> {
    let old = previous.and_then(|s| s.conditions.as_ref());
    for cond in &mut desired {
        if let Some(prev) = old.and_then(|o| o.iter().find(|c| c.type_ == cond.type_))
            && prev.status == cond.status
            && prev.last_transition_time.is_some()
        {
            cond.last_transition_time = prev.last_transition_time.clone();
        }
    }
    desired
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message,
        }),
        ..ContainerState::default()
    }
}

fn terminated(exit_code: i32) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.to_owned()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn running(since: Timestamp) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(time_at(since)),
        }),
        ..ContainerState::default()
    }
}

/// The status the kubelet reports for a pod. Pure: all inputs explicit.
pub fn pod_status(
    pod: &Pod,
    rt: &PodRuntime,
    processes: &BTreeMap<String, ProcessState>,
    now: Timestamp,
    previous: Option<&PodStatus>,
) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let readiness_disabled =
        pod.annotations().get(READY_ANNOTATION).map(String::as_str) == Some("false");
    let terminating = is_terminating(pod);
    let now_t = time_at(now);
    let scheduled = time_at(rt.scheduled);

    let mut all_ready = true;
    let mut container_statuses = Vec::new();
    for c in &spec.containers {
        let image = c.image.clone().unwrap_or_default();
        let mut last_state = None;
        let (state, ready, started, restarts, id) = match &rt.stage {
            Stage::Creating => (
                waiting("ContainerCreating", None),
                false,
                false,
                0,
                String::new(),
            ),
            Stage::PullFailed { images, backoff } if images.contains(&image) => {
                let (reason, message) = if *backoff {
                    (
                        "ImagePullBackOff",
                        format!("Back-off pulling image \"{image}\""),
                    )
                } else {
                    (
                        "ErrImagePull",
                        format!("simulated: image \"{image}\" matches --unpullable-image"),
                    )
                };
                (
                    waiting(reason, Some(message)),
                    false,
                    false,
                    0,
                    String::new(),
                )
            }
            Stage::PullFailed { .. } => (
                waiting("ContainerCreating", None),
                false,
                false,
                0,
                String::new(),
            ),
            Stage::Running { since } => match processes.get(&c.name) {
                Some(p) => {
                    let state = if p.running {
                        running(p.started_at.unwrap_or(*since))
                    } else if let (Some(code), true) = (p.last_exit_code, p.stopped) {
                        terminated(code)
                    } else {
                        waiting(
                            p.waiting_reason.as_deref().unwrap_or("ContainerCreating"),
                            p.message.clone(),
                        )
                    };
                    last_state = p.last_exit_code.filter(|_| !p.stopped).map(terminated);
                    (
                        state,
                        p.running && p.ready,
                        p.running,
                        p.restart_count,
                        image_id(&image),
                    )
                }
                None => (running(*since), true, true, 0, image_id(&image)),
            },
        };
        let ready = ready && !readiness_disabled && !terminating;
        all_ready &= ready;
        container_statuses.push(ContainerStatus {
            name: c.name.clone(),
            image: image.clone(),
            image_id: id,
            ready,
            started: Some(started),
            restart_count: restarts,
            state: Some(state),
            last_state,
            container_id: started
                .then(|| format!("kube-sim://{}/{}", pod.uid().unwrap_or_default(), c.name)),
            ..ContainerStatus::default()
        });
    }

    let running_stage = matches!(rt.stage, Stage::Running { .. });
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let image = c.image.clone().unwrap_or_default();
            let state = if running_stage {
                ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 0,
                        reason: Some("Completed".to_owned()),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                }
            } else {
                waiting("PodInitializing", None)
            };
            ContainerStatus {
                name: c.name.clone(),
                image: image.clone(),
                image_id: if running_stage {
                    image_id(&image)
                } else {
                    String::new()
                },
                ready: running_stage,
                started: Some(false),
                restart_count: 0,
                state: Some(state),
                ..ContainerStatus::default()
            }
        })
        .collect();

    let not_ready_reason = (!all_ready).then_some("ContainersNotReady");
    let conditions = vec![
        condition("PodReadyToStartContainers", true, None, scheduled.clone()),
        condition(
            "Initialized",
            running_stage || init_statuses.is_empty(),
            None,
            scheduled.clone(),
        ),
        condition(
            "ContainersReady",
            all_ready,
            not_ready_reason,
            now_t.clone(),
        ),
        condition("Ready", all_ready, not_ready_reason, now_t),
        condition("PodScheduled", true, None, scheduled.clone()),
    ];
    let ip = rt.ip.to_string();
    PodStatus {
        phase: Some(if running_stage { "Running" } else { "Pending" }.to_owned()),
        conditions: Some(stable_conditions(conditions, previous)),
        host_ip: Some(HOST_IP.to_owned()),
        host_ips: Some(vec![HostIP {
            ip: HOST_IP.to_owned(),
        }]),
        pod_ip: Some(ip.clone()),
        pod_ips: Some(vec![PodIP { ip }]),
        start_time: Some(scheduled),
        container_statuses: Some(container_statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        qos_class: previous
            .and_then(|p| p.qos_class.clone())
            .or_else(|| Some("BestEffort".to_owned())),
        ..PodStatus::default()
    }
}

/// The next lifecycle stage of a pod that has spent `elapsed` in `stage`, and how long until
/// the stage after that is due. Pure: the caller supplies the clock.
pub fn advance(
    stage: &Stage,
    elapsed: Duration,
    start_delay: Duration,
    unpullable: &BTreeSet<String>,
    now: Timestamp,
) -> (Option<Stage>, Option<Duration>) {
    match stage {
        Stage::Creating if elapsed < start_delay => (None, Some(start_delay - elapsed)),
        Stage::Creating if unpullable.is_empty() => (Some(Stage::Running { since: now }), None),
        Stage::Creating => (
            Some(Stage::PullFailed {
                images: unpullable.clone(),
                backoff: false,
            }),
            Some(IMAGE_PULL_BACKOFF_AFTER),
        ),
        Stage::PullFailed { backoff: false, .. } if elapsed < IMAGE_PULL_BACKOFF_AFTER => {
            (None, Some(IMAGE_PULL_BACKOFF_AFTER - elapsed))
        }
        Stage::PullFailed {
            images,
            backoff: false,
        } => (
            Some(Stage::PullFailed {
                images: images.clone(),
                backoff: true,
            }),
            None,
        ),
        _ => (None, None),
    }
}

/// The kubelet controller.
pub struct Kubelet {
    pub client: Client,
    pub pods: Store<Pod>,
    pub node_name: String,
    pub start_delay: Duration,
    pub unpullable: Vec<String>,
    pub ips: IpAllocator,
    pub runtime: Arc<ProcessRuntime>,
    pub state: HashMap<String, PodRuntime>,
}

impl Kubelet {
    async fn pass_once(&mut self) -> anyhow::Result<Option<Duration>> {
        let pods = self.pods.state();
        let live: BTreeSet<String> = pods.iter().filter_map(|p| p.uid()).collect();
        let gone: Vec<String> = self
            .state
            .keys()
            .filter(|uid| !live.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(rt) = self.state.remove(&uid) {
                for process in rt.processes.into_values() {
                    process.stop(Duration::ZERO).await;
                }
                self.ips.release(rt.ip);
            }
        }
        let mut next: Option<Duration> = None;
        for pod in &pods {
            let uid = pod.uid().unwrap_or_default();
            let rv = pod.resource_version();
            if rv.is_some() && self.state.get(&uid).is_some_and(|rt| rt.settled_at == rv) {
                continue;
            }
            let result = self.reconcile(pod).await;
            if let Some(rt) = self.state.get_mut(&uid) {
                let settled = matches!(result, Ok(None)) && rt.processes.is_empty();
                rt.settled_at = if settled { rv } else { None };
            }
            let wake = match result {
                Ok(wake) => wake,
                Err(error) => {
                    tracing::warn!(pod = %pod.name_any(), error = %format!("{error:#}"), "sim kubelet");
                    Some(super::informers::RETRY_AFTER_ERROR)
                }
            };
            next = super::informers::earliest(next, wake);
        }
        Ok(next)
    }

    fn unpullable_images(&self, pod: &Pod) -> BTreeSet<String> {
        pod.spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .filter_map(|c| c.image.clone())
            .filter(|image| self.unpullable.iter().any(|p| glob_match(p, image)))
            .collect()
    }

    async fn reconcile(&mut self, pod: &Arc<Pod>) -> anyhow::Result<Option<Duration>> {
        let (Some(uid), Some(ns)) = (pod.uid(), pod.namespace()) else {
            return Ok(None);
        };
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        match node {
            Some(node) if node != self.node_name => return Ok(None),
            Some(_) => {}
            None if is_terminating(pod) => {}
            None => {
                let patch = serde_json::json!({ "spec": { "nodeName": self.node_name } });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
        }
        let now = Instant::now();
        if !self.state.contains_key(&uid) {
            let Some(ip) = self.ips.allocate() else {
                anyhow::bail!("no free simulated pod IP for {ns}/{name}");
            };
            self.state.insert(
                uid.clone(),
                PodRuntime {
                    ip,
                    scheduled: Timestamp::now(),
                    scheduled_at: now,
                    stage: Stage::Creating,
                    stage_at: now,
                    terminating_at: None,
                    processes: BTreeMap::new(),
                    last_written: None,
                    settled_at: None,
                },
            );
        }
        let unpullable = self.unpullable_images(pod);
        let start_delay = self.start_delay;
        let runtime = self.runtime.clone();
        let rt = self.state.get_mut(&uid).expect("inserted above");
        let mut wake = None;

        if is_terminating(pod) {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30)
                .max(0);
            let grace = Duration::from_secs(grace as u64);
            let first = rt.terminating_at.is_none();
            let since = *rt.terminating_at.get_or_insert(now);
            if first {
                for process in rt.processes.values() {
                    process.begin_stop(grace);
                }
            }
            let stopped = if rt.processes.is_empty() {
                let stop = SIMULATED_STOP.min(grace);
                let due = since + stop;
                if now < due {
                    wake = Some(due - now);
                }
                now >= due
            } else {
                rt.processes.values().all(|p| p.state().exited())
            };
            if stopped {
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(None);
            }
        } else {
            let (next, after) = advance(
                &rt.stage,
                now.saturating_duration_since(rt.stage_at),
                start_delay,
                &unpullable,
                Timestamp::now(),
            );
            wake = after;
            if let Some(next) = next {
                rt.stage = next;
                rt.stage_at = now;
                if matches!(rt.stage, Stage::Running { .. }) {
                    let env_pod = (**pod).clone();
                    for container in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                        match runtime.start(&env_pod, container, rt.ip).await {
                            Ok(Some(process)) => {
                                rt.processes.insert(container.name.clone(), process);
                            }
                            Ok(None) => {}
                            Err(error) => {
                                // E.g. a referenced Secret does not exist yet: stay in
                                // ContainerCreating and retry (the pass error schedules it).
                                for process in std::mem::take(&mut rt.processes).into_values() {
                                    process.stop(Duration::ZERO).await;
                                }
                                rt.stage = Stage::Creating;
                                return Err(error);
                            }
                        }
                    }
                    if !rt.processes.is_empty() {
                        for container in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                            if rt.processes.contains_key(&container.name) {
                                continue;
                            }
                            if let Some(probe) = runtime.probe_only(&env_pod, container, rt.ip) {
                                rt.processes.insert(container.name.clone(), probe);
                            }
                        }
                    }
                }
            }
        }

        let processes: BTreeMap<String, ProcessState> = rt
            .processes
            .iter()
            .map(|(name, p)| (name.clone(), p.state()))
            .collect();
        let desired = pod_status(pod, rt, &processes, Timestamp::now(), pod.status.as_ref());
        // A terminating pod's status is left as it was: the kubelet's final grace-0 delete removes
        // it, and an update of a terminating object without finalizers could remove it early.
        if !is_terminating(pod)
            && pod.status.as_ref() != Some(&desired)
            && rt.last_written.as_ref() != Some(&desired)
        {
            rt.last_written = Some(desired.clone());
            let patch = serde_json::json!({ "status": desired });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(wake)
    }
}

impl super::informers::Pass for Kubelet {
    async fn pass(&mut self) -> anyhow::Result<Option<Duration>> {
        self.pass_once().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "annotations": annotations},
            "spec": {
                "initContainers": [{"name": "init", "image": "init:1"}],
                "containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "bad:1"}]
            }
        }))
        .unwrap()
    }

    fn runtime(stage: Stage) -> PodRuntime {
        PodRuntime {
            ip: Ipv4Addr::new(127, 1, 2, 3),
            scheduled: Timestamp::from_second(1_000).unwrap(),
            scheduled_at: Instant::now(),
            stage,
            stage_at: Instant::now(),
            terminating_at: None,
            processes: BTreeMap::new(),
            last_written: None,
            settled_at: None,
        }
    }

    fn cond<'a>(status: &'a PodStatus, type_: &str) -> &'a PodCondition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    fn reason(status: &PodStatus, container: usize) -> Option<String> {
        status.container_statuses.as_ref().unwrap()[container]
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
    }

    #[test]
    fn lifecycle_statuses() {
        let now = Timestamp::from_second(2_000).unwrap();
        let empty = BTreeMap::new();
        let creating = pod_status(
            &pod(serde_json::json!({})),
            &runtime(Stage::Creating),
            &empty,
            now,
            None,
        );
        assert_eq!(creating.phase.as_deref(), Some("Pending"));
        assert_eq!(reason(&creating, 0).as_deref(), Some("ContainerCreating"));
        assert_eq!(cond(&creating, "Ready").status, "False");
        assert_eq!(cond(&creating, "PodScheduled").status, "True");
        assert_eq!(creating.pod_ip.as_deref(), Some("127.1.2.3"));

        let running = runtime(Stage::Running { since: now });
        let ready = pod_status(&pod(serde_json::json!({})), &running, &empty, now, None);
        assert_eq!(ready.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&ready, "Ready").status, "True");
        let cs = &ready.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready && cs.started == Some(true));
        assert_eq!(cs.image_id, image_id("img:1"));
        assert!(
            ready.init_container_statuses.as_ref().unwrap()[0]
                .state
                .as_ref()
                .unwrap()
                .terminated
                .is_some()
        );

        let overridden = pod_status(
            &pod(serde_json::json!({READY_ANNOTATION: "false"})),
            &running,
            &empty,
            now,
            None,
        );
        assert_eq!(overridden.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&overridden, "Ready").status, "False");
        assert_eq!(
            cond(&overridden, "ContainersReady").reason.as_deref(),
            Some("ContainersNotReady")
        );

        let images: BTreeSet<String> = ["bad:1".to_owned()].into();
        let err = pod_status(
            &pod(serde_json::json!({})),
            &runtime(Stage::PullFailed {
                images: images.clone(),
                backoff: false,
            }),
            &empty,
            now,
            None,
        );
        assert_eq!(reason(&err, 1).as_deref(), Some("ErrImagePull"));
        let backoff = pod_status(
            &pod(serde_json::json!({})),
            &runtime(Stage::PullFailed {
                images,
                backoff: true,
            }),
            &empty,
            now,
            None,
        );
        assert_eq!(reason(&backoff, 1).as_deref(), Some("ImagePullBackOff"));
        assert_eq!(backoff.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&backoff, "Ready").status, "False");
    }

    #[test]
    fn stages_advance_on_explicit_time() {
        let now = Timestamp::from_second(5_000).unwrap();
        let delay = Duration::from_millis(500);
        let none = BTreeSet::new();
        let bad: BTreeSet<String> = ["bad:1".to_owned()].into();
        let failed = |backoff| Stage::PullFailed {
            images: bad.clone(),
            backoff,
        };
        let ms = Duration::from_millis;
        let cases = [
            (Stage::Creating, ms(100), &none, (None, Some(ms(400)))),
            (
                Stage::Creating,
                ms(500),
                &none,
                (Some(Stage::Running { since: now }), None),
            ),
            (
                Stage::Creating,
                ms(900),
                &bad,
                (Some(failed(false)), Some(IMAGE_PULL_BACKOFF_AFTER)),
            ),
            (
                failed(false),
                ms(200),
                &bad,
                (None, Some(IMAGE_PULL_BACKOFF_AFTER - ms(200))),
            ),
            (
                failed(false),
                IMAGE_PULL_BACKOFF_AFTER,
                &bad,
                (Some(failed(true)), None),
            ),
            (failed(true), ms(10_000), &bad, (None, None)),
            (
                Stage::Running { since: now },
                ms(10_000),
                &none,
                (None, None),
            ),
        ];
        for (stage, elapsed, unpullable, expected) in cases {
            assert_eq!(
                advance(&stage, elapsed, delay, unpullable, now),
                expected,
                "{stage:?} after {elapsed:?}"
            );
        }
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let running = runtime(Stage::Running {
            since: Timestamp::from_second(1_500).unwrap(),
        });
        let p = pod(serde_json::json!({}));
        let empty = BTreeMap::new();
        let first = pod_status(
            &p,
            &running,
            &empty,
            Timestamp::from_second(2_000).unwrap(),
            None,
        );
        let later = pod_status(
            &p,
            &running,
            &empty,
            Timestamp::from_second(9_000).unwrap(),
            Some(&first),
        );
        assert_eq!(first, later, "a steady pod must not cause status writes");
    }

    #[test]
    fn allocates_distinct_loopback_ips() {
        let mut ips = IpAllocator::for_port(40_123);
        let a = ips.allocate().unwrap();
        let b = ips.allocate().unwrap();
        assert_ne!(a, b);
        assert!(a.is_loopback() && a != Ipv4Addr::LOCALHOST);
        assert_eq!(a.octets()[1..3], 40_123u16.to_be_bytes());
        ips.release(a);
        assert_eq!(ips.allocate().unwrap(), a);
        let mut low = IpAllocator::for_port(80);
        assert_eq!(low.allocate().unwrap().octets()[..3], [127, 1, 80]);
        let mut many = IpAllocator::for_port(0x1380);
        let first: Vec<Ipv4Addr> = (0..300).map(|_| many.allocate().unwrap()).collect();
        assert_eq!(first[253], Ipv4Addr::new(127, 0x13, 0x80, 254));
        assert_eq!(
            first[254],
            Ipv4Addr::new(127, 0x13, 0x81, 1),
            "continues in the next block"
        );
        let distinct: BTreeSet<Ipv4Addr> = first.iter().copied().collect();
        assert_eq!(distinct.len(), 300);
        many.release(first[254]);
        assert_eq!(many.allocate().unwrap(), first[254]);
        let mut wrap = IpAllocator::for_port(0x13ff);
        let ips: Vec<Ipv4Addr> = (0..255).map(|_| wrap.allocate().unwrap()).collect();
        assert_eq!(
            ips[254],
            Ipv4Addr::new(127, 0x13, 0x00, 1),
            "blocks wrap around"
        );
        wrap.release(ips[254]);
        assert_eq!(wrap.allocate().unwrap(), ips[254]);
    }

    #[test]
    fn image_ids_are_stable_digests() {
        let id = image_id("img:1");
        assert_eq!(id.len(), "sha256:".len() + 64);
        assert_eq!(id, image_id("img:1"));
        assert_ne!(id, image_id("img:2"));
    }
}
