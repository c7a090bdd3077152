//! `bench`: runs the operators' release builds against a `kube-sim serve` process and prints
//! convergence, steady-state, memory, UpdateVersion-overhead and start-up figures (median of
//! several runs, with min and max). It asserts nothing about time; it fails only when a run
//! cannot be carried out. See docs/performance.md.

mod plan;
mod process;
mod procfs;
mod report;
mod reports;
mod requests;
mod scenarios;
mod stats;
mod table;
mod watch;
mod workload;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use plan::{Part, Plan};
use report::{Results, ScaleCase};
use scenarios::UpdateCase;
use workload::Db;

fn log(message: impl AsRef<str>) {
    eprintln!("bench: {}", message.as_ref());
}

/// "1.23 s", or "none" when a figure was not measured.
fn seconds(d: Option<std::time::Duration>) -> String {
    d.map_or("none".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// Runs `f` and records its error instead of stopping the whole benchmark.
async fn attempt<T>(
    errors: &mut Vec<String>,
    what: &str,
    f: impl Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    let start = Instant::now();
    match f.await {
        Ok(v) => {
            log(format!(
                "{what}: done in {:.1} s",
                start.elapsed().as_secs_f64()
            ));
            Some(v)
        }
        Err(err) => {
            log(format!("{what}: FAILED: {err:#}"));
            errors.push(format!("{what}: {err:#}"));
            None
        }
    }
}

/// Writes the tables so far to the output file, so an interrupted run keeps what it measured.
fn checkpoint(plan: &Plan, r: &Results, errors: &[String], start: Instant) {
    let mut partial = r.clone();
    partial.errors = errors.to_vec();
    if let Some(path) = output_path() {
        let text = render(plan, &partial, start.elapsed().as_secs_f64());
        let _ = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
    }
}

async fn run(plan: &Plan) -> Results {
    let start = Instant::now();
    let mut r = Results {
        update_pod_start_delay: plan.pod_start_delay,
        ..Results::default()
    };
    let mut errors = Vec::new();
    if plan.has(Part::Startup) {
        for i in 0..plan.runs {
            let label = format!("startup-{i}");
            if let Some(s) = attempt(
                &mut errors,
                &format!("start-up run {}", i + 1),
                scenarios::startup(&label),
            )
            .await
            {
                r.startup.push(s);
            }
        }
        checkpoint(plan, &r, &errors, start);
    }
    let mut cases: Vec<(String, Vec<Db>)> = Vec::new();
    if plan.has(Part::Scale) {
        for &n in &plan.sizes {
            cases.push((format!("N = {n} standalone"), vec![Db::MssqlStandalone; n]));
        }
    }
    if plan.has(Part::Mix) && plan.mix > 0 {
        cases.push((
            format!("mix of {}", plan.mix),
            (0..plan.mix).map(workload::mixed).collect(),
        ));
    }
    for (label, dbs) in cases {
        let mut case = ScaleCase {
            label: label.clone(),
            databases: dbs.len(),
            runs: Vec::new(),
        };
        for i in 0..plan.runs {
            let dir = format!("scale-{}-{i}", dbs.len());
            let what = format!("{label}, run {}", i + 1);
            if let Some(run) = attempt(
                &mut errors,
                &what,
                scenarios::scale(&dir, &dbs, plan.stall, plan.steady, plan.idle_settle),
            )
            .await
            {
                if !dbs.is_empty() {
                    log(format!(
                        "{what}: {} of {} Ready, {}",
                        run.ready,
                        dbs.len(),
                        run.converge_time
                            .map_or("never all Ready".to_owned(), |d| format!(
                                "all Ready after {:.2} s",
                                d.as_secs_f64()
                            ))
                    ));
                }
                case.runs.push(run);
            }
        }
        r.scale.push(case);
        checkpoint(plan, &r, &errors, start);
    }
    if plan.has(Part::Update) {
        let (aggregators, leaves) = plan.update_singlestore;
        let cases = plan
            .update_sizes
            .iter()
            .map(|&pods| UpdateCase::Ag(pods))
            .chain([UpdateCase::Singlestore(aggregators, leaves)]);
        for case in cases {
            let mut runs = Vec::new();
            for i in 0..plan.runs {
                let what = format!("UpdateVersion of the {}, run {}", case.label(), i + 1);
                let dir = match case {
                    UpdateCase::Ag(pods) => format!("update-{pods}-{i}"),
                    UpdateCase::Singlestore(a, l) => format!("update-sdb-{a}-{l}-{i}"),
                };
                if let Some(run) = attempt(
                    &mut errors,
                    &what,
                    scenarios::update(&dir, case, plan.pod_start_delay),
                )
                .await
                {
                    log(format!(
                        "{what}: {}; switchover {}, failover after the node loss {}",
                        run.phase,
                        seconds(run.agents.switchover),
                        seconds(run.agents.failover_crash)
                    ));
                    runs.push(run);
                }
            }
            r.update.push((case, runs));
            checkpoint(plan, &r, &errors, start);
        }
    }
    r.errors = errors;
    r
}

fn render(plan: &Plan, r: &Results, elapsed: f64) -> String {
    let mut out = format!(
        "## make bench{} — {} run(s) per figure, {} cores, {:.0} s in all\n\n",
        if plan.quick { " (BENCH_QUICK)" } else { "" },
        plan.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        elapsed
    );
    for table in report::all(r) {
        out.push_str(&table.render());
        out.push('\n');
    }
    if !r.errors.is_empty() {
        out.push_str("### Runs that failed\n\n");
        for e in &r.errors {
            out.push_str(&format!("- {e}\n"));
        }
    }
    out
}

/// Where the Markdown copy of the tables goes: `BENCH_OUT`, else `target/bench/results.md`
/// next to the release directory.
fn output_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BENCH_OUT") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("bench").join("results.md"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plan = match Plan::from_env(|name| std::env::var(name).ok()) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("bench: {err:#}");
            return ExitCode::from(2);
        }
    };
    log(format!("plan: {plan:?}"));
    let start = Instant::now();
    let results = run(&plan).await;
    let text = render(&plan, &results, start.elapsed().as_secs_f64());
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    if let Some(path) = output_path() {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &text));
        match written {
            Ok(()) => log(format!("tables written to {}", path.display())),
            Err(err) => log(format!("cannot write {}: {err}", path.display())),
        }
    }
    if results.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        log(format!("{} run(s) failed", results.errors.len()));
        ExitCode::FAILURE
    }
}
