//! Shared set-up of the provisioner's integration tests: a kube-sim cluster with the KubeDB CRDs
//! and catalog, the real provisioner controllers running in-process with the `provisioner/` user
//! agent, a cert-manager issuer, and object fixtures.

#![allow(dead_code)]

use std::time::Duration;

use api::{MSSQLServer, Singlestore};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use testkit::{SimOptions, TestCluster};

pub const NS: &str = "demo";
pub const ISSUER: &str = "selfsigned";
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs an async test body on a runtime with large thread stacks: kube-sim's in-process API
/// server validates CRD objects (deep schemas and CEL) on the caller's stack, which overflows the
/// default 2 MiB test-thread stack in debug builds for the Singlestore schema.
pub fn run<F>(body: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(16 * 1024 * 1024)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(body)
        })
        .expect("test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

pub struct Env {
    pub cluster: TestCluster,
    pub client: Client,
    pub registry: prometheus::Registry,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(SimOptions {
            failover_delay: Duration::from_millis(300),
            ..SimOptions::default()
        })
        .await
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
        let provisioner_client = operator_common::connect(
            Some(cluster.sim.kubeconfig_path()),
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
        let task = tokio::spawn(provisioner::run(ctx, config));
        Env {
            cluster,
            client,
            registry,
            task,
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

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
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

pub fn storage() -> serde_json::Value {
    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
}

/// An MSSQLServer: `replicas` 1 without topology is standalone, otherwise an AvailabilityGroup.
pub fn mssql(name: &str, version: &str, ag_replicas: Option<i32>) -> MSSQLServer {
    let mut spec = json!({
        "version": version,
        "storageType": "Durable",
        "storage": storage(),
        "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": ISSUER}, "clientTLS": false},
        "podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [
            {"name": "ACCEPT_EULA", "value": "Y"},
            {"name": "MSSQL_PID", "value": "Evaluation"},
        ]}]}},
        "deletionPolicy": "WipeOut",
    });
    if let Some(replicas) = ag_replicas {
        spec["replicas"] = json!(replicas);
        spec["topology"] =
            json!({"mode": "AvailabilityGroup", "availabilityGroup": {"databases": ["agdb"]}});
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "MSSQLServer",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .unwrap()
}

/// A Singlestore: standalone, or aggregator/leaf with the given replicas.
pub fn singlestore(name: &str, version: &str, topology: Option<(i32, i32)>) -> Singlestore {
    let mut spec = json!({
        "version": version,
        "storageType": "Durable",
        "storage": storage(),
        "licenseSecret": {"name": "license"},
        "deletionPolicy": "WipeOut",
    });
    if let Some((aggregators, leaves)) = topology {
        spec["topology"] = json!({
            "aggregator": {"replicas": aggregators, "storage": storage()},
            "leaf": {"replicas": leaves, "storage": storage()},
        });
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "Singlestore",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .unwrap()
}

pub async fn create_license(env: &Env) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("license".into()),
            ..Default::default()
        },
        string_data: Some(
            [
                ("username".to_owned(), "license".to_owned()),
                ("password".to_owned(), "LICENSE-KEY".to_owned()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("license secret");
}

pub async fn create<K>(env: &Env, object: &K) -> K
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    env.api::<K>()
        .create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", object.name_any()))
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
