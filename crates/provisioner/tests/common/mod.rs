//! Shared set-up of the provisioner's integration tests: a kube-sim cluster with the KubeDB CRDs
//! and catalog, the real provisioner controllers running in-process with the `provisioner/` user
//! agent, a cert-manager issuer, and object fixtures.

#![allow(dead_code)]

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use serde_json::json;
use testkit::{SimOptions, TestCluster};

pub use testkit::fixtures::{ISSUER, NS};
pub const WAIT: Duration = Duration::from_secs(30);

#[allow(unused_imports)] // each test binary uses a different subset
pub use testkit::fixtures::{mssql, run, singlestore, storage};

pub struct Env {
    pub cluster: TestCluster,
    pub client: Client,
    pub registry: prometheus::Registry,
    config: provisioner::Config,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(SimOptions::default()).await
    }

    pub async fn start_with(sim: SimOptions) -> Env {
        Self::start_with_config(sim, provisioner::Config::default()).await
    }

    pub async fn start_with_config(sim: SimOptions, config: provisioner::Config) -> Env {
        let cluster = TestCluster::start(sim).await.expect("kube-sim starts");
        cluster.namespace(NS).await.expect("namespace");
        let client = cluster.client.clone();
        let issuer = json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": ISSUER, "namespace": NS},
            "spec": {"selfSigned": {}},
        });
        let issuers: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NS, &issuer_resource());
        issuers
            .create(
                &PostParams::default(),
                &serde_json::from_value(issuer).unwrap(),
            )
            .await
            .expect("issuer");
        let mut env = Env {
            cluster,
            client,
            registry: prometheus::Registry::new(),
            config,
            task: None,
        };
        env.start_provisioner().await;
        env
    }

    /// Starts the provisioner (again), as a fresh process would: new client, new caches.
    pub async fn start_provisioner(&mut self) {
        assert!(self.task.is_none(), "the provisioner runs already");
        let provisioner_client = operator_common::connect(
            Some(self.cluster.sim.kubeconfig_path()),
            &operator_common::user_agent("provisioner"),
        )
        .await
        .expect("provisioner client");
        let registry =
            prometheus::Registry::new_custom(Some("kubedb_provisioner".into()), None).unwrap();
        let ctx = operator_common::OperatorContext {
            client: provisioner_client,
            registry: registry.clone(),
            namespaces: Vec::new(),
        };
        self.registry = registry;
        self.task = Some(tokio::spawn(provisioner::run(ctx, self.config.clone())));
    }

    /// Stops the provisioner (its task aborted, as a killed process).
    pub async fn stop_provisioner(&mut self) {
        if let Some(task) = self.task.take() {
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

    /// Write requests (create, update, patch, delete) the provisioner has sent so far.
    pub fn provisioner_writes(&self) -> u64 {
        self.cluster
            .sim
            .requests()
            .iter()
            .filter(|r| r.user_agent.starts_with("provisioner/"))
            .filter(|r| {
                matches!(
                    r.verb.as_str(),
                    "create" | "update" | "patch" | "delete" | "deletecollection"
                )
            })
            .map(|r| r.count)
            .sum()
    }

    /// Every request the provisioner has sent so far.
    pub fn provisioner_requests(&self) -> u64 {
        self.cluster
            .sim
            .requests()
            .iter()
            .filter(|r| r.user_agent.starts_with("provisioner/"))
            .map(|r| r.count)
            .sum()
    }

    pub async fn stop(mut self) {
        self.stop_provisioner().await;
        self.cluster.shutdown().await;
    }
}

pub fn issuer_resource() -> ApiResource {
    ApiResource {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        api_version: "cert-manager.io/v1".into(),
        kind: "Issuer".into(),
        plural: "issuers".into(),
    }
}

pub fn certificate_resource() -> ApiResource {
    provisioner::reconcile::certificate_resource()
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

pub fn phase_of(status: Option<&api::DatabaseStatus>) -> Option<api::DatabasePhase> {
    status.and_then(|s| s.phase)
}

pub async fn wait_phase<K>(env: &Env, name: &str, phase: api::DatabasePhase) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static
        + provisioner::database::Database,
{
    testkit::wait_for_object(
        &env.api::<K>(),
        name,
        &format!("phase {phase}"),
        WAIT,
        |db: &K| db.db_status().and_then(|s| s.phase) == Some(phase),
    )
    .await
}

/// Name and UID of every PVC in the test namespace.
pub async fn pvc_uids(env: &Env) -> std::collections::BTreeMap<String, String> {
    use kube::ResourceExt as _;
    env.api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect()
}

/// Waits for an Event with `reason` about the object named `regarding`.
pub async fn event(
    env: &Env,
    reason: &str,
    regarding: &str,
) -> k8s_openapi::api::events::v1::Event {
    let events = env.api::<k8s_openapi::api::events::v1::Event>();
    testkit::eventually(
        &format!("a {reason} Event on {regarding}"),
        WAIT,
        || async {
            events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding)
                })
        },
    )
    .await
}
