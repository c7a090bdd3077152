//! The agent's decisions, as one pure function: a [`Snapshot`] of what the agent knows in, one
//! [`Action`] out. Nothing here talks to SQL Server or Kubernetes; the loop around it observes,
//! calls [`decide`], carries out the action, and observes again. One action per round keeps every
//! step idempotent: whatever a crash interrupts, the next round sees the world as it is and picks
//! up from there.
//!
//! The rules, in the order they are tried (first match wins; `docs/agent.md` has the reasoning):
//!
//! 1. **Fencing.** A replica that SQL Server reports as `PRIMARY` demotes itself when the Lease is
//!    held by someone else, when its own renewals stopped succeeding for the renew deadline
//!    (shorter than the Lease duration, so it steps down before anyone may take over), when a
//!    fresh peer reports a higher `sequence_number` (that peer was promoted after it), or when the
//!    Lease is free and it could not take it under rule 5.
//! 2. **Labels are corrected before anything else**: a `primary` label the Lease and SQL Server do
//!    not both support is removed (or turned into `secondary`) first.
//! 3. **SQL Server unreachable**: remove any label, release a Lease whose renew deadline passed,
//!    otherwise wait. Renewals stop, so a primary's Lease lapses.
//! 4. **Instance setup** (master key, login, certificate, mirroring endpoint) before any AG work.
//! 5. **Election.** Only the Lease holder may be primary. The Lease may be taken (or kept by a
//!    holder that is not yet primary) only by a replica that: has every database failover-ready
//!    (a primary is exempt); hears fresh answers from at least `replicas − required synchronized
//!    secondaries` members counting itself (Pacemaker's pre-promote rule); sees no fresh peer with
//!    a higher `sequence_number`, no peer that is primary, no peer with more hardened log on any
//!    database; and, between equals, has the lowest name (for the first moments after the Lease
//!    became free; then any of them may try, and the Lease's optimistic concurrency picks one).
//! 6. **Bootstrap.** Without a local AG: never create one when the Lease carries the AG-created
//!    marker or any peer reports an AG; create it only as the Lease holder after every known peer
//!    answered without an AG; otherwise join once the primary lists this replica.
//! 7. **Primary housekeeping**, one per round: renew when due, label, write the marker, grant,
//!    resume, add replicas of peers that are ready, set `REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT`
//!    to `replicas / 2`, add wanted databases.
//! 8. **Secondaries**: `SET (ROLE = SECONDARY)` from `RESOLVING` when another replica holds the
//!    Lease, label, grant, resume suspended databases once a primary exists, else wait.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Monotonic time since the agent started. Deadlines use it, never the wall clock.
pub type Mono = Duration;

/// Role of an availability replica, `sys.dm_hadr_availability_replica_states.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// 0: no role yet (e.g. after a restart, or while the AG has no primary).
    Resolving,
    /// 1.
    Primary,
    /// 2.
    Secondary,
}

impl Role {
    /// From the DMV's `role` code; `None` for a code Microsoft does not document.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Resolving),
            1 => Some(Self::Primary),
            2 => Some(Self::Secondary),
            _ => None,
        }
    }
}

/// `sys.dm_hadr_database_replica_states.synchronization_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncState {
    /// 0.
    NotSynchronizing,
    /// 1.
    Synchronizing,
    /// 2.
    Synchronized,
    /// 3: forcing a failover to this replica would leave the database unusable.
    Reverting,
    /// 4: likewise.
    Initializing,
}

impl SyncState {
    /// From the DMV's code; `None` for an undocumented one.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::NotSynchronizing),
            1 => Some(Self::Synchronizing),
            2 => Some(Self::Synchronized),
            3 => Some(Self::Reverting),
            4 => Some(Self::Initializing),
            _ => None,
        }
    }
}

/// One availability database on the local replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseState {
    /// Database name: the same on every replica, so peers compare by it.
    pub name: String,
    /// Data movement state.
    pub sync: SyncState,
    /// `is_failover_ready` from `sys.dm_hadr_database_replica_cluster_states`.
    pub failover_ready: bool,
    /// Data movement suspended (for example after a forced failover elsewhere).
    pub suspended: bool,
    /// `database_state` is ONLINE.
    pub online: bool,
    /// `last_hardened_lsn` (a log-block id, comparable within one database); `None` when NULL.
    /// Serialized as a decimal string: up to 25 digits do not fit JSON numbers, and serde cannot
    /// buffer a `u128` inside the internally tagged [`Local`] a peer parses.
    #[serde(with = "lsn_text")]
    pub hardened_lsn: Option<u128>,
}

/// `Option<u128>` as an optional decimal string.
mod lsn_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(lsn: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match lsn {
            Some(v) => s.serialize_some(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(D::Error::custom))
            .transpose()
    }
}

/// The availability group as the local instance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgState {
    /// Local replica role.
    pub role: Role,
    /// Local replica `operational_state` is ONLINE.
    pub online: bool,
    /// `sys.availability_groups.sequence_number`.
    pub sequence_number: i64,
    /// `sys.availability_groups.required_synchronized_secondaries_to_commit`.
    pub required_synchronized_secondaries: u32,
    /// `replica_server_name` of every replica in the local copy of the AG configuration.
    pub replicas: Vec<String>,
    /// Local availability databases.
    pub databases: Vec<DatabaseState>,
}

impl AgState {
    fn database(&self, name: &str) -> Option<&DatabaseState> {
        self.databases.iter().find(|d| d.name == name)
    }
}

/// Which parts of the per-instance set-up exist (see [`crate::mssql::tsql::setup_query`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstanceSetup {
    /// `SERVERPROPERTY('IsHadrEnabled')`: needs `MSSQL_ENABLE_HADR=1` and a restart, not T-SQL.
    pub hadr_enabled: bool,
    /// Database master key in `master`.
    pub master_key: bool,
    /// The endpoint login.
    pub login: bool,
    /// Its user in `master`.
    pub user: bool,
    /// The endpoint certificate.
    pub certificate: bool,
    /// The database-mirroring endpoint exists.
    pub endpoint: bool,
    /// ... and is started.
    pub endpoint_started: bool,
    /// The login may connect to it.
    pub connect_granted: bool,
}

impl InstanceSetup {
    /// Everything present: what a finished instance reports.
    pub const DONE: Self = Self {
        hadr_enabled: true,
        master_key: true,
        login: true,
        user: true,
        certificate: true,
        endpoint: true,
        endpoint_started: true,
        connect_granted: true,
    };

    /// Everything T-SQL can create exists.
    pub fn complete(&self) -> bool {
        self.master_key
            && self.login
            && self.user
            && self.certificate
            && self.endpoint
            && self.endpoint_started
            && self.connect_granted
    }

    /// Everything, HADR included.
    pub fn all(&self) -> bool {
        self.hadr_enabled && self.complete()
    }
}

/// The local SQL Server as last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Local {
    /// No answer over loopback.
    Unreachable,
    /// Answered.
    Up(LocalState),
}

/// What an answering instance reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
    /// Set-up progress.
    pub setup: InstanceSetup,
    /// The AG of our name, if this instance has it.
    pub ag: Option<AgState>,
}

/// Value of the `kubedb.com/role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleLabel {
    /// `primary`.
    Primary,
    /// `secondary`.
    Secondary,
}

impl RoleLabel {
    /// As written on the pod.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => api::names::ROLE_PRIMARY,
            Self::Secondary => api::names::ROLE_SECONDARY,
        }
    }

    /// From a label value; anything else is not ours.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            v if v == api::names::ROLE_PRIMARY => Some(Self::Primary),
            v if v == api::names::ROLE_SECONDARY => Some(Self::Secondary),
            _ => None,
        }
    }
}

/// The `<db>-primary` Lease as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity` (empty counts as none).
    pub holder: Option<String>,
    /// When this agent last saw the holder or renew time change: expiry is judged from here,
    /// never from the timestamps in the object (the holder's clock may differ from ours).
    pub observed_at: Mono,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// The AG-created marker annotation is present.
    pub ag_created: bool,
    /// A handover in force (the Lease's handover annotations, not yet expired).
    pub handover: Option<Handover>,
}

/// A requested handover of the primary role away from one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The replica the role leaves.
    pub from: String,
    /// When the request lapses, on this agent's monotonic clock.
    pub until: Mono,
}

/// The handover of annotations `from`/`until` (wall clock) as seen at `now` (monotonic) and
/// `wall` (the wall clock at the same moment); `None` once `until` has passed. Wall clocks of
/// the writer and of this agent are assumed to agree within seconds (NTP), which only shifts
/// when the request lapses.
pub fn handover_view(
    from: &str,
    until: k8s_openapi::jiff::Timestamp,
    now: Mono,
    wall: k8s_openapi::jiff::Timestamp,
) -> Option<Handover> {
    let remaining = Duration::try_from(until.duration_since(wall)).ok()?;
    (!remaining.is_zero()).then(|| Handover {
        from: from.to_owned(),
        until: now + remaining,
    })
}

/// The replica a handover in force moves the primary role away from.
fn handing_over_from(s: &Snapshot) -> Option<&str> {
    s.lease
        .as_ref()?
        .handover
        .as_ref()
        .filter(|h| s.now < h.until)
        .map(|h| h.from.as_str())
}

/// A fresh peer that can take the primary role from this replica without losing data: a
/// member SECONDARY at this replica's sequence number with every database SYNCHRONIZED and
/// failover-ready.
fn successor(s: &Snapshot, mine: &AgState) -> Option<String> {
    s.peers
        .iter()
        .filter(|p| mine.replicas.iter().any(|r| r == &p.name))
        .find(|p| {
            fresh_ag(s, p).is_some_and(|theirs| {
                theirs.role == Role::Secondary
                    && theirs.sequence_number == mine.sequence_number
                    && failover_ready(theirs).is_ok()
                    && mine.databases.iter().all(|d| {
                        theirs
                            .database(&d.name)
                            .is_some_and(|t| t.sync == SyncState::Synchronized)
                    })
            })
        })
        .map(|p| p.name.clone())
}

/// What the agent remembers in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// When the last acquire or renew that succeeded was *sent*.
    pub last_renew: Option<Mono>,
    /// `GRANT CREATE ANY DATABASE` ran since this process started.
    pub create_db_granted: bool,
}

/// Election timing, derived from the flags in [`crate::config::Timing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// A holder that has not renewed for this long demotes itself; shorter than the Lease
    /// duration so that it has stepped down before anyone else may take over.
    pub renew_deadline: Duration,
    /// A peer answer older than this does not count.
    pub peer_stale_after: Duration,
}

/// Another member as this agent last heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Pod name (the SQL Server instance name).
    pub name: String,
    /// The peer agent's last answer, if any.
    pub state: Option<Local>,
    /// How long ago that answer arrived.
    pub age: Option<Duration>,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// This pod's name.
    pub me: String,
    /// Now.
    pub now: Mono,
    /// Election timing.
    pub timing: Timing,
    /// The local instance.
    pub local: Local,
    /// The Lease, `None` when it does not exist.
    pub lease: Option<LeaseView>,
    /// The other pods of the database.
    pub peers: Vec<PeerView>,
    /// The current `kubedb.com/role` label of this pod.
    pub label: Option<RoleLabel>,
    /// Process memory.
    pub memory: Memory,
    /// Databases that should be in the AG.
    pub wanted_databases: Vec<String>,
}

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create what is missing of master key, login, certificate and endpoint.
    SetupInstance,
    /// `CREATE AVAILABILITY GROUP` with this replica only.
    CreateAg,
    /// Write the AG-created marker on the Lease.
    MarkAgCreated,
    /// On the primary: `ADD REPLICA` for this peer.
    AddReplica(String),
    /// `JOIN` the AG the primary already lists this replica in.
    JoinAg,
    /// `GRANT CREATE ANY DATABASE` (automatic seeding needs it on every replica).
    GrantCreateDatabase,
    /// Take the free Lease.
    AcquireLease,
    /// Renew the Lease this agent holds.
    RenewLease,
    /// Release the Lease.
    StepDown(Reason),
    /// `FORCE_FAILOVER_ALLOW_DATA_LOSS` on this replica, then resume its databases.
    Promote,
    /// `SET (ROLE = SECONDARY)` on this replica (fencing).
    Demote(Reason),
    /// `SET (ROLE = SECONDARY)` towards the new primary and resume suspended databases.
    FollowNewPrimary,
    /// Resume the primary's suspended databases.
    ResumeDatabases,
    /// Set `REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT`.
    SetRequiredSynchronizedSecondaries(u32),
    /// Create (if missing) and add a database to the AG.
    AddDatabase(String),
    /// Set (`Some`) or remove (`None`) this pod's role label.
    Label(Option<RoleLabel>),
    /// Nothing to do now.
    Wait(Reason),
}

impl Action {
    /// A bounded name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SetupInstance => "setup_instance",
            Self::CreateAg => "create_ag",
            Self::MarkAgCreated => "mark_ag_created",
            Self::AddReplica(_) => "add_replica",
            Self::JoinAg => "join_ag",
            Self::GrantCreateDatabase => "grant_create_database",
            Self::AcquireLease => "acquire_lease",
            Self::RenewLease => "renew_lease",
            Self::StepDown(_) => "step_down",
            Self::Promote => "promote",
            Self::Demote(_) => "demote",
            Self::FollowNewPrimary => "follow_new_primary",
            Self::ResumeDatabases => "resume_databases",
            Self::SetRequiredSynchronizedSecondaries(_) => "set_required_synchronized_secondaries",
            Self::AddDatabase(_) => "add_database",
            Self::Label(_) => "label",
            Self::Wait(_) => "wait",
        }
    }

    /// Every value of [`Action::kind`], for pre-registering metric series.
    pub const KINDS: [&'static str; 17] = [
        "setup_instance",
        "create_ag",
        "mark_ag_created",
        "add_replica",
        "join_ag",
        "grant_create_database",
        "acquire_lease",
        "renew_lease",
        "step_down",
        "promote",
        "demote",
        "follow_new_primary",
        "resume_databases",
        "set_required_synchronized_secondaries",
        "add_database",
        "label",
        "wait",
    ];
}

/// Why a decision was taken (or nothing was done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The local SQL Server does not answer.
    SqlServerUnreachable,
    /// HADR is off; only a restart with `MSSQL_ENABLE_HADR=1` fixes that.
    HadrDisabled,
    /// The Lease was not renewed within the renew deadline.
    RenewDeadlinePassed,
    /// Another replica holds the Lease.
    LeaseHeldBy(String),
    /// A peer has a higher sequence number or more hardened log.
    PeerAhead(String),
    /// A peer reports itself primary.
    PeerIsPrimary(String),
    /// An equally advanced peer with a lower name goes first.
    TieGoesTo(String),
    /// Too few members answered to know that this replica has every committed transaction.
    NoQuorum {
        /// Members that answered, this one included.
        answered: usize,
        /// `replicas − required synchronized secondaries`.
        needed: usize,
    },
    /// A local database is not failover-ready.
    NotFailoverReady(String),
    /// The Lease says the AG was created, but this instance has none: it must join, never create.
    AgAlreadyCreated,
    /// A peer already has the AG.
    PeerHasAg(String),
    /// No fresh answer from this peer.
    PeerUnknown(String),
    /// A peer with a lower name is ready to create the AG.
    LowerPeerFirst(String),
    /// Waiting for the primary to add this replica.
    WaitingToBeAdded(String),
    /// Following this primary.
    Following(String),
    /// Serving as primary.
    Serving,
    /// The agent is stopping (SIGTERM: the pod is being deleted or evicted).
    ShuttingDown,
    /// A handover away from this replica is in force: it may not take the primary role.
    HandingOver,
    /// Handing the primary role over to this synchronized secondary.
    HandOverTo(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SqlServerUnreachable => write!(f, "SQL Server does not answer on loopback"),
            Self::HadrDisabled => write!(
                f,
                "HADR is not enabled (MSSQL_ENABLE_HADR=1 and a restart are needed)"
            ),
            Self::RenewDeadlinePassed => write!(f, "the Lease was not renewed in time"),
            Self::LeaseHeldBy(h) => write!(f, "the Lease is held by {h}"),
            Self::PeerAhead(p) => write!(f, "{p} is more advanced"),
            Self::PeerIsPrimary(p) => write!(f, "{p} reports itself primary"),
            Self::TieGoesTo(p) => write!(f, "{p} is as advanced and goes first"),
            Self::NoQuorum { answered, needed } => {
                write!(f, "{answered} of the {needed} members needed answered")
            }
            Self::NotFailoverReady(db) => write!(f, "database {db} is not failover-ready"),
            Self::AgAlreadyCreated => write!(
                f,
                "the AG was created before but this instance has none: waiting to join"
            ),
            Self::PeerHasAg(p) => write!(f, "{p} already has the AG"),
            Self::PeerUnknown(p) => write!(f, "no recent answer from {p}"),
            Self::LowerPeerFirst(p) => write!(f, "{p} creates the AG"),
            Self::WaitingToBeAdded(p) => write!(f, "waiting for {p} to add this replica"),
            Self::Following(p) => write!(f, "secondary of {p}"),
            Self::Serving => write!(f, "primary"),
            Self::ShuttingDown => write!(f, "the agent is stopping"),
            Self::HandingOver => {
                write!(f, "the primary role is being handed away from this replica")
            }
            Self::HandOverTo(p) => write!(f, "handing the primary role over to {p}"),
        }
    }
}

/// The Lease from this agent's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Held by this agent and renewed within the renew deadline.
    MineValid,
    /// Held by this agent by the record, but no renewal succeeded for the renew deadline.
    MineLapsing,
    /// Held by this agent by the record, with no renewal in this process (after a restart).
    MineUnconfirmed,
    /// Held by another agent and not expired by this agent's observation.
    Other(String),
    /// Absent, released, or expired.
    Free,
}

/// What a stopping agent does before it exits (on SIGTERM, when its pod is deleted or evicted).
/// A holder fences its SQL Server if it is primary (`SET (ROLE = SECONDARY)`) and then frees the
/// Lease, so that the most advanced synchronized secondary takes over at once instead of after
/// the Lease duration; the order keeps the rule that the Lease is free only once no primary
/// accepts writes. Every agent removes its role label, so that the primary Service stops
/// routing to a pod that is going away.
pub fn shutdown(s: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    let holder = matches!(
        lease_state(s),
        LeaseState::MineValid | LeaseState::MineLapsing | LeaseState::MineUnconfirmed
    );
    if holder {
        let primary = matches!(&s.local, Local::Up(state)
            if state.ag.as_ref().is_some_and(|ag| ag.role == Role::Primary));
        if primary {
            actions.push(Action::Demote(Reason::ShuttingDown));
        }
        actions.push(Action::StepDown(Reason::ShuttingDown));
    }
    if s.label.is_some() {
        actions.push(Action::Label(None));
    }
    actions
}

/// Classifies the Lease.
pub fn lease_state(s: &Snapshot) -> LeaseState {
    let lease = s
        .lease
        .as_ref()
        .map(|l| (l.holder.as_deref(), l.observed_at, l.duration));
    classify_lease(
        lease,
        &s.me,
        s.memory.last_renew,
        s.now,
        s.timing.renew_deadline,
    )
}

/// Classifies a Lease seen as (holder, when its holder or version last changed, duration) by
/// agent `me`, whose last successful renewal was sent at `last_renew`. Expiry is judged on this
/// agent's clock, never from the timestamps in the object (pure; both backends use it).
pub fn classify_lease(
    lease: Option<(Option<&str>, Mono, Duration)>,
    me: &str,
    last_renew: Option<Mono>,
    now: Mono,
    renew_deadline: Duration,
) -> LeaseState {
    let Some((holder, observed_at, duration)) = lease else {
        return LeaseState::Free;
    };
    match holder {
        None | Some("") => LeaseState::Free,
        Some(holder) if holder == me => match last_renew {
            None => LeaseState::MineUnconfirmed,
            Some(at) if now < at + renew_deadline => LeaseState::MineValid,
            Some(_) => LeaseState::MineLapsing,
        },
        Some(holder) if now < observed_at + duration => LeaseState::Other(holder.to_owned()),
        Some(_) => LeaseState::Free,
    }
}

fn marker(s: &Snapshot) -> bool {
    s.lease.as_ref().is_some_and(|l| l.ag_created)
}

/// A peer's answer if it is fresh, with its instance up.
fn fresh<'a>(s: &Snapshot, peer: &'a PeerView) -> Option<&'a Local> {
    match (peer.age, &peer.state) {
        (Some(age), Some(state)) if age <= s.timing.peer_stale_after => Some(state),
        _ => None,
    }
}

fn fresh_ag<'a>(s: &Snapshot, peer: &'a PeerView) -> Option<&'a AgState> {
    match fresh(s, peer) {
        Some(Local::Up(state)) => state.ag.as_ref(),
        _ => None,
    }
}

/// The label the Lease and SQL Server both support; `None` when unsure.
pub fn desired_label(local: &Local, lease: &LeaseState) -> Option<RoleLabel> {
    let Local::Up(LocalState { ag: Some(ag), .. }) = local else {
        return None;
    };
    let mine = matches!(
        lease,
        LeaseState::MineValid | LeaseState::MineLapsing | LeaseState::MineUnconfirmed
    );
    match ag.role {
        // After an agent restart the Lease still naming this pod and SQL Server saying PRIMARY
        // agree; dropping the label for the one round until the renewal would only flap the
        // primary service.
        Role::Primary if matches!(lease, LeaseState::MineValid | LeaseState::MineUnconfirmed) => {
            Some(RoleLabel::Primary)
        }
        Role::Secondary if !mine => Some(RoleLabel::Secondary),
        _ => None,
    }
}

/// `/ready`: a primary is ready when it holds the Lease and is writable (online, every database
/// online); a secondary when every database is SYNCHRONIZED.
pub fn readiness(local: &Local, lease: &LeaseState) -> Result<RoleLabel, String> {
    let ag = match local {
        Local::Unreachable => return Err(Reason::SqlServerUnreachable.to_string()),
        Local::Up(LocalState { ag: None, .. }) => {
            return Err("this instance is not in the availability group".into());
        }
        Local::Up(LocalState { ag: Some(ag), .. }) => ag,
    };
    match ag.role {
        Role::Primary => {
            if *lease != LeaseState::MineValid {
                return Err("primary without a valid Lease".into());
            }
            if !ag.online {
                return Err("primary replica is not online".into());
            }
            match ag.databases.iter().find(|d| !d.online) {
                Some(db) => Err(format!("database {} is not online", db.name)),
                None => Ok(RoleLabel::Primary),
            }
        }
        Role::Secondary => match ag
            .databases
            .iter()
            .find(|d| d.sync != SyncState::Synchronized)
        {
            Some(db) => Err(format!("database {} is {:?}", db.name, db.sync)),
            None => Ok(RoleLabel::Secondary),
        },
        Role::Resolving => Err("replica is RESOLVING".into()),
    }
}

/// `REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT` for `replicas` synchronous replicas: half,
/// rounded down, as Pacemaker's resource agent computes it (1 for 2 or 3 replicas, 2 for 4 or 5).
pub fn required_synchronized_secondaries(replicas: usize) -> u32 {
    u32::try_from(replicas / 2).unwrap_or(u32::MAX)
}

/// How `a`'s hardened log compares with `b`'s over the databases both have.
fn compare_log(a: &AgState, b: &AgState) -> Option<Ordering> {
    let mut ahead = false;
    let mut behind = false;
    for db in &a.databases {
        let Some(other) = b.database(&db.name) else {
            continue;
        };
        match db.hardened_lsn.cmp(&other.hardened_lsn) {
            Ordering::Greater => ahead = true,
            Ordering::Less => behind = true,
            Ordering::Equal => {}
        }
    }
    match (ahead, behind) {
        (false, false) => Some(Ordering::Equal),
        (true, false) => Some(Ordering::Greater),
        (false, true) => Some(Ordering::Less),
        (true, true) => None,
    }
}

fn failover_ready(ag: &AgState) -> Result<(), Reason> {
    match ag.databases.iter().find(|d| {
        !d.failover_ready || matches!(d.sync, SyncState::Reverting | SyncState::Initializing)
    }) {
        Some(db) => Err(Reason::NotFailoverReady(db.name.clone())),
        None => Ok(()),
    }
}

/// May this replica take (or keep, while not yet primary) the Lease? Rule 5. `yield_ties`: an
/// equally advanced secondary leaves the Lease to a lower name (only before taking it, see
/// [`yielding`]; a holder keeps what it won). Two primaries always settle by name.
fn election_blocker(s: &Snapshot, mine: &AgState, yield_ties: bool) -> Option<Reason> {
    let departing = handing_over_from(s);
    if departing == Some(s.me.as_str()) {
        return Some(Reason::HandingOver);
    }
    if mine.role != Role::Primary
        && let Err(reason) = failover_ready(mine)
    {
        return Some(reason);
    }
    let members = mine.replicas.len().max(1);
    let required = usize::try_from(mine.required_synchronized_secondaries)
        .unwrap_or(usize::MAX)
        .min(members - 1);
    let needed = members - required;
    let mut answered = 1;
    for peer in &s.peers {
        if !mine.replicas.iter().any(|r| r == &peer.name) {
            continue;
        }
        let Some(theirs) = fresh_ag(s, peer) else {
            continue;
        };
        answered += 1;
        match theirs.sequence_number.cmp(&mine.sequence_number) {
            Ordering::Greater => return Some(Reason::PeerAhead(peer.name.clone())),
            Ordering::Less => continue,
            Ordering::Equal => {}
        }
        if theirs.role == Role::Primary && mine.role != Role::Primary {
            return Some(Reason::PeerIsPrimary(peer.name.clone()));
        }
        // Hardened LSNs of a primary are the minimum over its secondaries, not its own log:
        // compare only between replicas that are not primary.
        let log = if theirs.role == Role::Primary || mine.role == Role::Primary {
            Some(Ordering::Equal)
        } else {
            compare_log(theirs, mine)
        };
        match log {
            Some(Ordering::Greater) => return Some(Reason::PeerAhead(peer.name.clone())),
            Some(Ordering::Less) => {}
            Some(Ordering::Equal) | None => {
                let could = theirs.role == Role::Primary || failover_ready(theirs).is_ok();
                if could
                    && departing != Some(peer.name.as_str())
                    && peer.name < s.me
                    && theirs.role == mine.role
                    && (mine.role == Role::Primary || yield_ties)
                {
                    return Some(Reason::TieGoesTo(peer.name.clone()));
                }
            }
        }
    }
    if answered < needed {
        return Some(Reason::NoQuorum { answered, needed });
    }
    None
}

/// Whether an equally advanced replica still leaves the Lease to a peer with a lower name: only
/// during the first [`Timing::peer_stale_after`] after the Lease became free in this agent's
/// view. The order only avoids needless races (the Lease decides anyway); past the window
/// anyone eligible tries, so a preferred peer that cannot reach the API server (or whose agent
/// hangs) does not block the election for ever.
fn yielding(s: &Snapshot) -> bool {
    let Some(lease) = &s.lease else {
        return false;
    };
    let free_since = match lease.holder.as_deref() {
        None | Some("") => lease.observed_at,
        Some(_) => lease.observed_at + lease.duration,
    };
    s.now < free_since + s.timing.peer_stale_after
}

/// May a replica that is primary and holds the Lease keep it? Only a peer promoted after it
/// (higher sequence number) takes that away.
fn keep_blocker(s: &Snapshot, mine: &AgState) -> Option<Reason> {
    s.peers.iter().find_map(|peer| {
        fresh_ag(s, peer)
            .filter(|theirs| theirs.sequence_number > mine.sequence_number)
            .map(|_| Reason::PeerAhead(peer.name.clone()))
    })
}

/// Whether the AG may be created here, rule 6. `Err(true)` is a hard stop (an AG exists
/// somewhere); `Err(false)` a reason to wait.
fn bootstrap_blocker(s: &Snapshot, holding: bool) -> Result<(), (bool, Reason)> {
    if marker(s) {
        return Err((true, Reason::AgAlreadyCreated));
    }
    let mut wait = None;
    for peer in &s.peers {
        match fresh(s, peer) {
            None => {
                wait.get_or_insert(Reason::PeerUnknown(peer.name.clone()));
            }
            Some(Local::Up(LocalState { ag: Some(_), .. })) => {
                return Err((true, Reason::PeerHasAg(peer.name.clone())));
            }
            Some(Local::Up(LocalState { ag: None, setup })) => {
                if !holding && setup.all() && peer.name < s.me {
                    wait.get_or_insert(Reason::LowerPeerFirst(peer.name.clone()));
                }
            }
            Some(Local::Unreachable) => {
                // Its instance may hold an AG we cannot see.
                wait.get_or_insert(Reason::PeerUnknown(peer.name.clone()));
            }
        }
    }
    match wait {
        Some(reason) => Err((false, reason)),
        None => Ok(()),
    }
}

fn renew_due(s: &Snapshot) -> bool {
    s.memory
        .last_renew
        .is_none_or(|at| s.now >= at + s.timing.renew_interval)
}

/// The decision. See the module documentation for the rules.
pub fn decide(s: &Snapshot) -> Action {
    let lease = lease_state(s);
    let desired = desired_label(&s.local, &lease);

    // 1. Fencing.
    if let Local::Up(LocalState { ag: Some(ag), .. }) = &s.local
        && ag.role == Role::Primary
    {
        match &lease {
            LeaseState::Other(holder) => {
                return Action::Demote(Reason::LeaseHeldBy(holder.clone()));
            }
            LeaseState::MineLapsing => return Action::Demote(Reason::RenewDeadlinePassed),
            LeaseState::MineValid | LeaseState::MineUnconfirmed => {
                if let Some(reason) = keep_blocker(s, ag) {
                    return Action::Demote(reason);
                }
                // A planned switchover: hand over only to a secondary that has every
                // transaction; without one, keep serving (the requester falls back).
                if handing_over_from(s) == Some(s.me.as_str())
                    && let Some(to) = successor(s, ag)
                {
                    return Action::Demote(Reason::HandOverTo(to));
                }
            }
            LeaseState::Free => {
                if let Some(reason) = election_blocker(s, ag, true) {
                    return Action::Demote(reason);
                }
            }
        }
    }

    // 2. A primary label nobody supports goes first.
    if s.label == Some(RoleLabel::Primary) && desired != Some(RoleLabel::Primary) {
        return Action::Label(desired);
    }

    // 3. SQL Server unreachable.
    let Local::Up(local) = &s.local else {
        if s.label.is_some() {
            return Action::Label(None);
        }
        if lease == LeaseState::MineLapsing {
            return Action::StepDown(Reason::SqlServerUnreachable);
        }
        return Action::Wait(Reason::SqlServerUnreachable);
    };

    // 4. Instance setup.
    if !local.setup.hadr_enabled {
        return relabel_or(s, desired, Action::Wait(Reason::HadrDisabled));
    }
    if !local.setup.complete() {
        return Action::SetupInstance;
    }

    match &local.ag {
        None => without_ag(s, &lease, desired),
        Some(ag) => with_ag(s, ag, &lease, desired),
    }
}

fn relabel_or(s: &Snapshot, desired: Option<RoleLabel>, otherwise: Action) -> Action {
    if s.label != desired {
        Action::Label(desired)
    } else {
        otherwise
    }
}

/// Rule 6: this instance has no AG.
fn without_ag(s: &Snapshot, lease: &LeaseState, desired: Option<RoleLabel>) -> Action {
    match lease {
        LeaseState::Other(holder) => {
            let holder_ag = s
                .peers
                .iter()
                .find(|p| &p.name == holder)
                .and_then(|p| fresh_ag(s, p));
            match holder_ag {
                Some(ag) if ag.role == Role::Primary && ag.replicas.iter().any(|r| r == &s.me) => {
                    relabel_or(s, desired, Action::JoinAg)
                }
                Some(_) => relabel_or(
                    s,
                    desired,
                    Action::Wait(Reason::WaitingToBeAdded(holder.clone())),
                ),
                None if marker(s) => relabel_or(
                    s,
                    desired,
                    Action::Wait(Reason::WaitingToBeAdded(holder.clone())),
                ),
                None => relabel_or(
                    s,
                    desired,
                    Action::Wait(Reason::LeaseHeldBy(holder.clone())),
                ),
            }
        }
        LeaseState::MineValid | LeaseState::MineUnconfirmed | LeaseState::MineLapsing => {
            match bootstrap_blocker(s, true) {
                Err((true, reason)) => Action::StepDown(reason),
                _ if *lease != LeaseState::MineValid || renew_due(s) => Action::RenewLease,
                Err((false, reason)) => relabel_or(s, desired, Action::Wait(reason)),
                Ok(()) => Action::CreateAg,
            }
        }
        LeaseState::Free => match bootstrap_blocker(s, false) {
            Ok(()) => Action::AcquireLease,
            Err((_, reason)) => relabel_or(s, desired, Action::Wait(reason)),
        },
    }
}

/// Rules 5, 7 and 8: this instance has the AG.
fn with_ag(s: &Snapshot, ag: &AgState, lease: &LeaseState, desired: Option<RoleLabel>) -> Action {
    match lease {
        LeaseState::MineValid | LeaseState::MineUnconfirmed | LeaseState::MineLapsing => {
            if ag.role != Role::Primary {
                if let Some(reason) = election_blocker(s, ag, false) {
                    return Action::StepDown(reason);
                }
                if *lease != LeaseState::MineValid || renew_due(s) {
                    return Action::RenewLease;
                }
                return Action::Promote;
            }
            // Primary (fencing already handled Lapsing and a peer ahead).
            if *lease != LeaseState::MineValid || renew_due(s) {
                return Action::RenewLease;
            }
            primary_housekeeping(s, ag, desired)
        }
        LeaseState::Free => match election_blocker(s, ag, yielding(s)) {
            None => Action::AcquireLease,
            Some(reason) => follower(s, ag, None, desired, reason),
        },
        LeaseState::Other(holder) => {
            let reason = Reason::Following(holder.clone());
            follower(s, ag, Some(holder), desired, reason)
        }
    }
}

fn primary_housekeeping(s: &Snapshot, ag: &AgState, desired: Option<RoleLabel>) -> Action {
    if s.label != desired {
        return Action::Label(desired);
    }
    if !marker(s) {
        return Action::MarkAgCreated;
    }
    if !s.memory.create_db_granted {
        return Action::GrantCreateDatabase;
    }
    if ag.databases.iter().any(|d| d.suspended) {
        return Action::ResumeDatabases;
    }
    for peer in &s.peers {
        if ag.replicas.iter().any(|r| r == &peer.name) {
            continue;
        }
        if let Some(Local::Up(LocalState { setup, ag: None })) = fresh(s, peer)
            && setup.all()
        {
            return Action::AddReplica(peer.name.clone());
        }
    }
    let wanted = required_synchronized_secondaries(ag.replicas.len());
    if wanted != ag.required_synchronized_secondaries {
        return Action::SetRequiredSynchronizedSecondaries(wanted);
    }
    if let Some(db) = s
        .wanted_databases
        .iter()
        .find(|name| ag.database(name).is_none())
    {
        return Action::AddDatabase(db.clone());
    }
    Action::Wait(Reason::Serving)
}

fn follower(
    s: &Snapshot,
    ag: &AgState,
    holder: Option<&String>,
    desired: Option<RoleLabel>,
    idle: Reason,
) -> Action {
    if let Some(holder) = holder
        && ag.role == Role::Resolving
    {
        return Action::Demote(Reason::LeaseHeldBy(holder.clone()));
    }
    if s.label != desired {
        return Action::Label(desired);
    }
    if !s.memory.create_db_granted {
        return Action::GrantCreateDatabase;
    }
    if holder.is_some() && ag.role == Role::Secondary && ag.databases.iter().any(|d| d.suspended) {
        return Action::FollowNewPrimary;
    }
    Action::Wait(idle)
}

#[cfg(test)]
mod tests;
