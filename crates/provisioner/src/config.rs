//! Runtime configuration of the provisioner's controllers.

use std::time::Duration;

/// How the provisioner decides that a database accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HealthCheckMode {
    /// Ready pods count as accepting connections (no database client is used). This is the mode
    /// for kube-sim, where no database process runs.
    #[default]
    PodReadiness,
    /// Connect through the primary service with the auth secret and run read (and, unless
    /// disabled, write) checks: tiberius for SQL Server, mysql_async for SingleStore.
    Sql,
}

impl HealthCheckMode {
    /// The flag value (`pod-readiness` or `sql`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PodReadiness => "pod-readiness",
            Self::Sql => "sql",
        }
    }
}

/// Configuration of [`crate::run`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Health-check mode (`--health-check`).
    pub health_check: HealthCheckMode,
    /// Namespaces to watch; empty means the namespaces of the `OperatorContext`, and when those
    /// are empty too, all namespaces.
    pub namespaces: Vec<String>,
    /// Reporting instance of published Events (usually the pod name).
    pub instance: Option<String>,
    /// Longest time between two reconciles of a converged database (health checks run more often,
    /// every `spec.healthChecker.periodSeconds`).
    pub resync_period: Duration,
    /// How many reconciles run at once, across kinds and namespaces
    /// (`--max-concurrent-reconciles`); the others wait for a slot. A reconcile holds its slot
    /// for its API requests, not while it waits for a SQL probe.
    pub max_concurrent_reconciles: usize,
    /// The image of every coordinator and arbiter container (`--agent-image`), in place of the
    /// Version's `coordinator.image`: the in-pod agent (`ghcr.io/kubedb-rs/db-agent`) with a
    /// catalog whose Versions name KubeDB's coordinator. `None` uses the Version's.
    pub agent_image: Option<String>,
}

/// Default of [`Config::max_concurrent_reconciles`].
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: usize = 32;

impl Default for Config {
    fn default() -> Self {
        Self {
            health_check: HealthCheckMode::PodReadiness,
            namespaces: Vec::new(),
            instance: None,
            resync_period: Duration::from_secs(300),
            max_concurrent_reconciles: DEFAULT_MAX_CONCURRENT_RECONCILES,
            agent_image: None,
        }
    }
}
