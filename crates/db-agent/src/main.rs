//! The `db-agent` binary: the in-pod agent of KubeDB SQL Server availability groups.

use clap::{Parser, Subcommand};
use db_agent::config::{ArbiterArgs, Config, RunArgs};

#[derive(Debug, Parser)]
#[command(
    name = "db-agent",
    about = "In-pod agent of KubeDB SQL Server availability groups and SingleStore clusters: forms the AG or the cluster, elects and fences the primary or master, labels its pod, serves readiness."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent next to SQL Server (the `mssql-coordinator` sidecar, `--ag-name`) or a
    /// SingleStore node (the `singlestore-coordinator` sidecar, `--node-type`).
    Run(RunArgs),
    /// Fill KubeDB's arbiter slot (`<db>-arbiter`, AGs with an even replica count): the Lease
    /// decides elections here, so the arbiter casts no vote; it serves `/healthz` and `/metrics`
    /// until SIGTERM.
    Arbiter(ArbiterArgs),
    /// Print the version and exit.
    Version,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operator_common::install_crypto_provider();
    match Cli::parse().command {
        Command::Version => {
            println!("db-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Arbiter(args) => {
            let format = std::env::var("LOG_FORMAT").ok();
            operator_common::init_tracing(db_agent::config::log_format(format.as_deref()));
            db_agent::run::arbiter(&args).await
        }
        Command::Run(args) if args.node_type.is_some() => {
            let config = db_agent::config::SdbConfig::new(&args, |name| std::env::var(name).ok())?;
            operator_common::init_tracing(config.log_format);
            db_agent::run::run_sdb(config).await
        }
        Command::Run(args) => {
            let config = Config::new(&args, |name| std::env::var(name).ok())?;
            operator_common::init_tracing(config.log_format);
            db_agent::run::run(config).await
        }
    }
}
