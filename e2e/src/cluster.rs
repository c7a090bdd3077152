//! The cluster the scenarios run against.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::workspace_binary;

/// Images of the operator charts, as `<registry>/<repository>`; the tag is the chart's appVersion
/// unless `E2E_IMAGE_TAG` says otherwise.
pub const PROVISIONER_IMAGE: &str = "ghcr.io/kubedb-rs/provisioner";
/// See [`PROVISIONER_IMAGE`].
pub const OPS_MANAGER_IMAGE: &str = "ghcr.io/kubedb-rs/ops-manager";
/// The in-pod agent, which the catalog chart names as SQL Server's coordinator image.
pub const AGENT_IMAGE: &str = "ghcr.io/kubedb-rs/db-agent";

/// How the simulated cluster behaves (ignored against a real cluster).
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// `--pod-start-delay`: time from a pod's creation to its containers running.
    pub pod_start_delay: String,
    /// Extra `kube-sim serve` flags (for example `--unpullable-image`).
    pub extra_args: Vec<String>,
    /// `--run-image` rules as `(image glob, command)`, given before the default ones that map
    /// the operators' and the agent's images to this workspace's binaries; kube-sim uses the first rule that
    /// matches, so these can run the operators some other way (for example from their images).
    pub run_images: Vec<(String, String)>,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            pod_start_delay: "300ms".to_owned(),
            extra_args: Vec::new(),
            run_images: Vec::new(),
        }
    }
}

/// A cluster: a `kube-sim serve` child process, or a real cluster from `E2E_KUBECONFIG`.
pub struct Cluster {
    /// The kubeconfig every tool (kube-rs, kubectl, helm) uses.
    pub kubeconfig: PathBuf,
    /// A client of the cluster.
    pub client: Client,
    /// The API server URL.
    pub url: String,
    sim: Option<Child>,
    _workdir: Option<TempDir>,
}

impl Cluster {
    /// Connects to `E2E_KUBECONFIG` if set, else starts kube-sim with the operators' images mapped
    /// to this workspace's binaries.
    pub async fn start(settings: &SimSettings) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        match std::env::var_os("E2E_KUBECONFIG") {
            Some(path) => Self::connect(PathBuf::from(path)).await,
            None => Self::start_sim(settings).await,
        }
    }

    /// Whether this is kube-sim (with its `/sim/` admin endpoints).
    pub fn is_sim(&self) -> bool {
        self.sim.is_some()
    }

    async fn connect(kubeconfig: PathBuf) -> anyhow::Result<Self> {
        let config = Kubeconfig::read_from(&kubeconfig)
            .with_context(|| format!("reading E2E_KUBECONFIG {}", kubeconfig.display()))?;
        let config =
            kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config)?;
        Ok(Self {
            kubeconfig,
            client,
            url,
            sim: None,
            _workdir: None,
        })
    }

    async fn start_sim(settings: &SimSettings) -> anyhow::Result<Self> {
        let kube_sim = workspace_binary("kube-sim");
        let provisioner = workspace_binary("provisioner");
        let ops_manager = workspace_binary("ops-manager");
        let agent = workspace_binary("db-agent");
        for bin in [&kube_sim, &provisioner, &ops_manager, &agent] {
            if !bin.exists() {
                bail!(
                    "{} is missing: build it first (make e2e does)",
                    bin.display()
                );
            }
        }
        let workdir = TempDir::new("e2e")?;
        let kubeconfig = workdir.path().join("kubeconfig");
        let mut command = Command::new(&kube_sim);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(["--pod-start-delay", &settings.pod_start_delay]);
        for (image, run) in &settings.run_images {
            command.arg("--run-image").arg(format!("{image}={run}"));
        }
        command
            .arg("--run-image")
            .arg(format!("{PROVISIONER_IMAGE}:*={}", provisioner.display()))
            .arg("--run-image")
            .arg(format!("{OPS_MANAGER_IMAGE}:*={}", ops_manager.display()))
            .arg("--run-image")
            .arg(format!("{AGENT_IMAGE}:*={}", agent.display()))
            .args(&settings.extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                workdir.path().join("kube-sim.log"),
            )?))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", kube_sim.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("kube-sim did not report ready within 30s")??
            .context("kube-sim exited before it was ready")?;
        let url = ready
            .strip_prefix("kube-sim ready ")
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("unexpected first line from kube-sim: {ready}"))?
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut cluster = Self::connect(kubeconfig).await?;
        cluster.url = url;
        cluster.sim = Some(child);
        cluster._workdir = Some(workdir);
        Ok(cluster)
    }

    /// Creates a namespace (no error if it exists).
    pub async fn namespace(&self, name: &str) -> anyhow::Result<()> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(err).with_context(|| format!("creating namespace {name}")),
        }
    }

    /// kube-sim's request accounting (`GET /sim/requests`); `None` on a real cluster.
    pub async fn sim_requests(&self) -> anyhow::Result<Option<Vec<serde_json::Value>>> {
        if !self.is_sim() {
            return Ok(None);
        }
        let request = http_get(&self.url, "/sim/requests").await?;
        Ok(Some(serde_json::from_str(&request)?))
    }

    /// Stops kube-sim (SIGTERM, then waits for it to exit 0).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.sim.take() {
            if let Some(pid) = child.id() {
                // SAFETY-free: `kill` is an external command; no unsafe code needed.
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .context("kube-sim did not exit within 20s of SIGTERM")??;
            if !status.success() {
                bail!("kube-sim exited with {status}");
            }
        }
        Ok(())
    }

    /// Where kube-sim's own log goes (empty on a real cluster).
    pub fn sim_log(&self) -> Option<PathBuf> {
        self._workdir
            .as_ref()
            .map(|w| w.path().join("kube-sim.log"))
    }
}

impl Drop for Cluster {
    /// A test that panics drops the cluster without [`Cluster::shutdown`]: stop kube-sim with
    /// SIGTERM (not the SIGKILL of `kill_on_drop`) so it stops the operator processes it runs for
    /// `--run-image` pods instead of leaving them orphaned.
    fn drop(&mut self) {
        let Some(child) = self.sim.as_mut() else {
            return;
        };
        let Some(pid) = child.id() else { return };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A plain HTTP GET (kube-sim's `/sim/` paths, the operators' `/metrics`, Prometheus' API):
/// the body of a 200 response, or an error naming the URL and status.
pub async fn http_get(base: &str, path: &str) -> anyhow::Result<String> {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let response = tokio::time::timeout(Duration::from_secs(10), client.get(url.parse()?))
        .await
        .with_context(|| format!("GET {url} timed out"))?
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
