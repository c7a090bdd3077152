//! The `provisioner` binary: provisions KubeDB MSSQLServer and Singlestore databases
//! (StatefulSets, services, secrets, certificates and status).

use clap::{Args, Parser};
use operator_common::{Command, OperatorInfo, RunArgs};
use provisioner::{Config, HealthCheckMode};

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

    /// How to decide that a database accepts connections: `pod-readiness` (Ready pods count)
    /// or `sql` (connect with the auth secret and run read/write checks).
    #[arg(long, env = "HEALTH_CHECK", value_enum, default_value_t = HealthCheckMode::PodReadiness)]
    health_check: HealthCheckMode,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operator_common::install_crypto_provider();
    match Cli::parse().command {
        Command::Run(run) => {
            let config = Config {
                health_check: run.health_check,
                namespaces: run.common.watch_namespaces(),
                instance: run.common.identity.clone(),
                ..Config::default()
            };
            operator_common::run_operator(INFO, &run.common, move |ctx| {
                Ok(provisioner::run(ctx, config))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_flag_parses() {
        let cli = Cli::try_parse_from(["provisioner", "run", "--health-check", "sql"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(run.health_check, HealthCheckMode::Sql);
        let cli = Cli::try_parse_from(["provisioner", "run"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(run.health_check, HealthCheckMode::PodReadiness);
        assert!(Cli::try_parse_from(["provisioner", "run", "--health-check", "tcp"]).is_err());
    }
}
