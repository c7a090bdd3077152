//! The `ops-manager` binary: Runs KubeDB MSSQLServerOpsRequest and SinglestoreOpsRequest day-2 operations, starting with UpdateVersion.

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

/// Flags of `ops-manager run`.
#[derive(Debug, Args)]
struct Run {
    #[command(flatten)]
    common: RunArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operator_common::install_crypto_provider();
    match Cli::parse().command {
        Command::Run(run) => {
            operator_common::run_operator(INFO, &run.common, |_ctx| {
                Ok(async {
                    tracing::info!("no controllers are registered in this build yet");
                    std::future::pending::<anyhow::Result<()>>().await
                })
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
