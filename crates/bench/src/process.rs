//! The processes a benchmark runs: `kube-sim serve` and the two operators, release builds that
//! sit next to the `bench` binary (`target/release/`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::HeaderValue;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::procfs::{self, Sample};
use crate::requests::{Row, Snapshot};
use crate::workload;

/// User agent of the benchmark's own requests (kept apart from the operators' in the accounting).
pub const USER_AGENT: &str = "bench/0.1.0";

/// A sibling binary of this executable (`BENCH_BIN_DIR` overrides the directory).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("BENCH_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .context("cannot locate the bench executable")?
            .parent()
            .context("the bench executable has no directory")?
            .to_path_buf(),
    };
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p {name}` (make bench does)",
        path.display()
    );
    Ok(path)
}

/// kube-sim's simulated-cluster settings.
#[derive(Clone, Copy, Debug)]
pub struct SimFlags {
    /// `--pod-start-delay`.
    pub pod_start_delay: Duration,
}

fn duration_flag(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A running `kube-sim serve` with the KubeDB CRDs, the catalog and the bench namespace.
pub struct Sim {
    child: Child,
    /// Process id (for /proc samples).
    pub pid: u32,
    /// API server URL.
    pub url: String,
    /// Kubeconfig the operators use.
    pub kubeconfig: PathBuf,
    /// A client with the bench user agent.
    pub client: kube::Client,
    /// Working directory (logs, kubeconfig).
    pub dir: PathBuf,
}

impl Sim {
    /// Starts kube-sim in `dir`, waits until it serves, and installs CRDs, catalog, the bench
    /// namespace, the Issuer and the license Secret.
    pub async fn start(dir: &Path, flags: SimFlags) -> anyhow::Result<Sim> {
        let kube_sim = binary("kube-sim")?;
        let agent = binary("db-agent")?;
        let kubeconfig = dir.join("kubeconfig");
        let log = std::fs::File::create(dir.join("kube-sim.log"))?;
        let mut child = Command::new(&kube_sim)
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(["--pod-start-delay", &duration_flag(flags.pod_start_delay)])
            // The databases' agents: the catalog's coordinator image (SQL Server's and
            // SingleStore's) is db-agent's.
            .arg("--run-image")
            .arg(format!(
                "{}:*={}",
                api::fixtures::AGENT_IMAGE_REPOSITORY,
                agent.display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", kube_sim.display()))?;
        let pid = child.id().context("kube-sim exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().context("kube-sim stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("kube-sim did not report ready within 30s")??
            .context("kube-sim exited before it was ready")?;
        let url = first
            .strip_prefix("kube-sim ready ")
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("unexpected first line from kube-sim: {first}"))?
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = connect(&kubeconfig).await?;
        let sim = Sim {
            child,
            pid,
            url,
            kubeconfig,
            client,
            dir: dir.to_path_buf(),
        };
        sim.install().await?;
        Ok(sim)
    }

    async fn install(&self) -> anyhow::Result<()> {
        testkit::install_crds(&self.client).await?;
        testkit::install_catalog(&self.client).await?;
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(workload::NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .context("creating the bench namespace")?;
        let issuer = workload::issuer();
        let resource = ApiResource {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            api_version: "cert-manager.io/v1".into(),
            kind: "Issuer".into(),
            plural: "issuers".into(),
        };
        Api::<DynamicObject>::namespaced_with(self.client.clone(), workload::NAMESPACE, &resource)
            .create(&PostParams::default(), &issuer)
            .await
            .context("creating the bench Issuer")?;
        Api::namespaced(self.client.clone(), workload::NAMESPACE)
            .create(&PostParams::default(), &workload::license_secret())
            .await
            .context("creating the license Secret")?;
        Ok(())
    }

    /// The request accounting now.
    pub async fn requests(&self) -> anyhow::Result<Snapshot> {
        let body = e2e::cluster::http_get(&self.url, "/sim/requests").await?;
        let rows: Vec<Row> =
            serde_json::from_str(&body).context("decoding kube-sim's /sim/requests")?;
        Ok(Snapshot(rows))
    }

    /// Memory and CPU time of kube-sim.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        procfs::sample(self.pid)
    }

    /// Stops kube-sim (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, self.pid, "kube-sim").await
    }
}

async fn connect(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    ));
    Ok(kube::Client::try_from(config)?)
}

/// Which operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The provisioner.
    Provisioner,
    /// The ops-manager.
    OpsManager,
}

impl Operator {
    /// Binary name.
    pub fn binary(self) -> &'static str {
        match self {
            Operator::Provisioner => "provisioner",
            Operator::OpsManager => "ops-manager",
        }
    }

    /// User-agent prefix of its requests.
    pub fn agent(self) -> &'static str {
        match self {
            Operator::Provisioner => crate::requests::PROVISIONER,
            Operator::OpsManager => crate::requests::OPS_MANAGER,
        }
    }

    /// Name of its leader-election Lease.
    pub fn lease(self) -> &'static str {
        match self {
            Operator::Provisioner => "kubedb-provisioner",
            Operator::OpsManager => "kubedb-ops-manager",
        }
    }

    /// The resource whose first list marks its controllers' start.
    pub fn primary_resource(self) -> &'static str {
        match self {
            Operator::Provisioner => "mssqlservers",
            Operator::OpsManager => "mssqlserveropsrequests",
        }
    }

    /// `run` arguments (leader election on, Lease in the bench namespace).
    pub fn args(self, kubeconfig: &Path) -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            "--kubeconfig".to_owned(),
            kubeconfig.display().to_string(),
            "--metrics-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--leader-election=true".to_owned(),
            "--leader-election-namespace".to_owned(),
            LEASE_NAMESPACE.to_owned(),
            "--identity".to_owned(),
            format!("bench-{}", self.binary()),
        ];
        if self == Operator::Provisioner {
            args.push("--health-check=pod-readiness".to_owned());
        }
        args
    }
}

/// Namespace of the operators' Leases.
pub const LEASE_NAMESPACE: &str = "default";

/// A running operator process.
pub struct OperatorProcess {
    /// Which operator.
    pub operator: Operator,
    child: Child,
    /// Process id.
    pub pid: u32,
    /// When it was spawned.
    pub started: Instant,
}

impl OperatorProcess {
    /// Starts the operator against `sim`, logging to `<dir>/<binary>.log`.
    pub async fn start(operator: Operator, sim: &Sim) -> anyhow::Result<OperatorProcess> {
        let path = binary(operator.binary())?;
        let log = std::fs::File::create(sim.dir.join(format!("{}.log", operator.binary())))?;
        let started = Instant::now();
        let child = Command::new(&path)
            .args(operator.args(&sim.kubeconfig))
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let pid = child.id().context("the operator exited at once")?;
        Ok(OperatorProcess {
            operator,
            child,
            pid,
            started,
        })
    }

    /// Memory and CPU time.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        procfs::sample(self.pid)
    }

    /// Fails when the process has exited (pointing at its log).
    pub fn ensure_running(&mut self, sim: &Sim) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited with {status}; see {}",
                self.operator.binary(),
                sim.dir
                    .join(format!("{}.log", self.operator.binary()))
                    .display()
            );
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, self.pid, self.operator.binary()).await
    }
}

async fn terminate(child: &mut Child, pid: u32, what: &str) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with a pid of our own live child (not yet reaped, so not reused) and a
    // valid signal number; it touches no memory.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => {
            status?;
        }
        Err(_) => {
            eprintln!("bench: {what} ignored SIGTERM for 10s; killing it");
            child.kill().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_are_milliseconds() {
        assert_eq!(duration_flag(Duration::from_secs(1)), "1000ms");
        assert_eq!(duration_flag(Duration::ZERO), "0ms");
    }

    #[test]
    fn operator_arguments() {
        let p = Operator::Provisioner.args(Path::new("/k"));
        assert!(p.contains(&"--health-check=pod-readiness".to_owned()));
        assert!(p.windows(2).any(|w| w == ["--kubeconfig", "/k"]));
        let o = Operator::OpsManager.args(Path::new("/k"));
        assert!(!o.iter().any(|a| a.starts_with("--health-check")));
        assert_eq!(o[0], "run");
    }
}
