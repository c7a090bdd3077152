//! One run of each measurement: a fresh kube-sim process and fresh operator processes per run.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::mssql::MSSQLServer;
use api::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
use api::singlestore::Singlestore;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
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

fn sim_flags_converge() -> SimFlags {
    SimFlags {
        pod_start_delay: Duration::ZERO,
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
    stall: Duration,
    steady: Duration,
    idle_settle: Duration,
) -> anyhow::Result<ScaleRun> {
    let (mut stack, startup) =
        Stack::start(label, sim_flags_converge(), false, async |_| Ok(())).await?;
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
pub async fn startup(label: &str) -> anyhow::Result<Vec<Startup>> {
    let (stack, startup) = Stack::start(label, sim_flags_converge(), true, async |sim: &Sim| {
        create_db(&sim.client, 0, Db::MssqlStandalone).await
    })
    .await?;
    stack.stop().await?;
    Ok(startup)
}

/// What an UpdateVersion run updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateCase {
    /// An MSSQL availability group of this many replicas.
    Ag(i32),
    /// A Singlestore of this many aggregators and leaves, whose aggregator agents replace a lost
    /// master after [`workload::MASTER_LOST_AFTER`].
    Singlestore(i32, i32),
}

impl UpdateCase {
    /// Pods the update restarts.
    pub fn pods(self) -> i32 {
        match self {
            UpdateCase::Ag(n) => n,
            UpdateCase::Singlestore(a, l) => a + l,
        }
    }

    /// "MSSQL AG of 3", "SingleStore 2 agg + 2 leaf".
    pub fn label(self) -> String {
        match self {
            UpdateCase::Ag(n) => format!("MSSQL AG of {n}"),
            UpdateCase::Singlestore(a, l) => format!("SingleStore {a} agg + {l} leaf"),
        }
    }

    /// Whether this is a SingleStore cluster.
    pub fn is_singlestore(self) -> bool {
        matches!(self, UpdateCase::Singlestore(..))
    }

    /// Plural of the database resource.
    fn resource(self) -> &'static str {
        match self {
            UpdateCase::Ag(_) => "mssqlservers",
            UpdateCase::Singlestore(..) => "singlestores",
        }
    }

    /// The ops request resource.
    fn ops_resource(self) -> ApiResource {
        match self {
            UpdateCase::Ag(_) => ApiResource::erase::<MSSQLServerOpsRequest>(&()),
            UpdateCase::Singlestore(..) => ApiResource::erase::<SinglestoreOpsRequest>(&()),
        }
    }

    /// The agents' Lease.
    fn lease(self, db: &str) -> String {
        match self {
            UpdateCase::Ag(_) => api::names::primary_lease(db),
            UpdateCase::Singlestore(..) => api::names::singlestore::master_lease(db),
        }
    }

    /// `kubedb.com/role` of the pod holding the leader role.
    fn leader_role(self) -> &'static str {
        match self {
            UpdateCase::Ag(_) => api::names::ROLE_PRIMARY,
            UpdateCase::Singlestore(..) => api::names::singlestore::ROLE_MASTER,
        }
    }

    /// kube-sim's PVC annotation that keeps the database node on that volume from starting.
    fn down_annotation(self) -> &'static str {
        match self {
            UpdateCase::Ag(_) => "kube-sim.io/mssql-down",
            UpdateCase::Singlestore(..) => "kube-sim.io/singlestore-down",
        }
    }

    async fn create(self, client: &kube::Client, name: &str) -> anyhow::Result<()> {
        let pp = PostParams::default();
        match self {
            UpdateCase::Ag(n) => {
                Api::namespaced(client.clone(), workload::NAMESPACE)
                    .create(&pp, &workload::mssql(name, Some(n)))
                    .await?;
            }
            UpdateCase::Singlestore(a, l) => {
                Api::namespaced(client.clone(), workload::NAMESPACE)
                    .create(&pp, &workload::singlestore_with_grace(name, a, l))
                    .await?;
            }
        }
        Ok(())
    }

    async fn request_update(
        self,
        client: &kube::Client,
        request: &str,
        db: &str,
    ) -> anyhow::Result<()> {
        let pp = PostParams::default();
        match self {
            UpdateCase::Ag(_) => {
                Api::namespaced(client.clone(), workload::NAMESPACE)
                    .create(&pp, &workload::update_version(request, db))
                    .await?;
            }
            UpdateCase::Singlestore(..) => {
                Api::namespaced(client.clone(), workload::NAMESPACE)
                    .create(&pp, &workload::singlestore_update_version(request, db))
                    .await?;
            }
        }
        Ok(())
    }
}

/// One UpdateVersion run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateRun {
    /// Pods restarted.
    pub pods: i32,
    /// The request's final phase.
    pub phase: String,
    /// From creating the request until it was seen Successful (`None`: it never was).
    pub duration: Option<Duration>,
    /// pods × pod start delay: what the simulated cluster imposes anyway.
    pub floor: Duration,
    /// Requests during the update, per operator.
    pub requests: Vec<Tally>,
    /// Time from creating the database until it was Ready.
    pub ready_time: Option<Duration>,
    /// What the database's agents cost and how fast they move the leader role.
    pub agents: AgentFigures,
}

/// The db-agents of the updated database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentFigures {
    /// Peak RSS (VmHWM) of each agent process, in bytes, sampled after the update.
    pub peak_rss: Vec<u64>,
    /// All agents' requests during the steady window before the update.
    pub steady: Option<Tally>,
    /// Length of that window.
    pub window: Duration,
    /// `spec.leaseDurationSeconds` of the agents' Lease (`<db>-primary`, `<db>-master`).
    pub lease_duration: Option<Duration>,
    /// `SwitchoverPrimary--<pod>` from first seen Unknown to first seen True (25 ms polls).
    pub switchover: Option<Duration>,
    /// Deleting the primary pod (SIGTERM: the agent's stop round hands over) until another
    /// pod is labelled primary and Ready (availability groups only: a SingleStore master that
    /// restarts keeps its role).
    pub failover_graceful: Option<Duration>,
    /// The leader's node lost ([`Loss::Crash`]) until another pod is labelled with the leader
    /// role and Ready.
    pub failover_crash: Option<Duration>,
    /// The leader's node lost until the agents' Lease names another holder (the takeover, before
    /// the new leader's label and readiness).
    pub failover_crash_lease: Option<Duration>,
}

/// The user-agent prefix of the db-agents' requests.
pub const DB_AGENT: &str = "db-agent/";
/// Steady window of the agents before the update.
const AGENT_WINDOW: Duration = Duration::from_secs(10);
/// Poll period of the switchover and failover measurements (their resolution).
const ROLE_POLL: Duration = Duration::from_millis(25);

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn role(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(api::names::LABEL_ROLE)
        .map(String::as_str)
}

/// The pod labelled `leader` and Ready, with its uid.
async fn ready_leader(pods: &Api<Pod>, leader: &str) -> Option<(String, String)> {
    let list = pods.list(&ListParams::default()).await.ok()?;
    list.items.into_iter().find_map(|p| {
        (role(&p) == Some(leader) && is_ready(&p))
            .then_some(())
            .and(p.metadata.name.zip(p.metadata.uid))
    })
}

/// Waits (at most `limit`) until every pod is Ready and labelled by its agent, one of them
/// `leader`: the SingleStore agents label their pods a round after readiness.
async fn all_labelled(pods: &Api<Pod>, leader: &str, expected: usize, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            let items = &list.items;
            if items.len() == expected
                && items.iter().all(|p| is_ready(p) && role(p).is_some())
                && items.iter().any(|p| role(p) == Some(leader))
            {
                return true;
            }
        }
        tokio::time::sleep(ROLE_POLL).await;
    }
    false
}

/// With `BENCH_KEEP`, the logs of the database pods' agents (`<pod>.<container>.log` for each
/// `*-coordinator` container), next to the operators' in the run's directory.
async fn keep_agent_logs(pods: &Api<Pod>, dir: &std::path::Path) {
    if std::env::var_os("BENCH_KEEP").is_none() {
        return;
    }
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return;
    };
    for pod in list.items {
        let name = pod.metadata.name.unwrap_or_default();
        let containers = pod.spec.map(|s| s.containers).unwrap_or_default();
        for c in containers
            .iter()
            .filter(|c| c.name.ends_with("-coordinator"))
        {
            let params = kube::api::LogParams {
                container: Some(c.name.clone()),
                ..kube::api::LogParams::default()
            };
            if let Ok(text) = pods.logs(&name, &params).await {
                let _ = std::fs::write(dir.join(format!("{name}.{}.log", c.name)), text);
            }
        }
    }
}

/// How the leader is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// A normal delete: SIGTERM, the agent's stop round hands the role over.
    Delete,
    /// The pod's database node kept from coming back (kube-sim's `kube-sim.io/mssql-down` or
    /// `kube-sim.io/singlestore-down` on its PVC), its agent SIGKILLed, then the pod
    /// force-deleted (grace 0): no stop round, the Lease still names the old leader, as after
    /// the loss of its node.
    Crash,
}

/// How long a failover took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Failover {
    /// Until the Lease named another holder.
    lease_taken: Option<Duration>,
    /// Until another pod was the Ready leader.
    ready: Option<Duration>,
}

/// Loses the Ready leader as `loss` says and times until the Lease `lease` names another holder
/// and until another pod is the Ready leader.
async fn time_failover(
    pods: &Api<Pod>,
    lease: &str,
    kubeconfig: &std::path::Path,
    case: UpdateCase,
    loss: Loss,
    limit: Duration,
) -> Failover {
    let mut times = Failover::default();
    let leader = case.leader_role();
    let Some(old) = ready_leader(pods, leader).await else {
        return times;
    };
    let leases: Api<Lease> = Api::namespaced(pods.clone().into_client(), workload::NAMESPACE);
    let t = Instant::now();
    let grace = match loss {
        Loss::Delete => None,
        Loss::Crash => {
            let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
                Api::namespaced(pods.clone().into_client(), workload::NAMESPACE);
            let down =
                serde_json::json!({"metadata": {"annotations": {case.down_annotation(): "true"}}});
            if pvcs
                .patch(
                    &format!("{}-{}", api::names::DATA_VOLUME, old.0),
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&down),
                )
                .await
                .is_err()
            {
                return times;
            }
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
    if pods.delete(&old.0, &params).await.is_err() {
        return times;
    }
    while t.elapsed() < limit {
        if times.lease_taken.is_none()
            && let Ok(Some(l)) = leases.get_opt(lease).await
            && l.spec
                .and_then(|s| s.holder_identity)
                .is_some_and(|h| !h.is_empty() && h != old.0)
        {
            times.lease_taken = Some(t.elapsed());
        }
        if let Some(now) = ready_leader(pods, leader).await
            && now.0 != old.0
        {
            times.ready = Some(t.elapsed());
            return times;
        }
        tokio::time::sleep(ROLE_POLL).await;
    }
    times
}

/// The status of the request's `SwitchoverPrimary--` condition, if it has one.
fn switchover_status(request: &DynamicObject) -> Option<String> {
    request
        .data
        .get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("SwitchoverPrimary--"))
        })?
        .get("status")?
        .as_str()
        .map(str::to_owned)
}

/// Polls the request until its `SwitchoverPrimary--` condition has been seen Unknown and then
/// True; the time between.
async fn switchover_time(api: Api<DynamicObject>, name: String) -> Option<Duration> {
    let mut unknown_at: Option<Instant> = None;
    loop {
        if let Ok(r) = api.get(&name).await {
            match switchover_status(&r).as_deref() {
                Some("Unknown") => {
                    unknown_at.get_or_insert_with(Instant::now);
                }
                Some("True") => return unknown_at.map(|t| t.elapsed()),
                Some(_) => return None,
                None => {}
            }
        }
        tokio::time::sleep(ROLE_POLL).await;
    }
}

impl UpdateRun {
    /// (duration − floor) / pods, in seconds.
    pub fn overhead_per_pod(&self) -> Option<f64> {
        self.duration
            .map(|d| (d.as_secs_f64() - self.floor.as_secs_f64()) / f64::from(self.pods))
    }
}

/// UpdateVersion of `case` with pod start delay `delay`, then its agents' failovers.
pub async fn update(label: &str, case: UpdateCase, delay: Duration) -> anyhow::Result<UpdateRun> {
    let flags = SimFlags {
        pod_start_delay: delay,
    };
    let (mut stack, _) = Stack::start(label, flags, false, async |_| Ok(())).await?;
    let client = stack.sim.client.clone();
    let mut dbs = PhaseWatch::start(&client, workload::NAMESPACE, &resources());
    let name = workload::db_name(0);
    let t0 = Instant::now();
    case.create(&client, &name).await?;
    let key = format!("{}/{name}", case.resource());
    let db_is_ready = |p: &crate::watch::Phases| p.get(&key) == Some("Ready");
    let ready = dbs
        .wait(
            t0,
            Duration::from_secs(60),
            Duration::from_secs(180),
            |p| usize::from(db_is_ready(p)),
            db_is_ready,
        )
        .await;
    let pods = case.pods();
    let mut run = UpdateRun {
        pods,
        floor: delay * pods as u32,
        ready_time: ready.elapsed,
        ..UpdateRun::default()
    };
    if ready.elapsed.is_none() {
        run.phase = format!("database not Ready ({})", ready.phases.describe());
        stack.stop().await?;
        return Ok(run);
    }
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), workload::NAMESPACE);
    if case.is_singlestore()
        && !all_labelled(
            &pod_api,
            case.leader_role(),
            pods as usize,
            Duration::from_secs(30),
        )
        .await
    {
        run.phase = "pods not all Ready and labelled by their agents".to_owned();
        stack.stop().await?;
        return Ok(run);
    }
    // The agents at rest: what they write and read in a window.
    let leases: Api<Lease> = Api::namespaced(client.clone(), workload::NAMESPACE);
    let lease = case.lease(&name);
    run.agents.lease_duration = leases
        .get(&lease)
        .await
        .ok()
        .and_then(|l| l.spec?.lease_duration_seconds)
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let at_rest = stack.sim.requests().await?;
    tokio::time::sleep(AGENT_WINDOW).await;
    run.agents.steady = Some(stack.sim.requests().await?.since(&at_rest).tally(DB_AGENT));
    run.agents.window = AGENT_WINDOW;

    let ops_resource = case.ops_resource();
    let mut requests = PhaseWatch::start(
        &client,
        workload::NAMESPACE,
        std::slice::from_ref(&ops_resource),
    );
    let before = stack.sim.requests().await?;
    let request = "bench-update";
    let switchover = tokio::spawn(switchover_time(
        Api::namespaced_with(client.clone(), workload::NAMESPACE, &ops_resource),
        request.to_owned(),
    ));
    let t1 = Instant::now();
    case.request_update(&client, request, &name)
        .await
        .context("creating the UpdateVersion request")?;
    let key = format!("{}/{request}", ops_resource.plural);
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
        let db_key = format!("{}/{name}", case.resource());
        let db_ready = |p: &crate::watch::Phases| p.get(&db_key) == Some("Ready");
        if !case.is_singlestore() {
            // A SingleStore agent has no stop round (a master that restarts keeps its role),
            // so only an AG fails over when its primary pod is deleted.
            run.agents.failover_graceful = time_failover(
                &pod_api,
                &lease,
                &stack.sim.kubeconfig,
                case,
                Loss::Delete,
                limit,
            )
            .await
            .ready;
        }
        // Back to one Ready leader and every pod Ready before the node loss.
        dbs.wait(
            Instant::now(),
            limit,
            limit,
            |p| usize::from(db_ready(p)),
            db_ready,
        )
        .await;
        if case.is_singlestore() {
            all_labelled(&pod_api, case.leader_role(), pods as usize, limit).await;
        }
        let crash = time_failover(
            &pod_api,
            &lease,
            &stack.sim.kubeconfig,
            case,
            Loss::Crash,
            limit,
        )
        .await;
        run.agents.failover_crash = crash.ready;
        run.agents.failover_crash_lease = crash.lease_taken;
    } else {
        switchover.abort();
    }
    keep_agent_logs(&pod_api, &stack.sim.dir).await;
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
            ..UpdateRun::default()
        };
        assert_eq!(run.overhead_per_pod(), Some(1.0));
        assert_eq!(UpdateRun::default().overhead_per_pod(), None);
    }

    #[test]
    fn update_cases_name_their_database_side() {
        let ag = UpdateCase::Ag(3);
        let sdb = UpdateCase::Singlestore(2, 2);
        assert_eq!((ag.pods(), sdb.pods()), (3, 4));
        assert_eq!(ag.label(), "MSSQL AG of 3");
        assert_eq!(sdb.label(), "SingleStore 2 agg + 2 leaf");
        assert_eq!(ag.lease("db"), "db-primary");
        assert_eq!(sdb.lease("db"), "db-master");
        assert_eq!((ag.leader_role(), sdb.leader_role()), ("primary", "Master"));
        assert_eq!(sdb.down_annotation(), "kube-sim.io/singlestore-down");
        assert_eq!(sdb.ops_resource().plural, "singlestoreopsrequests");
        assert!(sdb.is_singlestore() && !ag.is_singlestore());
    }

    #[test]
    fn switchover_status_reads_the_condition() {
        let request: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ops.kubedb.com/v1alpha1",
            "kind": "SinglestoreOpsRequest",
            "metadata": { "name": "r" },
            "status": { "conditions": [
                { "type": "UpdateVersion", "status": "True" },
                { "type": "SwitchoverPrimary--db-aggregator-0", "status": "Unknown" }
            ] }
        }))
        .unwrap();
        assert_eq!(switchover_status(&request).as_deref(), Some("Unknown"));
        let none: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "X", "metadata": { "name": "r" }
        }))
        .unwrap();
        assert_eq!(switchover_status(&none), None);
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
