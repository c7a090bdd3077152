//! The agent loop: observe the local SQL Server, the Lease, the own label and the peers; call
//! [`decide`]; carry out the one action; publish readiness and metrics. All judgement is in
//! `decide`; this module only moves data between it and the two sides ([`Backend`] for SQL
//! Server, [`Cluster`] for Kubernetes).

use std::future::Future;
use std::time::Duration;

use thiserror::Error;

use crate::config::Timing;
use crate::http::{Report, Status};
use crate::metrics::Metrics;
use crate::mssql::backend::{Backend, BackendError};
use crate::mssql::decide::{
    self, Action, LeaseState, LeaseView, Local, Memory, Mono, PeerView, RoleLabel, Snapshot,
};
use crate::mssql::tsql::ReplicaSpec;

/// How long the stop round may take: well inside Kubernetes' default 30 s grace period.
pub const STOP_BOUND: Duration = Duration::from_secs(5);
/// Rounds run back to back within one tick while each carries out an action successfully: a
/// step of a multi-step change (step down, acquire, promote, label) does not wait a tick for
/// the next one. Bounded, so that a decision that flips never spins.
pub const ROUNDS_PER_TICK: usize = 4;
/// How often the agent re-reads its own pod's role label. It is the label's only writer and
/// remembers what it wrote, so a read every round would only catch someone else's edit, which
/// is corrected this much later at the latest.
pub const LABEL_REFRESH: Duration = Duration::from_secs(10);

/// The `<db>-primary` Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `metadata.resourceVersion`: changes with every write, so it tells this agent when the
    /// holder renewed, and guards writes (optimistic concurrency).
    pub version: String,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// The AG-created marker annotation is present.
    pub ag_created: bool,
    /// A requested handover: the replica to hand the primary role away from, and until when.
    pub handover: Option<(String, k8s_openapi::jiff::Timestamp)>,
}

/// A write to the Lease. Every write names the version it was decided on and fails with
/// [`ClusterError::Conflict`] when the Lease changed meanwhile (`None`: create it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseWrite {
    /// Become the holder (new `acquireTime`, one more transition).
    Acquire,
    /// Stay the holder (new `renewTime`).
    Renew,
    /// Stop being the holder (holder cleared, duration kept).
    Release,
    /// Stop being the holder and ask the others not to elect this replica for one Lease
    /// duration (the handover annotations): a stopping primary's last write.
    HandOver,
    /// Add the AG-created marker.
    MarkAgCreated,
}

/// Why a Kubernetes call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// The object changed since it was read (HTTP 409, or 404 on an update).
    #[error("the Lease changed since it was read")]
    Conflict,
    /// The agent's ServiceAccount may not do this (HTTP 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Anything else: no answer, a server error.
    #[error("Kubernetes API: {0}")]
    Unavailable(String),
}

/// The Kubernetes side: the Lease, this pod's label, the peers, Events.
pub trait Cluster: Send {
    /// Reads the Lease (`None`: it does not exist).
    fn read_lease(
        &mut self,
    ) -> impl Future<Output = Result<Option<LeaseRecord>, ClusterError>> + Send;
    /// Writes the Lease as `write` says, if it is still at `expected` (`None`: absent).
    fn write_lease(
        &mut self,
        write: LeaseWrite,
        expected: Option<&LeaseRecord>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// This pod's `kubedb.com/role` label.
    fn own_label(&mut self)
    -> impl Future<Output = Result<Option<RoleLabel>, ClusterError>> + Send;
    /// Sets or removes this pod's role label.
    fn set_label(
        &mut self,
        label: Option<RoleLabel>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// The other pods of the database and their last reports, aged relative to `now`.
    fn peers(&mut self, now: Mono) -> impl Future<Output = Vec<PeerView>> + Send;
    /// Makes this agent's report available to its peers (a no-op where `/state` serves it).
    fn publish(&mut self, report: &Report, now: Mono) -> impl Future<Output = ()> + Send;
    /// Records a failover on the database (an Event), best effort.
    fn failover_event(
        &mut self,
        previous: Option<&str>,
        message: &str,
    ) -> impl Future<Output = ()> + Send;
    /// Reports a problem the user must fix on the database (a Warning Event), best effort.
    fn warning_event(&mut self, problem: &Problem) -> impl Future<Output = ()> + Send;
}

/// Something the user must fix, reported as a Warning Event on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The Event's reason.
    pub reason: &'static str,
    /// The Event's action.
    pub action: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// A problem that persists is reported again after this long: Events expire, and a user who
/// looks later still finds it.
pub const REPORT_AGAIN_AFTER: Duration = Duration::from_secs(600);

/// Which problem was reported last, and when (pure): each distinct problem is reported once,
/// and again every [`REPORT_AGAIN_AFTER`] while it persists.
#[derive(Debug, Default)]
pub struct Reported {
    last: Option<(Problem, Mono)>,
}

impl Reported {
    /// Whether `problem`, seen at `now`, is to be reported (and remembers it if so).
    pub fn due(&mut self, problem: &Problem, now: Mono) -> bool {
        let due = match &self.last {
            Some((last, at)) => last != problem || now.saturating_sub(*at) >= REPORT_AGAIN_AFTER,
            None => true,
        };
        if due {
            self.last = Some((problem.clone(), now));
        }
        due
    }
}

/// Takes a read of the Lease into `lease`, moving `observed_at` to `now` when its holder or
/// version changed (expiry is judged from there, on this agent's clock). A failed read keeps
/// the last view: a holder that cannot read cannot renew either, and its renew deadline runs
/// out on this stale view.
pub fn take_lease_read(
    lease: &mut Option<LeaseRecord>,
    observed_at: &mut Mono,
    read: Result<Option<LeaseRecord>, ClusterError>,
    now: Mono,
) {
    match read {
        Ok(new) => {
            let key =
                |l: &Option<LeaseRecord>| l.as_ref().map(|l| (l.holder.clone(), l.version.clone()));
            if key(&new) != key(lease) {
                *observed_at = now;
            }
            *lease = new;
        }
        Err(err) => tracing::warn!(error = %err, "cannot read the Lease"),
    }
}

/// Whether this pod's own label is due to be read again ([`LABEL_REFRESH`]; at once when it
/// was never read or a label write failed).
pub fn label_due(read_at: Option<Mono>, now: Mono) -> bool {
    read_at.is_none_or(|at| now.saturating_sub(at) >= LABEL_REFRESH)
}

/// The problem behind a failed observation, if the user can fix it: a refused login (pure).
pub fn observe_problem(me: &str, err: &BackendError) -> Option<Problem> {
    match err {
        BackendError::LoginRefused { code, message } => Some(Problem {
            reason: "LoginFailed",
            action: "Observe",
            message: format!(
                "the db-agent of pod {me} cannot log in to its SQL Server: {} (error {code}). The password in the database's auth secret must be the one SQL Server was set up with: put it back, then delete the pod so that its containers read it again",
                message.trim_end()
            ),
        }),
        _ => None,
    }
}

/// The problem behind a failed action, if it is not transient (pure): SQL Server refused a
/// statement, or the agent's ServiceAccount lacks a permission. Unreachable servers and write
/// conflicts are part of normal operation and retried quietly.
fn action_problem(me: &str, action: &Action, err: &StepError) -> Option<Problem> {
    let message = match err {
        StepError::Sql(BackendError::Refused { .. } | BackendError::Protocol(_)) => {
            format!("pod {me}: {action:?} failed: {err}; the agent retries every round")
        }
        StepError::Kube(ClusterError::Forbidden(_)) => format!(
            "pod {me}: {action:?} failed: {err}; the agent's Role (managed by the provisioner) lacks this permission"
        ),
        StepError::Sql(BackendError::Unreachable(_) | BackendError::LoginRefused { .. })
        | StepError::Kube(ClusterError::Conflict | ClusterError::Unavailable(_)) => return None,
    };
    Some(Problem {
        reason: "AgentActionFailed",
        action: action.kind(),
        message,
    })
}

/// One agent: its two sides and what it remembers between rounds.
pub struct Agent<B, C> {
    me: String,
    timing: Timing,
    backend: B,
    cluster: C,
    metrics: Metrics,
    status: Status,
    replica: Box<dyn Fn(&str) -> ReplicaSpec + Send>,
    wanted_databases: Vec<String>,
    memory: Memory,
    lease: Option<LeaseRecord>,
    lease_observed_at: Mono,
    label: Option<RoleLabel>,
    reported: Reported,
    last_failed: bool,
    label_read_at: Option<Mono>,
}

impl<B: Backend, C: Cluster> Agent<B, C> {
    /// An agent for pod `me`. `replica` builds the AG clause of any pod by name.
    pub fn new(
        me: String,
        timing: Timing,
        backend: B,
        cluster: C,
        metrics: Metrics,
        status: Status,
        replica: Box<dyn Fn(&str) -> ReplicaSpec + Send>,
    ) -> Self {
        Self {
            me,
            timing,
            backend,
            cluster,
            metrics,
            status,
            replica,
            wanted_databases: Vec::new(),
            memory: Memory::default(),
            lease: None,
            lease_observed_at: Duration::ZERO,
            label: None,
            reported: Reported::default(),
            last_failed: false,
            label_read_at: None,
        }
    }

    /// The databases to create and add to the AG.
    pub fn with_databases(mut self, databases: Vec<String>) -> Self {
        self.wanted_databases = databases;
        self
    }

    /// One round at time `now`: observe, decide, act. Returns the action taken.
    pub async fn step(&mut self, now: Mono) -> Action {
        let snapshot = self.observe(now).await;
        let action = decide::decide(&snapshot);
        self.metrics.decided(&action);
        match &action {
            Action::Wait(reason) => tracing::debug!(%reason, "waiting"),
            Action::RenewLease => tracing::debug!("renewing the Lease"),
            other => tracing::info!(action = ?other, "decided"),
        }
        self.act_logged(&action, &snapshot, now).await;
        action
    }

    async fn act_logged(&mut self, action: &Action, snapshot: &Snapshot, now: Mono) {
        let result = self.act(action, snapshot, now).await;
        self.last_failed = result.is_err();
        if let Err(err) = result {
            self.metrics
                .action_failures
                .with_label_values(&[action.kind()])
                .inc();
            tracing::warn!(action = action.kind(), error = %err, "action failed");
            if let Some(problem) = action_problem(&self.me, action, &err) {
                self.report(&problem, now).await;
            }
        }
    }

    /// Publishes `problem` as a Warning Event on the database, unless it was just reported.
    async fn report(&mut self, problem: &Problem, now: Mono) {
        if self.reported.due(problem, now) {
            tracing::warn!(reason = problem.reason, message = %problem.message, "reporting a problem");
            self.cluster.warning_event(problem).await;
        }
    }

    /// Reads both sides and publishes readiness and metrics.
    async fn observe(&mut self, now: Mono) -> Snapshot {
        let local = match self.backend.observe().await {
            Ok(state) => Local::Up(state),
            Err(err) => {
                tracing::debug!(error = %err, "SQL Server not observed");
                if let Some(problem) = observe_problem(&self.me, &err) {
                    self.report(&problem, now).await;
                }
                Local::Unreachable
            }
        };
        let read = self.cluster.read_lease().await;
        take_lease_read(&mut self.lease, &mut self.lease_observed_at, read, now);
        if label_due(self.label_read_at, now) {
            match self.cluster.own_label().await {
                Ok(label) => {
                    self.label = label;
                    self.label_read_at = Some(now);
                }
                Err(err) => tracing::warn!(error = %err, "cannot read this pod's label"),
            }
        }
        let report = Report {
            name: self.me.clone(),
            local: local.clone(),
        };
        self.cluster.publish(&report, now).await;
        let peers = self.cluster.peers(now).await;

        let snapshot = Snapshot {
            me: self.me.clone(),
            now,
            timing: self.timing.decide(),
            local,
            lease: self.lease.as_ref().map(|l| LeaseView {
                holder: l.holder.clone(),
                observed_at: self.lease_observed_at,
                duration: l.duration,
                ag_created: l.ag_created,
                handover: l.handover.as_ref().and_then(|(from, until)| {
                    decide::handover_view(from, *until, now, k8s_openapi::jiff::Timestamp::now())
                }),
            }),
            peers,
            label: self.label,
            memory: self.memory,
            wanted_databases: self.wanted_databases.clone(),
        };
        let lease_state = decide::lease_state(&snapshot);
        let ready = decide::readiness(&snapshot.local, &lease_state);
        self.metrics.ready.set(i64::from(ready.is_ok()));
        self.metrics
            .lease_held
            .set(i64::from(lease_state == LeaseState::MineValid));
        self.metrics.set_role(&snapshot.local);
        self.status.set(ready.map(RoleLabel::as_str), report);
        snapshot
    }

    /// The last round before exiting ([`decide::shutdown`]): a primary fences its SQL Server and
    /// frees the Lease, and the role label goes, within `bound`.
    pub async fn stop(&mut self, now: Mono, bound: Duration) {
        let work = async {
            let snapshot = self.observe(now).await;
            for action in decide::shutdown(&snapshot) {
                tracing::info!(action = ?action, "stopping");
                self.act_logged(&action, &snapshot, now).await;
            }
        };
        if tokio::time::timeout(bound, work).await.is_err() {
            tracing::warn!(
                ?bound,
                "the stop round did not finish in time; the Lease expires on its own"
            );
        }
    }

    async fn act(&mut self, action: &Action, s: &Snapshot, now: Mono) -> Result<(), StepError> {
        let databases = |suspended_only: bool| -> Vec<String> {
            match &s.local {
                Local::Up(state) => state
                    .ag
                    .iter()
                    .flat_map(|ag| &ag.databases)
                    .filter(|d| !suspended_only || d.suspended)
                    .map(|d| d.name.clone())
                    .collect(),
                Local::Unreachable => Vec::new(),
            }
        };
        match action {
            Action::SetupInstance => {
                if let Local::Up(state) = &s.local {
                    self.backend.setup_instance(state.setup).await?;
                }
            }
            Action::CreateAg => self.backend.create_ag().await?,
            Action::MarkAgCreated => {
                self.cluster
                    .write_lease(LeaseWrite::MarkAgCreated, self.lease.as_ref())
                    .await?;
            }
            Action::AddReplica(name) => {
                let spec = (self.replica)(name);
                self.backend.add_replica(&spec).await?;
            }
            Action::JoinAg => self.backend.join_ag().await?,
            Action::GrantCreateDatabase => {
                self.backend.grant_create_any_database().await?;
                self.memory.create_db_granted = true;
            }
            Action::AcquireLease | Action::RenewLease => {
                let write = if matches!(action, Action::AcquireLease) {
                    LeaseWrite::Acquire
                } else {
                    LeaseWrite::Renew
                };
                // The deadline counts from when the write was sent, not when it returned.
                let sent = now;
                self.cluster.write_lease(write, self.lease.as_ref()).await?;
                self.memory.last_renew = Some(sent);
            }
            Action::StepDown(reason) => {
                self.memory.last_renew = None;
                let write = if *reason == decide::Reason::ShuttingDown {
                    LeaseWrite::HandOver
                } else {
                    LeaseWrite::Release
                };
                self.cluster.write_lease(write, self.lease.as_ref()).await?;
            }
            Action::Promote => {
                let previous = self
                    .lease
                    .as_ref()
                    .and_then(|l| l.holder.clone())
                    .filter(|h| h != &self.me);
                self.backend.promote(&databases(false)).await?;
                self.metrics.failovers.inc();
                let message = format!("{} promoted to primary", self.me);
                self.cluster
                    .failover_event(previous.as_deref(), &message)
                    .await;
            }
            Action::Demote(_) => self.backend.demote().await?,
            Action::FollowNewPrimary => {
                self.backend.follow_new_primary(&databases(true)).await?;
            }
            Action::ResumeDatabases => self.backend.resume_databases(&databases(true)).await?,
            Action::SetRequiredSynchronizedSecondaries(n) => {
                self.backend
                    .set_required_synchronized_secondaries(*n)
                    .await?;
            }
            Action::AddDatabase(db) => self.backend.add_database(db).await?,
            Action::Label(label) => {
                if let Err(err) = self.cluster.set_label(*label).await {
                    // Unsure what the pod carries now: read it again next round.
                    self.label_read_at = None;
                    return Err(err.into());
                }
                self.label = *label;
            }
            Action::Wait(_) => {}
        }
        Ok(())
    }

    /// Runs rounds every tick until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let tick = self.timing.tick;
        let elapsed = run_rounds(&mut self, tick, shutdown).await;
        self.stop(elapsed, STOP_BOUND).await;
    }
}

impl<B: Backend, C: Cluster> Rounds for Agent<B, C> {
    async fn round(&mut self, now: Mono) -> bool {
        let action = self.step(now).await;
        !matches!(action, Action::Wait(_)) && !self.last_failed
    }
}

/// One agent's observe → decide → act round (either backend).
pub trait Rounds {
    /// Runs one round at `now`; whether it carried out an action successfully.
    fn round(&mut self, now: Mono) -> impl Future<Output = bool>;
}

/// Runs `agent`'s rounds every `tick` until `shutdown` resolves, back to back within a tick
/// while they carry out actions (at most [`ROUNDS_PER_TICK`]); returns the time elapsed.
pub async fn run_rounds<A: Rounds>(
    agent: &mut A,
    tick: Duration,
    shutdown: impl Future<Output = ()>,
) -> Mono {
    let start = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {
                for _ in 0..ROUNDS_PER_TICK {
                    if !agent.round(start.elapsed()).await {
                        break;
                    }
                }
            }
        }
    }
    start.elapsed()
}

/// An action that failed on either side.
#[derive(Debug, Error)]
enum StepError {
    #[error(transparent)]
    Sql(#[from] BackendError),
    #[error(transparent)]
    Kube(#[from] ClusterError),
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod problem_tests {
    use super::*;

    fn login_refused() -> BackendError {
        BackendError::LoginRefused {
            code: 18456,
            message: "Login failed for user 'sa'.\n".into(),
        }
    }

    #[test]
    fn only_problems_a_user_can_fix_are_reported() {
        let p = observe_problem("ag-1", &login_refused()).unwrap();
        assert_eq!(p.reason, "LoginFailed");
        assert!(
            p.message.starts_with(
                "the db-agent of pod ag-1 cannot log in to its SQL Server: Login failed for user 'sa'. (error 18456)"
            ),
            "{}",
            p.message
        );
        assert_eq!(
            observe_problem("ag-1", &BackendError::Unreachable("refused".into())),
            None
        );
        let add = Action::AddDatabase("sales".into());
        let refused = StepError::Sql(BackendError::Refused {
            code: 1801,
            message: "Database 'sales' already exists.".into(),
        });
        let p = action_problem("ag-0", &add, &refused).unwrap();
        assert_eq!((p.reason, p.action), ("AgentActionFailed", "add_database"));
        assert!(
            p.message
                .contains("AddDatabase(\"sales\") failed: SQL Server error 1801"),
            "{}",
            p.message
        );
        let forbidden = StepError::Kube(ClusterError::Forbidden("pods is forbidden".into()));
        let p = action_problem("ag-0", &Action::Label(None), &forbidden).unwrap();
        assert!(p.message.contains("lacks this permission"), "{}", p.message);
        for quiet in [
            StepError::Kube(ClusterError::Conflict),
            StepError::Kube(ClusterError::Unavailable("timeout".into())),
            StepError::Sql(BackendError::Unreachable("reset".into())),
            StepError::Sql(login_refused()),
        ] {
            assert_eq!(action_problem("ag-0", &add, &quiet), None, "{quiet:?}");
        }
    }

    #[test]
    fn a_persisting_problem_is_reported_once_then_again_after_a_while() {
        let mut reported = Reported::default();
        let p = observe_problem("ag-1", &login_refused()).unwrap();
        let other = Problem {
            reason: "AgentActionFailed",
            action: "create_ag",
            message: "x".into(),
        };
        let s = Duration::from_secs;
        assert!(reported.due(&p, s(0)));
        assert!(!reported.due(&p, s(1)));
        assert!(!reported.due(&p, s(599)));
        assert!(reported.due(&other, s(600)), "a different problem at once");
        assert!(reported.due(&p, s(601)), "and back");
        assert!(!reported.due(&p, s(1200)));
        assert!(reported.due(&p, s(1201)), "again after REPORT_AGAIN_AFTER");
    }
}
