//! The command line both binaries share.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// The subcommands both binaries offer; `R` is the binary's own `run` flags, which flatten
/// [`RunArgs`].
#[derive(Debug, Subcommand)]
pub enum Command<R: Args> {
    /// Run the operator against the cluster.
    Run(R),
    /// Print this binary's CustomResourceDefinitions as multi-document YAML.
    Crd,
    /// Print the version and exit.
    Version,
}

/// Flags of `run` shared by both operators. Every flag can also be set through the environment
/// variable named in its help text.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kubeconfig file to use; without it, in-cluster configuration (or `~/.kube/config`) is used.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace to watch; repeat (or comma-separate in the environment) for several. All
    /// namespaces when absent.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Run controllers only while holding the leader-election Lease.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_election: bool,

    /// Namespace of the leader-election Lease (defaults to the pod's namespace, else `default`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Identity recorded in the Lease (defaults to the pod name, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl RunArgs {
    /// The namespaces to watch, with empty entries dropped (`WATCH_NAMESPACES=""` means all).
    pub fn watch_namespaces(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|ns| ns.trim())
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The namespace the leader-election Lease lives in.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| "default".to_owned())
    }

    /// This process's identity in the Lease.
    pub fn lease_identity(&self) -> String {
        self.identity
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "unknown-host".to_owned());
                format!("{host}-{}", std::process::id())
            })
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Initialises `tracing` with a filter from `RUST_LOG` (default `info`), logging to stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn leader_election_defaults_on_and_can_be_switched_off() {
        let on = Cli::try_parse_from(["x"]).unwrap();
        assert!(on.run.leader_election);
        let off = Cli::try_parse_from(["x", "--leader-election=false"]).unwrap();
        assert!(!off.run.leader_election);
        let bare = Cli::try_parse_from(["x", "--leader-election"]).unwrap();
        assert!(bare.run.leader_election);
    }

    #[test]
    fn namespaces_repeat() {
        let cli = Cli::try_parse_from(["x", "--namespace", "a", "--namespace", "b"]).unwrap();
        assert_eq!(cli.run.watch_namespaces(), ["a", "b"]);
    }

    #[test]
    fn empty_namespace_means_all() {
        // What an empty WATCH_NAMESPACES (or a trailing comma) parses to.
        let cli = Cli::try_parse_from(["x", "--namespace", "", "--namespace", "a,"]).unwrap();
        assert_eq!(cli.run.watch_namespaces(), ["a"]);
        let cli = Cli::try_parse_from(["x", "--namespace", ""]).unwrap();
        assert!(cli.run.watch_namespaces().is_empty());
    }

    #[test]
    fn bad_metrics_address_is_rejected() {
        let err = Cli::try_parse_from(["x", "--metrics-addr", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--metrics-addr"), "{err}");
    }
}
