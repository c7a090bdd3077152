//! The `provisioner` binary: Provisions KubeDB MSSQLServer and Singlestore databases: StatefulSets, services, secrets, certificates and status.

use clap::{Args, Parser};
use operator_common::{Command, OperatorInfo, RunArgs};

const INFO: OperatorInfo = OperatorInfo {
    name: "provisioner",
    lease_name: "kubedb-provisioner",
    metrics_prefix: "kubedb_provisioner",
};

#[derive(Debug, Parser)]
#[command(
    name = "provisioner",
    version,
    about = "Provisions KubeDB MSSQLServer and Singlestore databases: StatefulSets, services, secrets, certificates and status."
)]
struct Cli {
    #[command(subcommand)]
    command: Command<Run>,
}

/// Flags of `provisioner run`.
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
            print!("{}", api::crds::to_yaml(&api::crds::provisioner()));
            Ok(())
        }
        Command::Version => {
            println!("{}", operator_common::version_line(INFO.name));
            Ok(())
        }
    }
}
