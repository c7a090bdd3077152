//! Shared set-up of the ops-manager's integration tests: kube-sim with the KubeDB CRDs and
//! catalog, the real provisioner and the real ops-manager running in-process (each with its own
//! user agent), and fixtures.

#![allow(dead_code)]

use std::time::Duration;

use api::conditions::{ConditionStatus, get_condition};
use api::ops::{MSSQLServerOpsRequest, OpsRequestPhase, SinglestoreOpsRequest};
use api::{DatabasePhase, MSSQLServer, Singlestore};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use serde_json::json;
use testkit::{SimOptions, TestCluster};

pub use testkit::fixtures::{ISSUER, NS};
pub const WAIT: Duration = Duration::from_secs(40);
pub const MSSQL_2022: &str = "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04";
pub const MSSQL_2025: &str = "mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04";
pub const SDB_8_7: &str = "ghcr.io/appscode-images/singlestore-node:alma-8.7.21-f0b8de04d5";
pub const SDB_8_9: &str = "ghcr.io/appscode-images/singlestore-node:alma-8.9.3-bfa36a984a";

#[allow(unused_imports)] // each test binary uses a different subset
pub use testkit::fixtures::{mssql, run, singlestore, storage};

pub struct Env {
    pub cluster: TestCluster,
    pub client: Client,
    provisioner: tokio::task::JoinHandle<anyhow::Result<()>>,
    ops_manager: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub registry: prometheus::Registry,
}

pub fn sim_options() -> SimOptions {
    SimOptions {
        pod_start_delay: Duration::from_millis(150),
        ..SimOptions::default()
    }
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(sim_options()).await
    }

    pub async fn start_with(sim: SimOptions) -> Env {
        let mut env = Self::start_provisioner_only(sim).await;
        env.start_ops_manager().await;
        env
    }

    /// kube-sim and the provisioner, without an in-process ops-manager.
    pub async fn start_provisioner_only(sim: SimOptions) -> Env {
        if std::env::var_os("RUST_LOG").is_some() {
            operator_common::init_tracing(operator_common::LogFormat::Text);
        }
        let cluster = TestCluster::start(sim).await.expect("kube-sim starts");
        cluster.namespace(NS).await.expect("namespace");
        let client = cluster.client.clone();
        let issuer: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": ISSUER, "namespace": NS},
            "spec": {"selfSigned": {}},
        }))
        .unwrap();
        let resource = ApiResource {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            api_version: "cert-manager.io/v1".into(),
            kind: "Issuer".into(),
            plural: "issuers".into(),
        };
        Api::<DynamicObject>::namespaced_with(client.clone(), NS, &resource)
            .create(&PostParams::default(), &issuer)
            .await
            .expect("issuer");
        let provisioner_client = operator_common::connect(
            Some(cluster.sim.kubeconfig_path()),
            &operator_common::user_agent("provisioner"),
        )
        .await
        .expect("provisioner client");
        let ctx = operator_common::OperatorContext {
            client: provisioner_client,
            registry: prometheus::Registry::new(),
            namespaces: Vec::new(),
        };
        let provisioner = tokio::spawn(provisioner::run(ctx, provisioner::Config::default()));
        // kube-sim creates a resource's watch history lazily, with `compacted_rv` at the global
        // resourceVersion of that moment; a list taken just before (of a kind with no objects yet)
        // returns an older resourceVersion, so the first watch after it gets 410 Gone and
        // kube-runtime relists only after a backoff of several seconds. Opening one watch per
        // ops-request kind first avoids that delay (reported to the kube-sim owner).
        touch_watch::<MSSQLServerOpsRequest>(&client).await;
        touch_watch::<SinglestoreOpsRequest>(&client).await;
        Env {
            cluster,
            client,
            provisioner,
            ops_manager: None,
            registry: prometheus::Registry::new(),
        }
    }

    /// Starts (or restarts) the ops-manager with a fresh registry.
    pub async fn start_ops_manager(&mut self) {
        let client = operator_common::connect(
            Some(self.cluster.sim.kubeconfig_path()),
            &operator_common::user_agent("ops-manager"),
        )
        .await
        .expect("ops-manager client");
        self.registry =
            prometheus::Registry::new_custom(Some("kubedb_ops_manager".into()), None).unwrap();
        let ctx = operator_common::OperatorContext {
            client,
            registry: self.registry.clone(),
            namespaces: vec![NS.to_owned()],
        };
        let config = ops_manager::Config {
            default_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            switchover_timeout: Duration::from_secs(10),
            instance: Some("test".into()),
        };
        self.ops_manager = Some(tokio::spawn(ops_manager::run(ctx, config)));
    }

    /// Stops the ops-manager (as a crash would: no clean-up).
    pub async fn stop_ops_manager(&mut self) {
        if let Some(task) = self.ops_manager.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Evictions the ops-manager has requested so far (kube-sim request accounting).
    pub fn evictions(&self) -> u64 {
        self.count(|r| r.subresource == "eviction" && r.user_agent.starts_with("ops-manager/"))
    }

    /// Pods the ops-manager has taken down so far: evictions plus direct deletions (a pod that
    /// is not Ready, such as a former primary still catching up after a switchover, is deleted
    /// rather than evicted).
    pub fn disruptions(&self) -> u64 {
        self.count(|r| {
            r.user_agent.starts_with("ops-manager/")
                && r.resource == "pods"
                && (r.subresource == "eviction" || (r.verb == "delete" && r.subresource.is_empty()))
        })
    }

    /// Write requests of the ops-manager so far.
    pub fn ops_manager_writes(&self) -> u64 {
        self.count(|r| {
            r.user_agent.starts_with("ops-manager/")
                && matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete")
        })
    }

    fn count(&self, f: impl Fn(&kube_sim::RequestCount) -> bool) -> u64 {
        self.cluster
            .sim
            .requests()
            .iter()
            .filter(|r| f(r))
            .map(|r| r.count)
            .sum()
    }

    pub async fn stop(mut self) {
        self.stop_ops_manager().await;
        self.provisioner.abort();
        let _ = self.provisioner.await;
        self.cluster.shutdown().await;
    }

    pub async fn pods(&self) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }
}

async fn touch_watch<K>(client: &Client)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let stream = api
        .watch(&kube::api::WatchParams::default().timeout(1), "0")
        .await
        .expect("watch");
    drop(stream);
}

pub async fn create_license(env: &Env) {
    testkit::fixtures::create_license(&env.client).await
}

pub async fn create<K>(env: &Env, object: &K) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    testkit::fixtures::create(&env.client, object).await
}

pub async fn wait_mssql_ready(env: &Env, name: &str) -> MSSQLServer {
    testkit::wait_for_object(
        &env.api::<MSSQLServer>(),
        name,
        "phase Ready",
        WAIT,
        |db: &MSSQLServer| db.status.as_ref().and_then(|s| s.phase) == Some(DatabasePhase::Ready),
    )
    .await
}

pub async fn wait_sdb_ready(env: &Env, name: &str) -> Singlestore {
    testkit::wait_for_object(
        &env.api::<Singlestore>(),
        name,
        "phase Ready",
        WAIT,
        |db: &Singlestore| db.status.as_ref().and_then(|s| s.phase) == Some(DatabasePhase::Ready),
    )
    .await
}

pub fn ops_json(
    kind: &str,
    name: &str,
    db: &str,
    target: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut spec = json!({
        "type": "UpdateVersion",
        "databaseRef": {"name": db},
        "updateVersion": {"targetVersion": target},
        "timeout": "60s",
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "ops.kubedb.com/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

pub async fn msops(
    env: &Env,
    name: &str,
    db: &str,
    target: &str,
    extra: serde_json::Value,
) -> MSSQLServerOpsRequest {
    let obj: MSSQLServerOpsRequest =
        serde_json::from_value(ops_json("MSSQLServerOpsRequest", name, db, target, extra)).unwrap();
    create(env, &obj).await
}

pub async fn sdbops(
    env: &Env,
    name: &str,
    db: &str,
    target: &str,
    extra: serde_json::Value,
) -> SinglestoreOpsRequest {
    let obj: SinglestoreOpsRequest =
        serde_json::from_value(ops_json("SinglestoreOpsRequest", name, db, target, extra)).unwrap();
    create(env, &obj).await
}

pub fn phase<K: HasStatus>(r: &K) -> Option<OpsRequestPhase> {
    r.ops_status().and_then(|s| s.phase)
}

pub trait HasStatus {
    fn ops_status(&self) -> Option<&api::OpsRequestStatus>;
}
impl HasStatus for MSSQLServerOpsRequest {
    fn ops_status(&self) -> Option<&api::OpsRequestStatus> {
        self.status.as_ref()
    }
}
impl HasStatus for SinglestoreOpsRequest {
    fn ops_status(&self) -> Option<&api::OpsRequestStatus> {
        self.status.as_ref()
    }
}

pub async fn wait_phase<K>(env: &Env, name: &str, want: OpsRequestPhase, timeout: Duration) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + HasStatus
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    testkit::wait_for_object(
        &env.api::<K>(),
        name,
        &format!("phase {want}"),
        timeout,
        move |r: &K| phase(r) == Some(want),
    )
    .await
}

/// Condition types in status order.
pub fn condition_types(status: Option<&api::OpsRequestStatus>) -> Vec<String> {
    status
        .map(|s| s.conditions().iter().map(|c| c.type_.clone()).collect())
        .unwrap_or_default()
}

/// The condition of `type_` (status, reason, message).
pub fn condition(
    status: Option<&api::OpsRequestStatus>,
    type_: &str,
) -> Option<(ConditionStatus, Option<String>, Option<String>)> {
    status
        .and_then(|s| get_condition(s.conditions(), type_))
        .map(|c| (c.status, c.reason.clone(), c.message.clone()))
}

pub fn paused(db_status: Option<&api::DatabaseStatus>) -> bool {
    db_status.is_some_and(|s| get_condition(s.conditions(), "Paused").is_some())
}

/// Waits until database `name` has no `Paused` condition (the ops-manager resumed it).
pub async fn wait_resumed<K>(
    env: &Env,
    name: &str,
    status: fn(&K) -> Option<&api::DatabaseStatus>,
) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    testkit::eventually("the database resumed", WAIT, || async {
        let db = env.api::<K>().get(name).await.ok()?;
        (!paused(status(&db))).then_some(db)
    })
    .await
}

/// Image of container `name` in a pod spec.
pub fn pod_image(pod: &Pod, container: &str) -> Option<String> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .image
        .clone()
}

/// Image the kubelet reports for container `name`.
pub fn running_image(pod: &Pod, container: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)
        .map(|c| c.image.clone())
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn role(pod: &Pod) -> Option<String> {
    pod.metadata
        .labels
        .as_ref()?
        .get("kubedb.com/role")
        .cloned()
}

/// Pods and the role label each carried when it began terminating, in that order.
pub type Terminations = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// Records, from a watch of database `instance`'s pods, each pod incarnation's role label at the
/// moment it began terminating (evicted or deleted).
pub fn watch_terminations(
    env: &Env,
    instance: &str,
) -> (Terminations, tokio::task::JoinHandle<()>) {
    use futures::StreamExt;
    use kube::ResourceExt;
    use kube::runtime::watcher;
    let seen = Terminations::default();
    let out = seen.clone();
    let api = env.api::<Pod>();
    let selector = format!("app.kubernetes.io/instance={instance}");
    let task = tokio::spawn(async move {
        let mut recorded = std::collections::BTreeSet::new();
        let stream = watcher(api, watcher::Config::default().labels(&selector));
        futures::pin_mut!(stream);
        while let Some(Ok(event)) = stream.next().await {
            if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = event
                && p.metadata.deletion_timestamp.is_some()
                && recorded.insert(p.uid().unwrap_or_default())
            {
                out.lock().unwrap().push((p.name_any(), role(&p)));
            }
        }
    });
    (seen, task)
}
