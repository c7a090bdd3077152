//! The `ops-manager` binary: runs KubeDB MSSQLServerOpsRequest and SinglestoreOpsRequest day-2
//! operations (UpdateVersion).

use std::time::Duration;

use clap::{Args, Parser};
use operator_common::{Command, OperatorInfo, RunArgs};

const INFO: OperatorInfo = OperatorInfo {
    name: "ops-manager",
    lease_name: "kubedb-ops-manager",
    metrics_prefix: "kubedb_ops_manager",
};

#[derive(Debug, Parser)]
#[command(
    name = "ops-manager",
    version,
    about = "Runs KubeDB MSSQLServerOpsRequest and SinglestoreOpsRequest day-2 operations, starting with UpdateVersion."
)]
struct Cli {
    #[command(subcommand)]
    command: Command<Run>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    api::common::parse_duration("duration", s).map_err(|e| e.to_string())
}

/// Flags of `ops-manager run`.
#[derive(Debug, Args)]
struct Run {
    #[command(flatten)]
    common: RunArgs,

    /// Timeout of a request that sets no spec.timeout (e.g. `10m`).
    #[arg(long, env = "DEFAULT_TIMEOUT", value_parser = parse_duration, default_value = "10m")]
    default_timeout: Duration,

    /// How often a waiting request is looked at again when no watch event arrives.
    #[arg(long, env = "POLL_INTERVAL", value_parser = parse_duration, default_value = "2s")]
    poll_interval: Duration,

    /// How long the agents get to hand an availability group's primary role over to a
    /// synchronized secondary before the primary is evicted anyway.
    #[arg(long, env = "SWITCHOVER_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    switchover_timeout: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operator_common::install_crypto_provider();
    match Cli::parse().command {
        Command::Run(run) => {
            let config = ops_manager::Config {
                default_timeout: run.default_timeout,
                poll_interval: run.poll_interval,
                switchover_timeout: run.switchover_timeout,
                instance: run.common.identity.clone(),
            };
            operator_common::run_operator(INFO, &run.common, move |ctx| {
                Ok(ops_manager::run(ctx, config))
            })
            .await
        }
        Command::Crd => {
            print!("{}", api::crds::to_yaml(&api::crds::ops_manager()));
            Ok(())
        }
        Command::Version => {
            println!("{}", operator_common::version_line(INFO.name));
            Ok(())
        }
    }
}
