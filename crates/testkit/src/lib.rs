//! Test support for the operators' integration tests: a kube-sim cluster (API server plus the
//! simulated StatefulSet controller, kubelet, roles and cert-manager) with the six KubeDB CRDs and
//! the §4.4 catalog installed, helpers that wait on a condition with a timeout, and the pieces of
//! a scripted TDS peer ([`tds`]) for the SQL Server client tests of the provisioner and the agent.
//!
//! Only tests depend on this crate; the operators never do.

pub mod fixtures;
pub mod mariadb;
/// The TDS pieces of kube-sim's simulated SQL Server, for scripted peers.
pub use kube_sim::db::tds;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use kube_sim::sim::SimOptions;
pub use kube_sim::{KubeSim, KubeSimOptions};

/// A running kube-sim with the KubeDB CRDs and catalog installed.
pub struct TestCluster {
    /// The server; shut it down with [`TestCluster::shutdown`].
    pub sim: KubeSim,
    /// A client of the cluster (namespace `default`).
    pub client: Client,
}

impl TestCluster {
    /// Starts kube-sim with the simulated cluster configured by `sim`, installs the CRDs, waits
    /// until they are established, and creates the catalog's Version objects.
    ///
    /// The catalog's agent image runs as the workspace's `db-agent` binary ([`agent_run_image`])
    /// unless `sim` already has a rule for it.
    pub async fn start(mut sim: SimOptions) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sim.run_images.push(agent_run_image()?);
        let options = KubeSimOptions {
            sim: Some(sim),
            ..KubeSimOptions::default()
        };
        let sim = KubeSim::start(options).await?;
        let client = sim.client();
        install_crds(&client).await?;
        install_catalog(&client).await?;
        Ok(Self { sim, client })
    }

    /// Creates a namespace.
    pub async fn namespace(&self, name: &str) -> anyhow::Result<()> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(())
    }

    /// Stops the server and the simulated cluster.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

/// The pids of the db-agent processes a kube-sim started (`--run-image`), told apart from those
/// of other kube-sims on the machine by the `KUBECONFIG` they were given; only the agent of
/// `pod` when named. Reads `/proc` (Linux).
pub fn db_agent_pids(kubeconfig: &std::path::Path, pod: Option<&str>) -> Vec<u32> {
    let want = std::fs::canonicalize(kubeconfig).unwrap_or_else(|_| kubeconfig.to_owned());
    let pod = pod.map(|p| format!("POD_NAME={p}"));
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let exe = cmdline.split(|b| *b == 0).next()?;
            if !String::from_utf8_lossy(exe).ends_with("db-agent") {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let mut vars = environ.split(|b| *b == 0);
            if let Some(pod) = &pod
                && !vars.clone().any(|v| v == pod.as_bytes())
            {
                return None;
            }
            let path = vars.find_map(|v| v.strip_prefix(b"KUBECONFIG="))?;
            let path = std::path::PathBuf::from(String::from_utf8_lossy(path).into_owned());
            (std::fs::canonicalize(&path).unwrap_or(path) == want).then_some(pid)
        })
        .collect()
}

/// The `--run-image` rule that runs the workspace's `db-agent` binary (`target/debug/db-agent`,
/// or `$DB_AGENT_BIN`) for the agent image of the catalog, so that availability groups in the
/// integration tests are formed, elected and labelled by the product's agent, not by kube-sim.
pub fn agent_run_image() -> anyhow::Result<kube_sim::sim::RunImage> {
    let binary = match std::env::var_os("DB_AGENT_BIN") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
            })
            .join("debug/db-agent"),
    };
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p db-agent`; make test does)",
        binary.display()
    );
    Ok(kube_sim::sim::RunImage {
        image: format!("{}:*", api::fixtures::AGENT_IMAGE_REPOSITORY),
        command: vec![binary.display().to_string()],
    })
}

/// Creates every KubeDB CRD and waits until each is established.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("creating CRD {name}"))?;
        tokio::time::timeout(
            Duration::from_secs(10),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .with_context(|| format!("CRD {name} not established within 10s"))??;
    }
    Ok(())
}

/// Creates the MSSQLServerVersion and SinglestoreVersion objects of the catalog.
pub async fn install_catalog(client: &Client) -> anyhow::Result<()> {
    create_all(client, api::fixtures::mssql_versions()).await?;
    create_all(client, api::fixtures::singlestore_versions()).await
}

async fn create_all<K>(client: &Client, objects: Vec<K>) -> anyhow::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
    K: Resource<Scope = kube::core::ClusterResourceScope>,
{
    let api: Api<K> = Api::all(client.clone());
    for object in objects {
        api.create(&PostParams::default(), &object)
            .await
            .with_context(|| {
                format!(
                    "creating {}",
                    object.meta().name.clone().unwrap_or_default()
                )
            })?;
    }
    Ok(())
}

/// Polls `check` until it returns `Some`, failing with a message naming `what` after `timeout`.
/// Use it to wait on observable state; prefer [`wait_for_object`] for one object.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Watches one object until `condition` holds, failing with a message naming `what` (and the
/// object's last state) after `timeout`.
pub async fn wait_for_object<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    condition: impl Fn(&K) -> bool,
) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let cond = |obj: Option<&K>| obj.is_some_and(&condition);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{name}: watch ended without the object while waiting for {what}"),
        Ok(Err(err)) => panic!("{name}: watch failed while waiting for {what}: {err}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!(
                "timed out after {timeout:?} waiting for {what} on {name}; last state: {last:#?}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::catalog::MSSQLServerVersion;

    #[tokio::test]
    async fn cluster_has_crds_and_catalog() {
        let cluster = TestCluster::start(SimOptions::default()).await.unwrap();
        let versions: Api<MSSQLServerVersion> = Api::all(cluster.client.clone());
        let names: Vec<String> = versions
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|v| v.metadata.name)
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.contains(&"2025-cu0".to_owned()), "{names:?}");
        cluster.namespace("demo").await.unwrap();
        cluster.shutdown().await;
    }
}
