//! Turning the runs into tables.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::procfs::Sample;
use crate::reports::{self, Settle};
use crate::requests::{Tally, VERBS};
use crate::scenarios::{OPERATORS, ScaleRun, Startup, UpdateCase, UpdateRun};
use crate::stats::{Summary, mib, show};
use crate::table::Table;

/// A scale case: its label and runs.
#[derive(Clone, Debug, Default)]
pub struct ScaleCase {
    /// "N = 100 standalone", "mix of 100".
    pub label: String,
    /// Databases.
    pub databases: usize,
    /// Runs.
    pub runs: Vec<ScaleRun>,
}

/// Everything measured.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Start-up runs (one entry per run, per operator inside).
    pub startup: Vec<Vec<Startup>>,
    /// Scale cases.
    pub scale: Vec<ScaleCase>,
    /// UpdateVersion cases and their runs.
    pub update: Vec<(UpdateCase, Vec<UpdateRun>)>,
    /// Pod start delay of the update runs.
    pub update_pod_start_delay: Duration,
    /// Failures of runs (the harness, not the figures).
    pub errors: Vec<String>,
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn values<T>(runs: &[T], f: impl Fn(&T) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(f).collect()
}

fn converged_label(runs: &[ScaleRun]) -> String {
    let times = values(runs, |r| secs(r.converge_time));
    let missed = runs.len() - times.len();
    let mut text = show(&times, 2);
    if missed > 0 {
        text = format!("{text}; {missed} of {} runs never all Ready", runs.len());
    }
    text
}

/// "median (min–max)" of the report settle times, and how many runs gave up on it.
fn settle_label(runs: &[ScaleRun]) -> String {
    let settles: Vec<&Settle> = runs
        .iter()
        .filter_map(|r| r.report_settle.as_ref())
        .collect();
    let times: Vec<f64> = settles.iter().map(|s| s.elapsed.as_secs_f64()).collect();
    let mut text = show(&times, 2);
    let timed_out = settles.iter().filter(|s| s.timed_out()).count();
    if timed_out > 0 {
        text = format!("{text}; {timed_out} of {} runs timed out", runs.len());
    }
    text
}

/// Table 1: convergence and requests per database.
pub fn convergence(r: &Results) -> Table {
    let mut header = vec![
        "case",
        "pods",
        "Ready (of DBs)",
        "pods Running",
        "create s",
        "all Ready s",
        "reports settle s",
    ];
    let verb_cols: Vec<String> = VERBS.iter().map(|v| format!("prov {v}/DB")).collect();
    header.extend(verb_cols.iter().map(String::as_str));
    header.extend(["prov total/DB", "ops-mgr total/DB"]);
    let mut t = Table::new(
        "1. Convergence (pod start delay 0): time to all Ready, API requests per database",
        &header,
    );
    for case in r.scale.iter().filter(|c| c.databases > 0) {
        let runs = &case.runs;
        let n = case.databases as f64;
        let per_db = |f: &dyn Fn(&Tally) -> u64, op: usize| {
            show(
                &values(runs, |run| {
                    run.converge_requests.get(op).map(|t| f(t) as f64 / n)
                }),
                1,
            )
        };
        let mut row = vec![
            case.label.clone(),
            show(&values(runs, |r| Some(r.expected_pods as f64)), 0),
            format!(
                "{} (of {})",
                show(&values(runs, |r| Some(r.ready as f64)), 0),
                case.databases
            ),
            show(&values(runs, |r| Some(r.pods_running as f64)), 0),
            show(&values(runs, |r| Some(r.create_time.as_secs_f64())), 2),
            converged_label(runs),
            settle_label(runs),
        ];
        for verb in VERBS {
            row.push(per_db(&|t: &Tally| t.verb(verb), 0));
        }
        row.push(per_db(&|t: &Tally| t.total(), 0));
        row.push(per_db(&|t: &Tally| t.total(), 1));
        t.row(row);
    }
    t.note(
        "Timed from the first create (the operators already run and lead). Requests are kube-sim's \
         accounting for user agents `provisioner/` and `ops-manager/` from the first create until \
         all were Ready (or the wait gave up) and the reports settled, divided by the number of \
         databases. Cells: median (min–max).",
    );
    t.note(format!(
        "Reports settle: from the moment the bench saw the last database Ready until the \
         provisioner had published a `{}` Event (its last transition Event, written right after \
         the Ready status) for every Ready database, polled every {:.1} s for at most {:.0} s. The \
         steady-state window (table 2) opens after it.",
        reports::PROVISIONED,
        reports::POLL.as_secs_f64(),
        reports::SETTLE_LIMIT.as_secs_f64(),
    ));
    for case in r.scale.iter().filter(|c| c.databases > 0) {
        let unconverged: Vec<&str> = case
            .runs
            .iter()
            .filter(|r| r.converge_time.is_none())
            .map(|r| r.phases.as_str())
            .collect();
        if !unconverged.is_empty() {
            t.note(format!(
                "{}: phases when the wait gave up (no progress for the stall period): {}.",
                case.label,
                unconverged.join(" | ")
            ));
        }
        for (i, run) in case.runs.iter().enumerate() {
            if let Some(s) = run.report_settle.as_ref().filter(|s| s.timed_out()) {
                t.note(format!(
                    "{}, run {}: {} of {} Ready databases still had no `{}` Event after {:.0} s; \
                     the steady-state window opened anyway, so their Events may count there.",
                    case.label,
                    i + 1,
                    s.unreported,
                    s.ready,
                    reports::PROVISIONED,
                    s.limit.as_secs_f64()
                ));
            }
        }
    }
    t
}

/// Tables 1b and 1c: provisioner writes (or reads) per database by verb and resource.
pub fn requests_by_target(r: &Results, writes: bool) -> Table {
    let cases: Vec<&ScaleCase> = r.scale.iter().filter(|c| c.databases > 0).collect();
    let kind = if writes { "write" } else { "read" };
    let mut header = vec![format!("provisioner {kind}")];
    header.extend(cases.iter().map(|c| format!("{} /DB", c.label)));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let title = if writes {
        "1b. Provisioner writes per database during convergence, by verb and resource"
    } else {
        "1c. Provisioner reads per database during convergence, by verb and resource"
    };
    let mut t = Table::new(title, &header_refs);
    let map = |t: &Tally| -> std::collections::BTreeMap<String, u64> {
        if writes {
            t.writes_by_target.clone()
        } else {
            t.reads_by_target.clone()
        }
    };
    let targets: BTreeSet<String> = cases
        .iter()
        .flat_map(|c| &c.runs)
        .filter_map(|run| run.converge_requests.first())
        .flat_map(|t| map(t).into_keys())
        .collect();
    for target in targets {
        let mut row = vec![target.clone()];
        for c in &cases {
            let n = c.databases as f64;
            row.push(show(
                &values(&c.runs, |run| {
                    run.converge_requests
                        .first()
                        .map(|t| map(t).get(&target).copied().unwrap_or(0) as f64 / n)
                }),
                2,
            ));
        }
        t.row(row);
    }
    t
}

/// Table 2: steady state.
pub fn steady(r: &Results) -> Table {
    let mut t = Table::new(
        "2. Steady state after convergence: requests per minute",
        &[
            "case",
            "operator",
            "writes/min (no Leases)",
            "reads/min (no Leases)",
            "Lease writes/min",
            "Lease reads/min",
            "window s",
        ],
    );
    let mut offenders: BTreeSet<String> = BTreeSet::new();
    let mut reads: Vec<String> = Vec::new();
    for case in r.scale.iter().filter(|c| c.databases > 0) {
        for (i, op) in OPERATORS.iter().enumerate() {
            let per_min = |f: &dyn Fn(&Tally) -> u64| {
                show(
                    &values(&case.runs, |run| {
                        let s = run.steady.as_ref()?;
                        Some(s.per_minute(f(s.tallies.get(i)?)))
                    }),
                    1,
                )
            };
            for run in &case.runs {
                if let Some(tally) = run.steady.as_ref().and_then(|s| s.tallies.get(i)) {
                    for (target, n) in &tally.writes_by_target {
                        offenders.insert(format!("{} {}: {target} ×{n}", case.label, op.binary()));
                    }
                }
            }
            if let Some(s) = case.runs.first().and_then(|r| r.steady.as_ref())
                && let Some(tally) = s.tallies.get(i)
                && !tally.reads_by_target.is_empty()
            {
                let list: Vec<String> = tally
                    .reads_by_target
                    .iter()
                    .map(|(target, n)| format!("{target} {:.1}", s.per_minute(*n)))
                    .collect();
                reads.push(format!(
                    "{} {}: {}",
                    case.label,
                    op.binary(),
                    list.join(", ")
                ));
            }
            t.row(vec![
                case.label.clone(),
                op.binary().to_owned(),
                per_min(&|t| t.writes),
                per_min(&|t| t.reads),
                per_min(&|t| t.lease_writes),
                per_min(&|t| t.lease_reads),
                show(
                    &values(&case.runs, |r| {
                        r.steady.as_ref().map(|s| s.window.as_secs_f64())
                    }),
                    0,
                ),
            ]);
        }
    }
    t.note(
        "Writes are create/update/patch/delete/deletecollection; reads are get/list/watch (a watch \
         counts once, when it is opened).",
    );
    if !offenders.is_empty() {
        t.note(format!(
            "Non-Lease writes in the window (per run): {}.",
            offenders.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    if !reads.is_empty() {
        t.note(format!(
            "Non-Lease reads per minute in the first run's window: {}.",
            reads.join("; ")
        ));
    }
    t
}

fn sample_of(s: &crate::scenarios::Samples, i: Option<usize>) -> Option<Sample> {
    match i {
        Some(i) => s.operators.get(i).copied(),
        None => Some(s.sim),
    }
}

/// Table 3: memory of the operators (and kube-sim's cost, separately).
pub fn memory(r: &Results) -> (Table, Table) {
    let mut t = Table::new(
        "3. Operator memory (VmHWM peak, VmRSS settled) and CPU time",
        &[
            "case",
            "operator",
            "peak MiB",
            "settled MiB",
            "CPU s (whole run)",
            "settled KiB per DB over N = 0",
        ],
    );
    let idle = r.scale.iter().find(|c| c.databases == 0);
    for case in &r.scale {
        for (i, op) in OPERATORS.iter().enumerate() {
            let get = |f: &dyn Fn(&Sample) -> f64| {
                values(&case.runs, |run| {
                    sample_of(&run.settled, Some(i)).map(|s| f(&s))
                })
            };
            let per_db = match (idle, case.databases) {
                (Some(idle), n) if n > 0 => {
                    let base = values(&idle.runs, |run| {
                        sample_of(&run.settled, Some(i)).map(|s| s.memory.current as f64)
                    });
                    match Summary::of(&base) {
                        Some(base) => show(
                            &get(&|s| (s.memory.current as f64 - base.median) / n as f64 / 1024.0),
                            1,
                        ),
                        None => "n/a".to_owned(),
                    }
                }
                _ => String::new(),
            };
            t.row(vec![
                case.label.clone(),
                op.binary().to_owned(),
                show(&get(&|s| mib(s.memory.peak)), 1),
                show(&get(&|s| mib(s.memory.current)), 1),
                show(&get(&|s| s.cpu_seconds), 2),
                per_db,
            ]);
        }
    }
    t.note(
        "Sampled from /proc/<pid>/status and /proc/<pid>/stat at the end of each run (after the \
         steady-state window). Per-database cost: (settled RSS at N − median settled RSS at N = 0) / N.",
    );
    let mut k = Table::new(
        "3b. kube-sim's own cost (the simulated API server and cluster, not an operator)",
        &["case", "peak MiB", "settled MiB", "CPU s (whole run)"],
    );
    for case in &r.scale {
        let get = |f: &dyn Fn(&Sample) -> f64| {
            values(&case.runs, |run| {
                sample_of(&run.settled, None).map(|s| f(&s))
            })
        };
        k.row(vec![
            case.label.clone(),
            show(&get(&|s| mib(s.memory.peak)), 1),
            show(&get(&|s| mib(s.memory.current)), 1),
            show(&get(&|s| s.cpu_seconds), 2),
        ]);
    }
    (t, k)
}

/// Table 4: UpdateVersion overhead.
pub fn update(r: &Results) -> (Table, Table) {
    let d = r.update_pod_start_delay;
    let mut t = Table::new(
        format!(
            "4. UpdateVersion (pod start delay D = {:.1} s)",
            d.as_secs_f64()
        ),
        &[
            "database",
            "result",
            "duration s",
            "floor s (pods×D)",
            "overhead s/pod",
            "ops-mgr writes/request",
            "ops-mgr reads/request",
            "prov writes during",
        ],
    );
    let mut targets: BTreeSet<String> = BTreeSet::new();
    for (case, runs) in &r.update {
        let tally = |i: usize, f: &dyn Fn(&Tally) -> u64| {
            show(
                &values(runs, |run| run.requests.get(i).map(|t| f(t) as f64)),
                0,
            )
        };
        let results: BTreeSet<&str> = runs.iter().map(|r| r.phase.as_str()).collect();
        t.row(vec![
            case.label(),
            results.into_iter().collect::<Vec<_>>().join(", "),
            show(&values(runs, |r| secs(r.duration)), 2),
            show(&values(runs, |r| Some(r.floor.as_secs_f64())), 1),
            show(&values(runs, UpdateRun::overhead_per_pod), 2),
            tally(1, &|t| t.writes),
            tally(1, &|t| t.reads),
            tally(0, &|t| t.writes),
        ]);
        for run in runs {
            if let Some(t) = run.requests.get(1) {
                targets.extend(t.writes_by_target.keys().cloned());
            }
        }
    }
    t.note(
        "Duration: from creating the request until the bench's watch saw phase Successful. The floor \
         is what the simulated cluster imposes anyway: each restarted pod spends D in \
         ContainerCreating. Everything else counts as overhead: the switchover before the \
         primary's (master's) eviction, the checks between restarts (a SingleStore pod is checked \
         Ready, which for a leaf includes its partitions coming back online) and the ~0.1 s \
         kube-sim takes to stop each evicted pod's simulated containers.",
    );
    let mut header = vec!["ops-manager write".to_owned()];
    header.extend(
        r.update
            .iter()
            .map(|(case, _)| format!("{} /request", case.label())),
    );
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut w = Table::new(
        "4b. ops-manager writes per UpdateVersion, by verb and resource",
        &refs,
    );
    for target in targets {
        let mut row = vec![target.clone()];
        for (_, runs) in &r.update {
            row.push(show(
                &values(runs, |run| {
                    run.requests
                        .get(1)
                        .map(|t| t.writes_by_target.get(&target).copied().unwrap_or(0) as f64)
                }),
                0,
            ));
        }
        w.row(row);
    }
    (t, w)
}

/// The update cases of one database kind.
fn update_cases(
    r: &Results,
    singlestore: bool,
) -> impl Iterator<Item = &(UpdateCase, Vec<UpdateRun>)> {
    r.update
        .iter()
        .filter(move |(case, _)| case.is_singlestore() == singlestore)
}

/// The at-rest figures of the agents of `runs`, per minute: Lease writes, other writes, reads
/// (Lease reads included).
fn agents_at_rest(runs: &[UpdateRun]) -> [String; 3] {
    let per_minute = |f: &dyn Fn(&Tally) -> u64| {
        show(
            &values(runs, |run| {
                let steady = run.agents.steady.as_ref()?;
                let window = run.agents.window.as_secs_f64();
                (window > 0.0).then(|| f(steady) as f64 * 60.0 / window)
            }),
            0,
        )
    };
    [
        per_minute(&|t| t.lease_writes),
        per_minute(&|t| t.writes),
        per_minute(&|t| t.reads + t.lease_reads),
    ]
}

/// Peak RSS of the largest agent of each run, in MiB.
fn largest_agent(runs: &[UpdateRun]) -> String {
    show(
        &values(runs, |run| {
            run.agents.peak_rss.iter().max().map(|b| mib(*b))
        }),
        1,
    )
}

/// Table 4c: the db-agents of the updated availability groups.
pub fn agents(r: &Results) -> Table {
    let mut t = Table::new(
        "4c. db-agent in the updated AGs (one agent per pod, real binary, simulated SQL Server)",
        &[
            "AG",
            "peak RSS MiB (largest agent)",
            "Lease writes/min (all agents, at rest)",
            "other writes/min (at rest)",
            "reads/min (at rest)",
            "switchover s",
            "failover s, pod deleted",
            "failover s, primary's node lost",
            "Lease duration s",
        ],
    );
    for (case, runs) in update_cases(r, false) {
        let [lease_writes, writes, reads] = agents_at_rest(runs);
        t.row(vec![
            format!("{} replicas", case.pods()),
            largest_agent(runs),
            lease_writes,
            writes,
            reads,
            show(&values(runs, |run| secs(run.agents.switchover)), 2),
            show(&values(runs, |run| secs(run.agents.failover_graceful)), 2),
            show(&values(runs, |run| secs(run.agents.failover_crash)), 2),
            show(&values(runs, |run| secs(run.agents.lease_duration)), 0),
        ]);
    }
    t.note(
        "At rest: a window before the update with every pod Ready. Switchover: the ops-manager's \
         SwitchoverPrimary condition from first seen Unknown to first seen True (25 ms polls). \
         Failover: from deleting the Ready primary pod until another incarnation is labelled primary \
         and Ready. A normal delete lets the stopping agent hand over. \"Node lost\": the primary's \
         SQL Server kept from coming back (kube-sim's kube-sim.io/mssql-down on its PVC), its agent \
         SIGKILLed and its pod force-deleted, so the Lease still names it and the others wait for \
         it to expire. Reads \
         include the agents' GETs of their peers' pods; their /state calls go pod to pod and are \
         not API requests.",
    );
    t
}

/// Table 4d: the db-agents of the updated SingleStore clusters.
pub fn singlestore_agents(r: &Results) -> Table {
    let grace = crate::workload::MASTER_LOST_AFTER.as_secs_f64();
    let mut t = Table::new(
        format!(
            "4d. db-agent in the updated SingleStore clusters (one agent per pod, real binary, \
             simulated SingleStore nodes, MASTER_LOST_AFTER = {grace:.0} s)"
        ),
        &[
            "cluster",
            "peak RSS MiB (largest agent)",
            "Lease writes/min (all agents, at rest)",
            "other writes/min (at rest)",
            "reads/min (at rest)",
            "switchover s",
            "master lost: Lease taken s",
            "master lost: failover s (Master and Ready)",
            "Lease duration s",
        ],
    );
    for (case, runs) in update_cases(r, true) {
        let [lease_writes, writes, reads] = agents_at_rest(runs);
        t.row(vec![
            case.label(),
            largest_agent(runs),
            lease_writes,
            writes,
            reads,
            show(&values(runs, |run| secs(run.agents.switchover)), 2),
            show(
                &values(runs, |run| secs(run.agents.failover_crash_lease)),
                2,
            ),
            show(&values(runs, |run| secs(run.agents.failover_crash)), 2),
            show(&values(runs, |run| secs(run.agents.lease_duration)), 0),
        ]);
    }
    t.note(format!(
        "At rest: a window before the update with every pod Ready and labelled by its agent (only \
         the aggregators' agents read and write the `<db>-master` Lease). Switchover: the \
         ops-manager's SwitchoverPrimary condition on the master, from first seen Unknown to first \
         seen True (25 ms polls): the master's agent runs PROMOTE AGGREGATOR … TO MASTER and a \
         child's agent labels itself Master. \"Master lost\": after the update, with every pod \
         Ready again, the master's node kept from coming back (kube-sim's \
         kube-sim.io/singlestore-down on its PVC), its agent SIGKILLed and its pod force-deleted, \
         until the child aggregator is labelled Master and Ready. The Lease still names the lost \
         master, so the child waits for it to expire (the Lease duration after the last renewal it \
         saw), then MASTER_LOST_AFTER, which the bench sets to {grace:.0} s through the \
         aggregators' pod template (env of the singlestore-coordinator container; the agent's \
         default is 30 s), then takes the Lease, runs AGGREGATOR SET AS MASTER and labels its pod; \
         the readiness probe turns it Ready. \"Lease taken\": until the Lease names the child \
         (polled with the failover), so the difference is the time from the takeover to the \
         Master label and readiness. No \"pod deleted\" figure: the SingleStore agent has no stop \
         round, and a master that merely restarts keeps its role."
    ));
    for (case, runs) in update_cases(r, true) {
        if let Some(reads) = runs.first().and_then(|run| reads_by_target(&run.agents)) {
            t.note(format!(
                "{}: non-Lease reads per minute at rest in the first run: {reads}.",
                case.label()
            ));
        }
    }
    t
}

/// "get pods 540.0, …": the agents' non-Lease reads per minute in their window at rest.
fn reads_by_target(agents: &crate::scenarios::AgentFigures) -> Option<String> {
    let tally = agents.steady.as_ref()?;
    let window = agents.window.as_secs_f64();
    (window > 0.0 && !tally.reads_by_target.is_empty()).then(|| {
        tally
            .reads_by_target
            .iter()
            .map(|(target, n)| format!("{target} {:.1}", *n as f64 * 60.0 / window))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Table 5: start-up.
pub fn startup(r: &Results) -> Table {
    let mut t = Table::new(
        "5. Start-up: seconds from process spawn",
        &[
            "operator",
            "Lease acquired",
            "first list (controllers started)",
            "first status write (first reconcile)",
        ],
    );
    for (i, op) in OPERATORS.iter().enumerate() {
        let get = |f: &dyn Fn(&Startup) -> Option<Duration>| {
            show(&values(&r.startup, |run| secs(run.get(i).and_then(f))), 3)
        };
        t.row(vec![
            op.binary().to_owned(),
            get(&|s| s.lease),
            get(&|s| s.first_list),
            if i == 0 {
                get(&|s| s.first_status_write)
            } else {
                "—".to_owned()
            },
        ]);
    }
    t.note(
        "One MSSQLServer exists before the operators start. First list: the operator's first `list` of \
         mssqlservers (provisioner) or mssqlserveropsrequests (ops-manager); first status write: the \
         provisioner's first write of mssqlservers/status. Resolution 10 ms (polling).",
    );
    t
}

/// Where a figure stands against its target.
fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

/// The "< 1 s overhead per restarted pod" row of the update cases of one kind.
fn overhead_target(t: &mut Table, r: &Results, singlestore: bool, label: &str) {
    let mut worst: Option<(f64, String)> = None;
    for (case, runs) in update_cases(r, singlestore) {
        if let Some(s) = Summary::of(&values(runs, UpdateRun::overhead_per_pod))
            && worst.as_ref().is_none_or(|(w, _)| s.median > *w)
        {
            worst = Some((s.median, case.label()));
        }
    }
    let all_successful =
        update_cases(r, singlestore).all(|(_, runs)| runs.iter().all(|r| r.duration.is_some()));
    t.row(vec![
        label.to_owned(),
        worst
            .as_ref()
            .map_or("—".to_owned(), |(w, case)| format!("{w:.2} s ({case})")),
        verdict(worst.map(|(w, _)| w < 1.0 && all_successful)).to_owned(),
    ]);
}

/// The agents' rows of the update cases of one kind: RSS, writes at rest, failover after the
/// leader's node is lost (target: Lease duration + `grace` + 2 s) and switchover. Labels end
/// with `which`.
fn agent_targets(
    t: &mut Table,
    r: &Results,
    singlestore: bool,
    which: &str,
    (failover_label, grace): (&str, f64),
) {
    let all_runs: Vec<&UpdateRun> = update_cases(r, singlestore)
        .flat_map(|(_, runs)| runs)
        .collect();
    if all_runs.is_empty() {
        return;
    }
    let peak = Summary::of(
        &all_runs
            .iter()
            .filter_map(|run| run.agents.peak_rss.iter().max().map(|b| mib(*b)))
            .collect::<Vec<_>>(),
    )
    .map(|s| s.max);
    t.row(vec![
        format!("db-agent RSS ≤ 16 MiB{which}"),
        peak.map_or("—".to_owned(), |m| {
            format!("{m:.1} MiB (largest agent, worst run)")
        }),
        verdict(peak.map(|m| m <= 16.0)).to_owned(),
    ]);
    let other_writes: Option<u64> = all_runs
        .iter()
        .map(|run| run.agents.steady.as_ref().map(|t| t.writes))
        .sum();
    t.row(vec![
        format!("db-agent writes at rest: Lease renewals only{which}"),
        other_writes.map_or("—".to_owned(), |w| {
            format!("{w} other writes in all windows")
        }),
        verdict(other_writes.map(|w| w == 0)).to_owned(),
    ]);
    let crash = Summary::of(
        &all_runs
            .iter()
            .filter_map(|run| secs(run.agents.failover_crash))
            .collect::<Vec<_>>(),
    );
    let lease = all_runs
        .iter()
        .filter_map(|run| run.agents.lease_duration)
        .max()
        .map(|d| d.as_secs_f64());
    let grace_text = if grace > 0.0 {
        format!(", MASTER_LOST_AFTER {grace:.0} s")
    } else {
        String::new()
    };
    t.row(vec![
        failover_label.to_owned(),
        crash.map_or("—".to_owned(), |c| {
            format!(
                "{:.2} s (Lease {} s{grace_text})",
                c.median,
                lease.map_or("?".to_owned(), |l| format!("{l:.0}"))
            )
        }),
        verdict(crash.zip(lease).map(|(c, l)| c.median <= l + grace + 2.0)).to_owned(),
    ]);
    let switchover = Summary::of(
        &all_runs
            .iter()
            .filter_map(|run| secs(run.agents.switchover))
            .collect::<Vec<_>>(),
    );
    t.row(vec![
        format!("switchover ≤ 1 s per UpdateVersion{which}"),
        switchover.map_or("—".to_owned(), |s| format!("{:.2} s", s.median)),
        verdict(switchover.map(|s| s.median <= 1.0)).to_owned(),
    ]);
}

/// Table 6: the targets.
pub fn targets(r: &Results) -> Table {
    let mut t = Table::new("Targets", &["target", "measured (median)", "status"]);
    // 1,000 databases Ready within 60 s.
    match r.scale.iter().find(|c| c.databases == 1000) {
        Some(case) => {
            let times = values(&case.runs, |r| secs(r.converge_time));
            let all = times.len() == case.runs.len() && !times.is_empty();
            let median = Summary::of(&times).map(|s| s.median);
            let ready = Summary::of(&values(&case.runs, |r| Some(r.ready as f64)))
                .map_or(0.0, |s| s.median);
            let measured = match (all, median) {
                (true, Some(m)) => format!("{m:.1} s"),
                _ => format!("not all Ready: {ready:.0} of 1000 Ready when the wait gave up"),
            };
            t.row(vec![
                "1,000 databases Ready within 60 s".to_owned(),
                measured,
                verdict(Some(all && median.is_some_and(|m| m <= 60.0))).to_owned(),
            ]);
        }
        None => t.row(vec![
            "1,000 databases Ready within 60 s".to_owned(),
            "—".to_owned(),
            verdict(None).to_owned(),
        ]),
    }
    // 0 writes/min at steady state apart from Leases.
    let mut worst: Option<(f64, String)> = None;
    for case in r.scale.iter().filter(|c| c.databases > 0) {
        for (i, op) in OPERATORS.iter().enumerate() {
            let v = values(&case.runs, |run| {
                let s = run.steady.as_ref()?;
                Some(s.per_minute(s.tallies.get(i)?.writes))
            });
            if let Some(s) = Summary::of(&v)
                && worst.as_ref().is_none_or(|(w, _)| s.max > *w)
            {
                worst = Some((s.max, format!("{} {}", case.label, op.binary())));
            }
        }
    }
    t.row(vec![
        "0 writes/min at steady state (Leases apart)".to_owned(),
        worst.as_ref().map_or("—".to_owned(), |(w, at)| {
            format!("worst run: {w:.1}/min ({at})")
        }),
        verdict(worst.as_ref().map(|(w, _)| *w == 0.0)).to_owned(),
    ]);
    // < 64 MiB RSS per operator at 1,000 databases.
    for (i, op) in OPERATORS.iter().enumerate() {
        let case = r.scale.iter().find(|c| c.databases == 1000);
        let peak = case.map(|c| {
            values(&c.runs, |run| {
                sample_of(&run.settled, Some(i)).map(|s| mib(s.memory.peak))
            })
        });
        let median = peak.as_deref().and_then(Summary::of).map(|s| s.median);
        t.row(vec![
            format!("< 64 MiB RSS at 1,000 databases: {}", op.binary()),
            median.map_or("—".to_owned(), |m| format!("{m:.1} MiB peak")),
            verdict(median.map(|m| m < 64.0)).to_owned(),
        ]);
    }
    // < 1 s overhead per restarted pod, and the agents: RSS, writes at rest, failover and
    // switchover; availability groups first, then SingleStore clusters (when measured).
    overhead_target(&mut t, r, false, "< 1 s overhead per restarted pod");
    agent_targets(
        &mut t,
        r,
        false,
        "",
        ("failover ≤ Lease duration + 2 s (crashed primary)", 0.0),
    );
    if update_cases(r, true).next().is_some() {
        overhead_target(
            &mut t,
            r,
            true,
            "< 1 s overhead per restarted pod (SingleStore)",
        );
        agent_targets(
            &mut t,
            r,
            true,
            " (SingleStore)",
            (
                "failover ≤ Lease duration + MASTER_LOST_AFTER + 2 s (SingleStore master lost)",
                crate::workload::MASTER_LOST_AFTER.as_secs_f64(),
            ),
        );
    }
    // < 1 s from start to first reconcile.
    let first = values(&r.startup, |run| {
        secs(run.first().and_then(|s| s.first_status_write))
    });
    let first_ops = values(&r.startup, |run| {
        secs(run.get(1).and_then(|s| s.first_list))
    });
    let pm = Summary::of(&first).map(|s| s.median);
    let om = Summary::of(&first_ops).map(|s| s.median);
    t.row(vec![
        "< 1 s from start to first reconcile".to_owned(),
        format!(
            "provisioner {}, ops-manager {}",
            pm.map_or("—".to_owned(), |m| format!("{m:.3} s")),
            om.map_or("—".to_owned(), |m| format!("{m:.3} s (first list)"))
        ),
        verdict(pm.zip(om).map(|(p, o)| p < 1.0 && o < 1.0)).to_owned(),
    ]);
    t
}

/// Every table, in order.
pub fn all(r: &Results) -> Vec<Table> {
    let mut tables = Vec::new();
    if !r.scale.iter().all(|c| c.databases == 0) {
        tables.push(convergence(r));
        tables.push(requests_by_target(r, true));
        tables.push(requests_by_target(r, false));
        tables.push(steady(r));
    }
    if !r.scale.is_empty() {
        let (m, k) = memory(r);
        tables.push(m);
        tables.push(k);
    }
    if !r.update.is_empty() {
        let (u, w) = update(r);
        tables.push(u);
        tables.push(w);
        if update_cases(r, false).next().is_some() {
            tables.push(agents(r));
        }
        if update_cases(r, true).next().is_some() {
            tables.push(singlestore_agents(r));
        }
    }
    if !r.startup.is_empty() {
        tables.push(startup(r));
    }
    tables.push(targets(r));
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::Memory;
    use crate::scenarios::{Samples, Steady};

    fn sample(mib_current: u64, mib_peak: u64) -> Sample {
        Sample {
            memory: Memory {
                peak: mib_peak << 20,
                current: mib_current << 20,
            },
            cpu_seconds: 1.0,
        }
    }

    fn scale_run(n: usize, secs: Option<u64>, rss: u64, steady_writes: u64) -> ScaleRun {
        let samples = Samples {
            operators: vec![sample(rss, rss + 4), sample(10, 12)],
            sim: sample(100, 120),
        };
        ScaleRun {
            databases: n,
            ready: if secs.is_some() { n } else { n / 2 },
            converge_time: secs.map(Duration::from_secs),
            steady: (n > 0).then(|| Steady {
                tallies: vec![
                    Tally {
                        writes: steady_writes,
                        ..Tally::default()
                    },
                    Tally::default(),
                ],
                window: Duration::from_secs(60),
            }),
            settled: samples.clone(),
            at_converged: samples,
            ..ScaleRun::default()
        }
    }

    fn agent_figures(met: bool) -> crate::scenarios::AgentFigures {
        let ms = Duration::from_millis;
        crate::scenarios::AgentFigures {
            peak_rss: vec![if met { 10 << 20 } else { 20 << 20 }, 9 << 20],
            steady: Some(Tally {
                lease_writes: 60,
                writes: if met { 0 } else { 3 },
                ..Tally::default()
            }),
            window: Duration::from_secs(10),
            lease_duration: Some(Duration::from_secs(10)),
            switchover: Some(if met { ms(500) } else { ms(2000) }),
            failover_graceful: Some(ms(800)),
            failover_crash: Some(if met { ms(9000) } else { ms(15000) }),
            failover_crash_lease: Some(ms(8500)),
        }
    }

    fn results(converge: Option<u64>, steady_writes: u64, rss: u64, overhead_secs: u64) -> Results {
        Results {
            startup: vec![vec![
                Startup {
                    lease: Some(Duration::from_millis(100)),
                    first_list: Some(Duration::from_millis(150)),
                    first_status_write: Some(Duration::from_millis(300)),
                },
                Startup {
                    lease: Some(Duration::from_millis(100)),
                    first_list: Some(Duration::from_millis(150)),
                    first_status_write: None,
                },
            ]],
            scale: vec![
                ScaleCase {
                    label: "N = 0".into(),
                    databases: 0,
                    runs: vec![scale_run(0, None, 8, 0)],
                },
                ScaleCase {
                    label: "N = 1000".into(),
                    databases: 1000,
                    runs: vec![scale_run(1000, converge, rss, steady_writes)],
                },
            ],
            update: vec![(
                UpdateCase::Ag(3),
                vec![UpdateRun {
                    pods: 3,
                    phase: "Successful".into(),
                    duration: Some(Duration::from_secs(4 + 3 * overhead_secs)),
                    floor: Duration::from_secs(4),
                    agents: agent_figures(overhead_secs == 0),
                    ..UpdateRun::default()
                }],
            )],
            update_pod_start_delay: Duration::from_secs(1),
            errors: Vec::new(),
        }
    }

    fn statuses(t: &Table) -> Vec<String> {
        t.rows.iter().map(|r| r[2].clone()).collect()
    }

    #[test]
    fn every_target_met() {
        let t = targets(&results(Some(30), 0, 40, 0));
        assert_eq!(statuses(&t), vec!["met"; 10], "{}", t.render());
    }

    #[test]
    fn every_target_missed() {
        let mut r = results(None, 6, 80, 2);
        r.startup[0][0].first_status_write = Some(Duration::from_secs(2));
        let t = targets(&r);
        assert_eq!(
            statuses(&t),
            vec![
                "MISSED", "MISSED", "MISSED", "met", "MISSED", "MISSED", "MISSED", "MISSED",
                "MISSED", "MISSED"
            ],
            "{}",
            t.render()
        );
        assert!(t.rows[0][1].contains("500 of 1000"), "{}", t.render());
        assert!(t.rows[1][1].contains("6.0/min"), "{}", t.render());
    }

    #[test]
    fn agent_figures_per_minute() {
        let t = agents(&results(Some(30), 0, 40, 0));
        let row = &t.rows[0];
        assert_eq!(row[0], "3 replicas");
        assert_eq!(row[1], "10.0", "{}", t.render());
        assert_eq!(row[2], "360", "60 Lease writes in 10 s: {}", t.render());
        assert_eq!(row[3], "0");
        assert_eq!(row[5], "0.50");
        assert_eq!(row[7], "9.00");
    }

    /// `r` with a SingleStore 2 + 2 update run whose agents meet their targets or not: the
    /// master-lost failover takes 13 s (met: Lease 10 s + MASTER_LOST_AFTER 2 s + 2 s) or
    /// 15 s, the switchover 0.4 s or 1.5 s, the update 0.5 s or 1.5 s over the floor per pod.
    fn with_singlestore(mut r: Results, met: bool) -> Results {
        let ms = Duration::from_millis;
        r.update.push((
            UpdateCase::Singlestore(2, 2),
            vec![UpdateRun {
                pods: 4,
                phase: "Successful".into(),
                duration: Some(if met { ms(6000) } else { ms(10_000) }),
                floor: Duration::from_secs(4),
                agents: crate::scenarios::AgentFigures {
                    peak_rss: vec![if met { 9 << 20 } else { 17 << 20 }, 8 << 20],
                    steady: Some(Tally {
                        lease_writes: 10,
                        writes: if met { 0 } else { 1 },
                        reads: 100,
                        lease_reads: 50,
                        reads_by_target: [("get pods".to_owned(), 100)].into(),
                        ..Tally::default()
                    }),
                    window: Duration::from_secs(10),
                    lease_duration: Some(Duration::from_secs(10)),
                    switchover: Some(if met { ms(400) } else { ms(1500) }),
                    failover_graceful: None,
                    failover_crash: Some(if met { ms(13_000) } else { ms(15_000) }),
                    failover_crash_lease: Some(ms(12_200)),
                },
                ..UpdateRun::default()
            }],
        ));
        r
    }

    #[test]
    fn singlestore_agent_figures_have_their_own_table() {
        let r = with_singlestore(results(Some(30), 0, 40, 0), true);
        let t = singlestore_agents(&r);
        assert_eq!(t.rows.len(), 1, "only the SingleStore case: {}", t.render());
        let row = &t.rows[0];
        assert_eq!(row[0], "SingleStore 2 agg + 2 leaf");
        assert_eq!(row[1], "9.0", "{}", t.render());
        assert_eq!(row[2], "60", "10 Lease writes in 10 s: {}", t.render());
        assert_eq!(row[3], "0");
        assert_eq!(
            row[4],
            "900",
            "150 reads, Lease reads included: {}",
            t.render()
        );
        assert_eq!(row[5], "0.40");
        assert_eq!(row[6], "12.20");
        assert_eq!(row[7], "13.00");
        assert_eq!(row[8], "10");
        assert!(t.title.contains("MASTER_LOST_AFTER = 2 s"), "{}", t.title);
        assert!(
            t.notes
                .iter()
                .any(|n| n.contains("kube-sim.io/singlestore-down") && n.contains("sets to 2 s")),
            "{}",
            t.render()
        );
        assert!(
            t.notes.iter().any(|n| n
                == "SingleStore 2 agg + 2 leaf: non-Lease reads per minute at rest in the first run: get pods 600.0."),
            "{}",
            t.render()
        );
        // Table 4c keeps the availability groups only.
        let ag = agents(&r);
        assert_eq!(ag.rows.len(), 1);
        assert_eq!(ag.rows[0][0], "3 replicas");
    }

    #[test]
    fn update_tables_have_a_row_and_a_column_per_case() {
        let mut r = with_singlestore(results(Some(30), 0, 40, 0), true);
        for (_, runs) in &mut r.update {
            for run in runs {
                let mut ops = Tally::default();
                ops.writes_by_target
                    .insert("create pods/eviction".into(), run.pods as u64);
                run.requests = vec![Tally::default(), ops];
            }
        }
        let (t, w) = update(&r);
        let labels: Vec<&str> = t.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(labels, ["MSSQL AG of 3", "SingleStore 2 agg + 2 leaf"]);
        assert_eq!(t.rows[1][3], "4.0", "floor pods × D: {}", t.render());
        assert_eq!(t.rows[1][4], "0.50", "(6 s − 4 s) / 4 pods: {}", t.render());
        assert!(
            t.title.contains("D = 1.0 s") && !t.title.contains("F ="),
            "{}",
            t.title
        );
        assert_eq!(
            w.header,
            [
                "ops-manager write",
                "MSSQL AG of 3 /request",
                "SingleStore 2 agg + 2 leaf /request"
            ]
        );
        assert_eq!(w.rows, [["create pods/eviction", "3", "4"]]);
    }

    #[test]
    fn singlestore_targets_allow_for_the_master_grace() {
        let met = targets(&with_singlestore(results(Some(30), 0, 40, 0), true));
        assert_eq!(statuses(&met), vec!["met"; 15], "{}", met.render());
        let row = met
            .rows
            .iter()
            .find(|r| r[0].contains("SingleStore master lost"))
            .unwrap();
        assert_eq!(row[1], "13.00 s (Lease 10 s, MASTER_LOST_AFTER 2 s)");
        let missed = targets(&with_singlestore(results(Some(30), 0, 40, 0), false));
        let singlestore: Vec<(&str, &str)> = missed
            .rows
            .iter()
            .filter(|r| r[0].contains("SingleStore"))
            .map(|r| (r[0].as_str(), r[2].as_str()))
            .collect();
        assert_eq!(
            singlestore,
            [
                ("< 1 s overhead per restarted pod (SingleStore)", "MISSED"),
                ("db-agent RSS ≤ 16 MiB (SingleStore)", "MISSED"),
                (
                    "db-agent writes at rest: Lease renewals only (SingleStore)",
                    "MISSED"
                ),
                (
                    "failover ≤ Lease duration + MASTER_LOST_AFTER + 2 s (SingleStore master lost)",
                    "MISSED"
                ),
                ("switchover ≤ 1 s per UpdateVersion (SingleStore)", "MISSED"),
            ],
            "{}",
            missed.render()
        );
        // The availability groups' rows are judged on their own runs only.
        assert!(
            missed
                .rows
                .iter()
                .filter(|r| !r[0].contains("SingleStore"))
                .all(|r| r[2] == "met"),
            "{}",
            missed.render()
        );
    }

    #[test]
    fn unmeasured_targets_say_so() {
        let t = targets(&Results::default());
        assert!(
            statuses(&t).iter().all(|s| s == "not measured"),
            "{}",
            t.render()
        );
    }

    #[test]
    fn memory_per_database_is_relative_to_idle() {
        let (t, k) = memory(&results(Some(30), 0, 26, 0));
        // provisioner at N = 1000: (26 MiB - 8 MiB) / 1000 = 18.4 KiB.
        let row = t
            .rows
            .iter()
            .find(|r| r[0] == "N = 1000" && r[1] == "provisioner")
            .unwrap();
        assert_eq!(row[5], "18.4");
        assert_eq!(k.rows.len(), 2);
    }

    #[test]
    fn convergence_shows_report_settle_and_names_timeouts() {
        let settle = |millis: u64, unreported: usize| Settle {
            elapsed: Duration::from_millis(millis),
            ready: 1000,
            unreported,
            limit: Duration::from_secs(30),
        };
        let cases = [
            (vec![Some(settle(400, 0))], "0.40", false),
            (
                vec![
                    Some(settle(200, 0)),
                    Some(settle(600, 0)),
                    Some(settle(400, 0)),
                ],
                "0.40 (0.20–0.60)",
                false,
            ),
            (
                vec![Some(settle(300, 0)), Some(settle(30_000, 2))],
                "15.15 (0.30–30.00); 1 of 2 runs timed out",
                true,
            ),
            (vec![None], "n/a", false),
        ];
        for (settles, cell, note) in cases {
            let mut r = results(Some(30), 0, 40, 0);
            r.scale[1].runs = settles
                .into_iter()
                .map(|s| ScaleRun {
                    report_settle: s,
                    ..scale_run(1000, Some(30), 40, 0)
                })
                .collect();
            let t = convergence(&r);
            let col = t
                .header
                .iter()
                .position(|h| h == "reports settle s")
                .unwrap();
            assert_eq!(t.rows[0][col], cell, "{}", t.render());
            let timeout_note = t.notes.iter().any(|n| {
                n.contains(
                    "run 2: 2 of 1000 Ready databases still had no `Provisioned` Event after 30 s",
                )
            });
            assert_eq!(timeout_note, note, "{}", t.render());
        }
    }

    #[test]
    fn all_tables_render() {
        let text: String = all(&results(Some(30), 0, 40, 0))
            .iter()
            .map(Table::render)
            .collect();
        for heading in [
            "1. Convergence",
            "2. Steady",
            "3. Operator memory",
            "4. UpdateVersion",
            "4c. db-agent in the updated AGs",
            "5. Start-up",
            "Targets",
        ] {
            assert!(text.contains(heading), "{heading} missing:\n{text}");
        }
        assert!(
            !text.contains("4d."),
            "no SingleStore runs, no table 4d:\n{text}"
        );
        let mut only_singlestore = with_singlestore(Results::default(), true);
        only_singlestore.update_pod_start_delay = Duration::from_secs(1);
        let text: String = all(&only_singlestore).iter().map(Table::render).collect();
        assert!(
            text.contains("4d. db-agent in the updated SingleStore clusters"),
            "{text}"
        );
        assert!(!text.contains("4c."), "no AG runs, no table 4c:\n{text}");
    }
}
