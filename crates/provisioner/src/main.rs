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

    /// How many reconciles run at once (the others wait for a slot): bounds the provisioner's
    /// memory and its concurrent requests to the API server when many databases change at once.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = provisioner::config::DEFAULT_MAX_CONCURRENT_RECONCILES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    max_concurrent_reconciles: usize,

    /// Image of every coordinator and arbiter container of the databases' pods (the in-pod
    /// agent), in place of the Version's coordinator image; empty uses the Version's.
    #[arg(long, env = "AGENT_IMAGE", default_value = "")]
    agent_image: String,
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
                max_concurrent_reconciles: run.max_concurrent_reconciles,
                agent_image: Some(run.agent_image.trim().to_owned()).filter(|i| !i.is_empty()),
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

    #[test]
    fn max_concurrent_reconciles_flag_parses() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["provisioner", "run"].iter().chain(args)).map(|cli| {
                match cli.command {
                    Command::Run(run) => run.max_concurrent_reconciles,
                    _ => panic!("run expected"),
                }
            })
        };
        assert_eq!(
            parse(&[]).unwrap(),
            provisioner::config::DEFAULT_MAX_CONCURRENT_RECONCILES
        );
        assert_eq!(parse(&["--max-concurrent-reconciles", "4"]).unwrap(), 4);
        assert!(parse(&["--max-concurrent-reconciles", "0"]).is_err());
        assert!(parse(&["--max-concurrent-reconciles", "many"]).is_err());
    }

    #[test]
    fn agent_image_flag_parses() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["provisioner", "run"].iter().chain(args)).unwrap();
            match cli.command {
                Command::Run(run) => run.agent_image,
                _ => panic!("run expected"),
            }
        };
        assert_eq!(parse(&[]), "");
        assert_eq!(
            parse(&["--agent-image", "ghcr.io/kubedb-rs/db-agent:0.1.0"]),
            "ghcr.io/kubedb-rs/db-agent:0.1.0"
        );
    }
}
