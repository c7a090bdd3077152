//! One run of each measurement: a fresh kube-sim process and fresh operator processes per run.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::mssql::MSSQLServer;
use api::ops::MSSQLServerOpsRequest;
use api::singlestore::Singlestore;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::discovery::ApiResource;

use crate::process::{LEASE_NAMESPACE, Operator, OperatorProcess, Sim, SimFlags};
use crate::procfs::Sample;
use crate::reports::{self, Settle};
use crate::requests::{Snapshot, Tally, is_write};
use crate::watch::PhaseWatch;
use crate::workload::{self, Db};

/// Both operators, in table order.
pub const OPERATORS: [Operator; 2] = [Operator::Provisioner, Operator::OpsManager];

/// How long start-up may take before a run gives up on it.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// Poll period of the start-up measurement (its resolution).
const STARTUP_POLL: Duration = Duration::from_millis(10);
/// Concurrent creates when submitting databases.
const CREATE_CONCURRENCY: usize = 8;

/// A scratch directory for one run's kubeconfig and logs (kept with `BENCH_KEEP=1`).
pub struct RunDir(std::path::PathBuf);

impl RunDir {
    /// A fresh directory named after the run.
    pub fn new(label: &str) -> anyhow::Result<RunDir> {
        let dir = std::env::temp_dir().join(format!("bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunDir(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::env::var_os("BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Start-up times of one operator, from process spawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Startup {
    /// Until its Lease names it as holder.
    pub lease: Option<Duration>,
    /// Until its first list of its primary resource (controllers started).
    pub first_list: Option<Duration>,
    /// Until its first status write of a database that existed before it started (provisioner).
    pub first_status_write: Option<Duration>,
}

/// kube-sim plus both operators.
pub struct Stack {
    /// kube-sim.
    pub sim: Sim,
    /// Provisioner, then ops-manager.
    pub operators: Vec<OperatorProcess>,
    _dir: RunDir,
}

impl Stack {
    /// Starts kube-sim, runs `prepare` against it, then starts both operators and measures their
    /// start-up until each holds its Lease and listed its resource (and, with `status_write`,
    /// until the provisioner wrote a database's status).
    pub async fn start(
        label: &str,
        flags: SimFlags,
        status_write: bool,
        prepare: impl AsyncFnOnce(&Sim) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Stack, Vec<Startup>)> {
        let dir = RunDir::new(label)?;
        let sim = Sim::start(&dir.0, flags).await?;
        prepare(&sim).await?;
        let baseline = sim.requests().await?;
        let mut operators = Vec::new();
        for op in OPERATORS {
            operators.push(OperatorProcess::start(op, &sim).await?);
        }
        let mut stack = Stack {
            sim,
            operators,
            _dir: dir,
        };
        let startup = stack.measure_startup(&baseline, status_write).await?;
        Ok((stack, startup))
    }

    async fn measure_startup(
        &mut self,
        baseline: &Snapshot,
        status_write: bool,
    ) -> anyhow::Result<Vec<Startup>> {
        let leases: Api<Lease> = Api::namespaced(self.sim.client.clone(), LEASE_NAMESPACE);
        let mut found = vec![Startup::default(); self.operators.len()];
        let complete = |s: &Startup, op: Operator| {
            s.lease.is_some()
                && s.first_list.is_some()
                && (!status_write || op != Operator::Provisioner || s.first_status_write.is_some())
        };
        let begin = Instant::now();
        loop {
            let requests = self.sim.requests().await?.since(baseline);
            for (i, p) in self.operators.iter().enumerate() {
                let op = p.operator;
                let s = &mut found[i];
                let now = p.started.elapsed();
                if s.first_list.is_none()
                    && requests.any(|r| {
                        r.user_agent.starts_with(op.agent())
                            && r.verb == "list"
                            && r.resource == op.primary_resource()
                    })
                {
                    s.first_list = Some(now);
                }
                if s.first_status_write.is_none()
                    && op == Operator::Provisioner
                    && requests.any(|r| {
                        r.user_agent.starts_with(op.agent())
                            && is_write(&r.verb)
                            && r.resource == "mssqlservers"
                            && r.subresource == "status"
                    })
                {
                    s.first_status_write = Some(now);
                }
                if s.lease.is_none() {
                    let holder = leases
                        .get_opt(op.lease())
                        .await?
                        .and_then(|l| l.spec?.holder_identity);
                    if holder.is_some_and(|h| h == format!("bench-{}", op.binary())) {
                        s.lease = Some(now);
                    }
                }
            }
            if found
                .iter()
                .zip(&self.operators)
                .all(|(s, p)| complete(s, p.operator))
            {
                return Ok(found);
            }
            for p in &mut self.operators {
                p.ensure_running(&self.sim)?;
            }
            if begin.elapsed() > STARTUP_LIMIT {
                anyhow::bail!(
                    "the operators did not start within {STARTUP_LIMIT:?} (seen: {found:?}); logs in {}",
                    self.sim.dir.display()
                );
            }
            tokio::time::sleep(STARTUP_POLL).await;
        }
    }

    /// Memory and CPU time of the provisioner, the ops-manager and kube-sim.
    pub fn sample(&self) -> anyhow::Result<Samples> {
        Ok(Samples {
            operators: self
                .operators
                .iter()
                .map(|p| p.sample())
                .collect::<anyhow::Result<_>>()?,
            sim: self.sim.sample()?,
        })
    }

    /// Fails when an operator has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for p in &mut self.operators {
            p.ensure_running(&self.sim)?;
        }
        Ok(())
    }

    /// Stops the operators, then kube-sim.
    pub async fn stop(self) -> anyhow::Result<()> {
        for p in self.operators {
            p.stop().await?;
        }
        self.sim.stop().await
    }
}

/// Samples of the three processes at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Provisioner, ops-manager.
    pub operators: Vec<Sample>,
    /// kube-sim.
    pub sim: Sample,
}

/// Requests per minute of one operator in the steady-state window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Steady {
    /// Per operator: the window's tally.
    pub tallies: Vec<Tally>,
    /// Window length.
    pub window: Duration,
}

impl Steady {
    /// `count` scaled to one minute of this window.
    pub fn per_minute(&self, count: u64) -> f64 {
        count as f64 * 60.0 / self.window.as_secs_f64()
    }
}

/// One scale run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScaleRun {
    /// Databases created.
    pub databases: usize,
    /// Pods they run when Ready.
    pub expected_pods: usize,
    /// Time to submit every create.
    pub create_time: Duration,
    /// Time from the first create until every database was Ready (`None`: it never was).
    pub converge_time: Option<Duration>,
    /// Databases Ready at the end of the wait.
    pub ready: usize,
    /// Phases at the end of the wait ("Ready=…, Provisioning=…").
    pub phases: String,
    /// Pods running at the end.
    pub pods_running: usize,
    /// Requests of each operator from the first create until the end of the wait and of the
    /// report settle (so the last transition Events count here, not at steady state).
    pub converge_requests: Vec<Tally>,
    /// After the wait: until the provisioner had published a `Provisioned` Event for every Ready
    /// database (none for N = 0).
    pub report_settle: Option<Settle>,
    /// The steady-state window (none for N = 0).
    pub steady: Option<Steady>,
    /// Samples right after convergence and at the end of the run (settled).
    pub at_converged: Samples,
    /// See [`ScaleRun::at_converged`].
    pub settled: Samples,
    /// Start-up of the run's operators (no database existed yet).
    pub startup: Vec<Startup>,
}

fn sim_flags_converge(failover: Duration) -> SimFlags {
    SimFlags {
        pod_start_delay: Duration::ZERO,
        failover_delay: failover,
    }
}

fn resources() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<MSSQLServer>(&()),
        ApiResource::erase::<Singlestore>(&()),
    ]
}

async fn create_db(client: &kube::Client, i: usize, db: Db) -> anyhow::Result<()> {
    let name = workload::db_name(i);
    let pp = PostParams::default();
    match db {
        Db::MssqlStandalone => {
            Api::namespaced(client.clone(), workload::NAMESPACE)
                .create(&pp, &workload::mssql(&name, None))
                .await?;
        }
        Db::MssqlAg(n) => {
            Api::namespaced(client.clone(), workload::NAMESPACE)
                .create(&pp, &workload::mssql(&name, Some(n)))
                .await?;
        }
        Db::SinglestoreStandalone => {
            Api::namespaced(client.clone(), workload::NAMESPACE)
                .create(&pp, &workload::singlestore(&name, None))
                .await?;
        }
        Db::SinglestoreTopology(a, l) => {
            Api::namespaced(client.clone(), workload::NAMESPACE)
                .create(&pp, &workload::singlestore(&name, Some((a, l))))
                .await?;
        }
    }
    Ok(())
}

async fn running_pods(client: &kube::Client) -> anyhow::Result<usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), workload::NAMESPACE);
    Ok(pods
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count())
}

/// Scale run: start both operators with no databases, create `dbs`, wait until all are Ready
/// (or no progress for `stall`), wait until the provisioner has published a `Provisioned` Event
/// for every Ready database (the report settle), then a steady-state window, sampling memory on
/// the way.
pub async fn scale(
    label: &str,
    dbs: &[Db],
    failover: Duration,
    stall: Duration,
    steady: Duration,
    idle_settle: Duration,
) -> anyhow::Result<ScaleRun> {
    let (mut stack, startup) =
        Stack::start(label, sim_flags_converge(failover), false, async |_| Ok(())).await?;
    let mut run = ScaleRun {
        databases: dbs.len(),
        expected_pods: dbs.iter().map(|d| d.pods()).sum(),
        startup,
        ..ScaleRun::default()
    };
    if dbs.is_empty() {
        tokio::time::sleep(idle_settle).await;
        stack.ensure_running()?;
        run.at_converged = stack.sample()?;
        run.settled = run.at_converged.clone();
        stack.stop().await?;
        return Ok(run);
    }
    let client = stack.sim.client.clone();
    let mut watch = PhaseWatch::start(&client, workload::NAMESPACE, &resources());
    let before = stack.sim.requests().await?;
    let t0 = Instant::now();
    stream::iter(dbs.iter().copied().enumerate())
        .map(|(i, db)| {
            let client = client.clone();
            async move { create_db(&client, i, db).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("creating the databases")?;
    run.create_time = t0.elapsed();
    let n = dbs.len();
    // Overall limit; the stall detector (no new Ready database for `stall`) ends hopeless waits
    // earlier.
    let limit = Duration::from_secs(90) + Duration::from_millis(100 * n as u64);
    let outcome = watch
        .wait(
            t0,
            stall,
            limit,
            |p| p.count("Ready"),
            |p| p.count("Ready") >= n,
        )
        .await;
    run.converge_time = outcome.elapsed;
    run.ready = outcome.phases.count("Ready");
    run.phases = outcome.phases.describe();
    stack.ensure_running()?;
    run.at_converged = stack.sample()?;
    // The provisioner publishes its transition Events right after the Ready status the watch
    // saw: wait until they are out, so they count as convergence, not as steady-state writes.
    let ready = reports::ready_databases(&outcome.phases, &resources());
    let settle = reports::wait(
        &client,
        workload::NAMESPACE,
        &ready,
        Instant::now(),
        reports::SETTLE_LIMIT,
    )
    .await?;
    run.report_settle = Some(settle);
    let converged = stack.sim.requests().await?;
    run.converge_requests = OPERATORS
        .iter()
        .map(|op| converged.since(&before).tally(op.agent()))
        .collect();
    if !steady.is_zero() {
        let start = converged;
        tokio::time::sleep(steady).await;
        let end = stack.sim.requests().await?;
        let window = end.since(&start);
        run.steady = Some(Steady {
            tallies: OPERATORS
                .iter()
                .map(|op| window.tally(op.agent()))
                .collect(),
            window: steady,
        });
    }
    stack.ensure_running()?;
    run.settled = stack.sample()?;
    run.pods_running = running_pods(&client).await?;
    drop(watch);
    stack.stop().await?;
    Ok(run)
}

/// One start-up run: a database exists before the operators start.
pub async fn startup(label: &str, failover: Duration) -> anyhow::Result<Vec<Startup>> {
    let (stack, startup) = Stack::start(
        label,
        sim_flags_converge(failover),
        true,
        async |sim: &Sim| create_db(&sim.client, 0, Db::MssqlStandalone).await,
    )
    .await?;
    stack.stop().await?;
    Ok(startup)
}

/// One UpdateVersion run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateRun {
    /// AG replicas (pods restarted).
    pub pods: i32,
    /// The request's final phase.
    pub phase: String,
    /// From creating the request until it was seen Successful (`None`: it never was).
    pub duration: Option<Duration>,
    /// pods × pod start delay + failover delay (the issue's floor).
    pub floor: Duration,
    /// (pods − 1) × pod start delay + max(pod start delay, failover delay): the primary's
    /// replacement starts while the failover timer runs, so the two overlap.
    pub tight_floor: Duration,
    /// Requests during the update, per operator.
    pub requests: Vec<Tally>,
    /// Time from creating the database until it was Ready.
    pub ready_time: Option<Duration>,
    /// What the AG's agents cost and how fast they move the primary role.
    pub agents: AgentFigures,
}

/// The db-agents of the updated AG.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentFigures {
    /// Peak RSS (VmHWM) of each agent process, in bytes, sampled after the update.
    pub peak_rss: Vec<u64>,
    /// All agents' requests during the steady window before the update.
    pub steady: Option<Tally>,
    /// Length of that window.
    pub window: Duration,
    /// `spec.leaseDurationSeconds` of the `<db>-primary` Lease.
    pub lease_duration: Option<Duration>,
    /// `SwitchoverPrimary--<pod>` from first seen Unknown to first seen True (50 ms polls).
    pub switchover: Option<Duration>,
    /// Deleting the primary pod (SIGTERM: the agent's stop round hands over) until another
    /// pod is labelled primary and Ready.
    pub failover_graceful: Option<Duration>,
    /// The primary's node lost ([`Loss::Crash`]) until another pod is labelled primary and
    /// Ready.
    pub failover_crash: Option<Duration>,
}

/// The user-agent prefix of the db-agents' requests.
pub const DB_AGENT: &str = "db-agent/";
/// Steady window of the agents before the update.
const AGENT_WINDOW: Duration = Duration::from_secs(10);
/// Poll period of the switchover and failover measurements (their resolution).
const ROLE_POLL: Duration = Duration::from_millis(25);

/// The pod labelled primary and Ready, with its uid.
async fn ready_primary(pods: &Api<Pod>) -> Option<(String, String)> {
    let list = pods.list(&ListParams::default()).await.ok()?;
    list.items.into_iter().find_map(|p| {
        let labels = p.metadata.labels.as_ref()?;
        let ready = p
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (labels.get("kubedb.com/role").map(String::as_str) == Some("primary") && ready)
            .then_some(())
            .and(p.metadata.name.zip(p.metadata.uid))
    })
}

/// How the primary is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// A normal delete: SIGTERM, the agent's stop round hands the role over.
    Delete,
    /// The pod's SQL Server kept from coming back (kube-sim's `kube-sim.io/mssql-down` on its
    /// PVC), its agent SIGKILLed, then the pod force-deleted (grace 0): no stop round, the
    /// Lease still names the old primary, as after the loss of its node.
    Crash,
}

/// Loses the Ready primary as `loss` says and times until another pod is the Ready primary.
async fn time_failover(
    pods: &Api<Pod>,
    kubeconfig: &std::path::Path,
    loss: Loss,
    limit: Duration,
) -> Option<Duration> {
    let old = ready_primary(pods).await?;
    let t = Instant::now();
    let grace = match loss {
        Loss::Delete => None,
        Loss::Crash => {
            let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
                Api::namespaced(pods.clone().into_client(), workload::NAMESPACE);
            let down = serde_json::json!({"metadata": {"annotations": {"kube-sim.io/mssql-down": "true"}}});
            pvcs.patch(
                &format!("data-{}", old.0),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&down),
            )
            .await
            .ok()?;
            for pid in testkit::db_agent_pids(kubeconfig, Some(&old.0)) {
                // SAFETY: kill(2) on a pid this run's kube-sim started; no memory is involved.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            Some(0)
        }
    };
    let params = kube::api::DeleteParams {
        grace_period_seconds: grace,
        ..kube::api::DeleteParams::default()
    };
    pods.delete(&old.0, &params).await.ok()?;
    while t.elapsed() < limit {
        if let Some(now) = ready_primary(pods).await
            && now.0 != old.0
        {
            return Some(t.elapsed());
        }
        tokio::time::sleep(ROLE_POLL).await;
    }
    None
}

/// Polls the request until its `SwitchoverPrimary--` condition has been seen Unknown and then
/// True; the time between.
async fn switchover_time(api: Api<MSSQLServerOpsRequest>, name: String) -> Option<Duration> {
    let mut unknown_at: Option<Instant> = None;
    loop {
        if let Ok(r) = api.get(&name).await {
            let c = r.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_.starts_with("SwitchoverPrimary--"))
                    .cloned()
            });
            match c.map(|c| c.status) {
                Some(api::conditions::ConditionStatus::Unknown) => {
                    unknown_at.get_or_insert_with(Instant::now);
                }
                Some(api::conditions::ConditionStatus::True) => {
                    return unknown_at.map(|t| t.elapsed());
                }
                Some(api::conditions::ConditionStatus::False) => return None,
                None => {}
            }
        }
        tokio::time::sleep(ROLE_POLL).await;
    }
}

impl UpdateRun {
    /// (duration − tight floor) / pods, in seconds.
    pub fn overhead_per_pod(&self) -> Option<f64> {
        self.duration
            .map(|d| (d.as_secs_f64() - self.tight_floor.as_secs_f64()) / f64::from(self.pods))
    }

    /// (duration − the issue's floor) / pods, in seconds.
    pub fn overhead_per_pod_issue_floor(&self) -> Option<f64> {
        self.duration
            .map(|d| (d.as_secs_f64() - self.floor.as_secs_f64()) / f64::from(self.pods))
    }
}

/// UpdateVersion of an AG of `pods` replicas with pod start delay `delay` and failover `failover`.
pub async fn update(
    label: &str,
    pods: i32,
    delay: Duration,
    failover: Duration,
) -> anyhow::Result<UpdateRun> {
    let flags = SimFlags {
        pod_start_delay: delay,
        failover_delay: failover,
    };
    let (mut stack, _) = Stack::start(label, flags, false, async |_| Ok(())).await?;
    let client = stack.sim.client.clone();
    let mut dbs = PhaseWatch::start(&client, workload::NAMESPACE, &resources());
    let name = workload::db_name(0);
    let t0 = Instant::now();
    create_db(&client, 0, Db::MssqlAg(pods)).await?;
    let key = format!("mssqlservers/{name}");
    let is_ready = |p: &crate::watch::Phases| p.get(&key) == Some("Ready");
    let ready = dbs
        .wait(
            t0,
            Duration::from_secs(60),
            Duration::from_secs(180),
            |p| usize::from(is_ready(p)),
            is_ready,
        )
        .await;
    let mut run = UpdateRun {
        pods,
        floor: delay * pods as u32 + failover,
        tight_floor: delay * (pods as u32 - 1) + delay.max(failover),
        ready_time: ready.elapsed,
        ..UpdateRun::default()
    };
    if ready.elapsed.is_none() {
        run.phase = format!("database not Ready ({})", ready.phases.describe());
        stack.stop().await?;
        return Ok(run);
    }
    // The agents at rest: what they write and read in a window.
    let pods: Api<Pod> = Api::namespaced(client.clone(), workload::NAMESPACE);
    let leases: Api<Lease> = Api::namespaced(client.clone(), workload::NAMESPACE);
    run.agents.lease_duration = leases
        .get(&format!("{name}-primary"))
        .await
        .ok()
        .and_then(|l| l.spec?.lease_duration_seconds)
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let at_rest = stack.sim.requests().await?;
    tokio::time::sleep(AGENT_WINDOW).await;
    run.agents.steady = Some(stack.sim.requests().await?.since(&at_rest).tally(DB_AGENT));
    run.agents.window = AGENT_WINDOW;

    let mut requests = PhaseWatch::start(
        &client,
        workload::NAMESPACE,
        &[ApiResource::erase::<MSSQLServerOpsRequest>(&())],
    );
    let before = stack.sim.requests().await?;
    let request = "bench-update";
    let switchover = tokio::spawn(switchover_time(
        Api::namespaced(client.clone(), workload::NAMESPACE),
        request.to_owned(),
    ));
    let t1 = Instant::now();
    Api::namespaced(client.clone(), workload::NAMESPACE)
        .create(
            &PostParams::default(),
            &workload::update_version(request, &name),
        )
        .await
        .context("creating the UpdateVersion request")?;
    let key = format!("mssqlserveropsrequests/{request}");
    let finished = |p: &crate::watch::Phases| {
        matches!(
            p.get(&key),
            Some("Successful" | "Failed" | "Skipped" | "Denied")
        )
    };
    // No progress measure: the request gets five minutes.
    let limit = Duration::from_secs(300);
    let outcome = requests.wait(t1, limit, limit, |_| 0, finished).await;
    run.phase = outcome
        .phases
        .get(&key)
        .filter(|p| !p.is_empty())
        .unwrap_or("no phase")
        .to_owned();
    if run.phase == "Successful" {
        run.duration = outcome.elapsed;
    }
    let after = stack.sim.requests().await?.since(&before);
    run.requests = OPERATORS.iter().map(|op| after.tally(op.agent())).collect();
    if run.phase == "Successful" {
        run.agents.switchover = tokio::time::timeout(Duration::from_secs(5), switchover)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        run.agents.peak_rss = testkit::db_agent_pids(&stack.sim.kubeconfig, None)
            .into_iter()
            .filter_map(|pid| crate::procfs::sample(pid).ok())
            .map(|s| s.memory.peak)
            .collect();
        let limit = Duration::from_secs(60);
        run.agents.failover_graceful =
            time_failover(&pods, &stack.sim.kubeconfig, Loss::Delete, limit).await;
        // Back to one Ready primary and every pod Ready before the second failover.
        let is_ready =
            |p: &crate::watch::Phases| p.get(&format!("mssqlservers/{name}")) == Some("Ready");
        dbs.wait(
            Instant::now(),
            limit,
            limit,
            |p| usize::from(is_ready(p)),
            is_ready,
        )
        .await;
        run.agents.failover_crash =
            time_failover(&pods, &stack.sim.kubeconfig, Loss::Crash, limit).await;
    } else {
        switchover.abort();
    }
    stack.ensure_running()?;
    drop((dbs, requests));
    stack.stop().await?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_subtracts_the_floor_per_pod() {
        let run = UpdateRun {
            pods: 3,
            duration: Some(Duration::from_secs(7)),
            floor: Duration::from_secs(4),
            tight_floor: Duration::from_secs(1),
            ..UpdateRun::default()
        };
        assert_eq!(run.overhead_per_pod_issue_floor(), Some(1.0));
        assert_eq!(run.overhead_per_pod(), Some(2.0));
        assert_eq!(UpdateRun::default().overhead_per_pod(), None);
    }

    #[test]
    fn steady_counts_scale_to_a_minute() {
        let s = Steady {
            tallies: Vec::new(),
            window: Duration::from_secs(30),
        };
        assert_eq!(s.per_minute(5), 10.0);
    }
}
