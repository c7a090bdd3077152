//! The SingleStore agent loop: observe the node, the Lease, the own label and the peers; call
//! [`decide`]; carry out the one action; publish readiness and metrics.

use std::future::Future;
use std::time::Duration;

use super::backend::{SdbBackend, SdbError};
use super::decide::{self, Action, LeaseView, Local, Memory, NodeKind, Peer, RoleLabel, Snapshot};
use super::sql;
use crate::agent::{
    ClusterError, LeaseRecord, LeaseWrite, Problem, Reported, Rounds, label_due, run_rounds,
    take_lease_read,
};
use crate::http::{Report, Status};
use crate::kube::KubeCluster;
use crate::metrics::Metrics;
use crate::mssql::decide::{LeaseState, Mono};

/// The Kubernetes side the SingleStore agent needs.
pub trait SdbCluster: Send {
    /// Reads the `<db>-master` Lease.
    fn read_lease(
        &mut self,
    ) -> impl Future<Output = Result<Option<LeaseRecord>, ClusterError>> + Send;
    /// Writes it if still at `expected`.
    fn write_lease(
        &mut self,
        write: LeaseWrite,
        expected: Option<&LeaseRecord>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// This pod's role label value.
    fn own_label(&mut self) -> impl Future<Output = Result<Option<String>, ClusterError>> + Send;
    /// Sets or removes it.
    fn set_label(
        &mut self,
        label: Option<&'static str>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// The other pods with their agents' reports and their age.
    fn members(
        &mut self,
        now: Mono,
    ) -> impl Future<Output = Vec<(String, Option<(Local, Duration)>)>> + Send;
    /// A Normal `Failover` Event on the database.
    fn failover_event(
        &mut self,
        previous: Option<&str>,
        message: &str,
    ) -> impl Future<Output = ()> + Send;
    /// A Warning Event on the database.
    fn warning_event(&mut self, problem: &Problem) -> impl Future<Output = ()> + Send;
}

impl SdbCluster for KubeCluster<Local> {
    async fn read_lease(&mut self) -> Result<Option<LeaseRecord>, ClusterError> {
        self.get_lease().await
    }
    async fn write_lease(
        &mut self,
        write: LeaseWrite,
        expected: Option<&LeaseRecord>,
    ) -> Result<(), ClusterError> {
        self.put_lease(write, expected).await
    }
    async fn own_label(&mut self) -> Result<Option<String>, ClusterError> {
        self.get_label().await
    }
    async fn set_label(&mut self, label: Option<&'static str>) -> Result<(), ClusterError> {
        self.put_label(label).await
    }
    async fn members(&mut self, now: Mono) -> Vec<(String, Option<(Local, Duration)>)> {
        self.member_reports(now).await
    }
    async fn failover_event(&mut self, previous: Option<&str>, message: &str) {
        self.publish_failover(previous, message).await;
    }
    async fn warning_event(&mut self, problem: &Problem) {
        self.publish_warning(problem).await;
    }
}

/// Who this agent is and how it addresses the others.
pub struct Identity {
    /// Pod name.
    pub me: String,
    /// Its node kind.
    pub kind: NodeKind,
    /// The address of any pod in cluster statements.
    pub host: Box<dyn Fn(&str) -> String + Send>,
    /// The node kind of any pod.
    pub kind_of: Box<dyn Fn(&str) -> NodeKind + Send>,
    /// `ROOT_USERNAME` and `ROOT_PASSWORD`, for `ADD LEAF` and `ADD AGGREGATOR`.
    pub root: (String, String),
    /// The license to set before bootstrapping.
    pub license: Option<String>,
}

/// One SingleStore agent.
pub struct SdbAgent<B, C> {
    id: Identity,
    timing: decide::Timing,
    backend: B,
    cluster: C,
    metrics: Metrics,
    status: Status<Local>,
    memory: Memory,
    lease: Option<LeaseRecord>,
    lease_observed_at: Mono,
    label: Option<RoleLabel>,
    label_read_at: Option<Mono>,
    reported: Reported,
    last_failed: bool,
}

/// The problem behind a failed observation or action, if the user can fix it.
fn problem(me: &str, action: &str, err: &StepError) -> Option<Problem> {
    match err {
        StepError::Sql(SdbError::LoginRefused { code, message }) => Some(Problem {
            reason: "LoginFailed",
            action: "Observe",
            message: format!(
                "the db-agent of pod {me} cannot log in to its SingleStore node: {} (error {code}). The password in the database's auth secret must be the one the node was set up with: put it back, then delete the pod so that its containers read it again",
                message.trim_end()
            ),
        }),
        StepError::Sql(SdbError::Refused { .. } | SdbError::Protocol(_)) => Some(Problem {
            reason: "AgentActionFailed",
            action: "Act",
            message: format!("pod {me}: {action} failed: {err}; the agent retries every round"),
        }),
        StepError::Kube(ClusterError::Forbidden(_)) => Some(Problem {
            reason: "AgentActionFailed",
            action: "Act",
            message: format!(
                "pod {me}: {action} failed: {err}; the agent's Role (managed by the provisioner) lacks this permission"
            ),
        }),
        StepError::Sql(SdbError::Unreachable(_))
        | StepError::Kube(ClusterError::Conflict | ClusterError::Unavailable(_)) => None,
    }
}

/// An action that failed on either side.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Sql(#[from] SdbError),
    #[error(transparent)]
    Kube(#[from] ClusterError),
}

impl<B: SdbBackend, C: SdbCluster> SdbAgent<B, C> {
    /// An agent with its two sides.
    pub fn new(
        id: Identity,
        timing: decide::Timing,
        backend: B,
        cluster: C,
        metrics: Metrics,
        status: Status<Local>,
    ) -> Self {
        Self {
            id,
            timing,
            backend,
            cluster,
            metrics,
            status,
            memory: Memory::default(),
            lease: None,
            lease_observed_at: Duration::ZERO,
            label: None,
            label_read_at: None,
            reported: Reported::default(),
            last_failed: false,
        }
    }

    async fn report(&mut self, problem: &Problem, now: Mono) {
        if self.reported.due(problem, now) {
            tracing::warn!(reason = problem.reason, message = %problem.message, "reporting a problem");
            self.cluster.warning_event(problem).await;
        }
    }

    /// One round at `now`.
    pub async fn step(&mut self, now: Mono) -> Action {
        let snapshot = self.observe(now).await;
        let action = decide::decide(&snapshot);
        self.metrics.decided_kind(action.kind());
        match &action {
            Action::Wait(reason) => tracing::debug!(%reason, "waiting"),
            Action::RenewLease => tracing::debug!("renewing the Lease"),
            other => tracing::info!(action = ?other, "decided"),
        }
        if let Action::Wait(reason @ decide::Reason::ReplacedMaster(_)) = &action {
            let problem = Problem {
                reason: "ReplacedMaster",
                action: "Observe",
                message: format!(
                    "pod {}: {reason}. SingleStore cannot take it back as a child as it is: empty its data volume (delete the pod's PVC, then the pod) so that the master adds it again as a new aggregator",
                    self.id.me
                ),
            };
            self.report(&problem, now).await;
        }
        let result = self.act(&action, now).await;
        self.last_failed = result.is_err();
        if let Err(err) = result {
            self.metrics
                .action_failures
                .with_label_values(&[action.kind()])
                .inc();
            tracing::warn!(action = action.kind(), error = %err, "action failed");
            let what = format!("{action:?}");
            if let Some(problem) = problem(&self.id.me, &what, &err) {
                self.report(&problem, now).await;
            }
        }
        action
    }

    async fn observe(&mut self, now: Mono) -> Snapshot {
        let local = match self.backend.observe(self.id.kind).await {
            Ok(state) => Local::Up(state),
            Err(err) => {
                tracing::debug!(error = %err, "SingleStore not observed");
                let err = StepError::Sql(err);
                if matches!(err, StepError::Sql(SdbError::LoginRefused { .. }))
                    && let Some(problem) = problem(&self.id.me, "observe", &err)
                {
                    self.report(&problem, now).await;
                }
                Local::Unreachable
            }
        };
        if self.id.kind == NodeKind::Aggregator {
            let read = self.cluster.read_lease().await;
            take_lease_read(&mut self.lease, &mut self.lease_observed_at, read, now);
        }
        if label_due(self.label_read_at, now) {
            match self.cluster.own_label().await {
                Ok(label) => {
                    self.label = label.and_then(|l| RoleLabel::parse(&l));
                    self.label_read_at = Some(now);
                }
                Err(err) => tracing::warn!(error = %err, "cannot read this pod's label"),
            }
        }
        let peers = self
            .cluster
            .members(now)
            .await
            .into_iter()
            .map(|(name, report)| Peer {
                host: (self.id.host)(&name),
                kind: (self.id.kind_of)(&name),
                name,
                report,
            })
            .collect();
        let snapshot = Snapshot {
            me: self.id.me.clone(),
            host: (self.id.host)(&self.id.me),
            kind: self.id.kind,
            now,
            timing: self.timing,
            local: local.clone(),
            lease: self.lease.as_ref().map(|l| LeaseView {
                holder: l.holder.clone(),
                observed_at: self.lease_observed_at,
                duration: l.duration,
                bootstrapped: l.ag_created,
                handover: l.handover.as_ref().and_then(|(from, until)| {
                    crate::mssql::decide::handover_view(
                        from,
                        *until,
                        now,
                        k8s_openapi::jiff::Timestamp::now(),
                    )
                }),
            }),
            peers,
            label: self.label,
            memory: self.memory,
        };
        let lease = decide::lease_state(&snapshot);
        let ready = decide::readiness(&snapshot, &lease);
        self.metrics.ready.set(i64::from(ready.is_ok()));
        self.metrics
            .lease_held
            .set(i64::from(lease == LeaseState::MineValid));
        self.status.set(
            ready,
            Report {
                name: self.id.me.clone(),
                local,
            },
        );
        snapshot
    }

    async fn act(&mut self, action: &Action, now: Mono) -> Result<(), StepError> {
        let (user, password) = self.id.root.clone();
        match action {
            Action::AcquireLease | Action::RenewLease => {
                let write = if matches!(action, Action::AcquireLease) {
                    LeaseWrite::Acquire
                } else {
                    LeaseWrite::Renew
                };
                self.cluster.write_lease(write, self.lease.as_ref()).await?;
                self.memory.last_renew = Some(now);
            }
            Action::ReleaseLease(_) => {
                self.memory.last_renew = None;
                self.cluster
                    .write_lease(LeaseWrite::Release, self.lease.as_ref())
                    .await?;
            }
            Action::MarkBootstrapped => {
                self.cluster
                    .write_lease(LeaseWrite::MarkAgCreated, self.lease.as_ref())
                    .await?;
            }
            Action::SetLicense => {
                if let Some(license) = self.id.license.clone() {
                    self.backend.execute(&sql::set_license(&license)).await?;
                }
                self.memory.license_set = true;
            }
            Action::Bootstrap => {
                let host = (self.id.host)(&self.id.me);
                self.backend.execute(&sql::bootstrap(&host)).await?;
            }
            Action::AddLeaf(host) => {
                self.backend
                    .execute(&sql::add_leaf(&user, &password, host))
                    .await?;
            }
            Action::AddAggregator(host) => {
                self.backend
                    .execute(&sql::add_aggregator(&user, &password, host))
                    .await?;
            }
            Action::Promote(host) => self.backend.execute(&sql::promote(host)).await?,
            Action::SetAsMaster => {
                let previous = self.lease.as_ref().and_then(|l| l.holder.clone());
                self.backend.execute(sql::SET_AS_MASTER).await?;
                self.metrics.failovers.inc();
                let message = format!(
                    "{} took over as master aggregator (AGGREGATOR SET AS MASTER): the master was offline for longer than its grace",
                    self.id.me
                );
                self.cluster
                    .failover_event(previous.filter(|p| p != &self.id.me).as_deref(), &message)
                    .await;
            }
            Action::Label(label) => {
                if let Err(err) = self.cluster.set_label(label.map(RoleLabel::as_str)).await {
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
    pub async fn run(mut self, tick: Duration, shutdown: impl Future<Output = ()>) {
        run_rounds(&mut self, tick, shutdown).await;
    }
}

impl<B: SdbBackend, C: SdbCluster> Rounds for SdbAgent<B, C> {
    async fn round(&mut self, now: Mono) -> bool {
        let action = self.step(now).await;
        !matches!(action, Action::Wait(_)) && !self.last_failed
    }
}
