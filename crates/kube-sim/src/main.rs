//! `kube-sim serve`: runs the in-memory API server (and the simulated cluster) until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube_sim::sim::SimOptions;
use kube_sim::{KubeSim, KubeSimOptions};

#[derive(Parser, Debug)]
#[command(
    name = "kube-sim",
    version,
    about = "An in-memory Kubernetes API server with simulated controllers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the Kubernetes API over plain HTTP.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for this server.
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: PathBuf,
    /// Changes kept per resource for watch resumption (older resourceVersions get 410 Gone).
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// Serve the API only, without the simulated controllers and kubelet.
    #[arg(long)]
    no_sim: bool,
    #[command(flatten)]
    sim: SimOptions,
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let defaults = KubeSimOptions::default();
    let options = KubeSimOptions {
        listen: args.listen,
        kubeconfig_out: Some(args.kubeconfig_out),
        watch_history: args.watch_history,
        sim: (!args.no_sim).then_some(args.sim),
        ..defaults
    };
    let sim = KubeSim::start(options).await?;
    println!(
        "kube-sim ready {} {}",
        sim.url(),
        sim.kubeconfig_path().display()
    );
    wait_for_signal().await?;
    sim.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("kube-sim: {first} (see kube-sim serve --help)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Command::Serve(args) = cli.command;
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
