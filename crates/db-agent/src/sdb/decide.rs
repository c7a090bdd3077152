//! The SingleStore agent's decisions, one pure function like the SQL Server one: a [`Snapshot`]
//! in, one [`Action`] out.
//!
//! Aggregator agents compete for the `<db>-master` Lease; leaf agents never touch it. Rules, in
//! the order tried (first match wins; `docs/agent.md` has the reasoning):
//!
//! 1. **Node unreachable**: drop the role label; a holder whose renew deadline passed releases
//!    the Lease; otherwise wait.
//! 2. **Leaves** label themselves `Leaf`; registering them is the master's job.
//! 3. **Labels are corrected first**: a `Master` label the node and the Lease do not both support
//!    goes before anything else.
//! 4. **A master node** (its `SHOW AGGREGATORS` names itself master) takes or keeps the Lease,
//!    unless another agent holds it while its own node also says master: then this node is a
//!    master replaced while it was gone, and waits (a Warning tells the user). The holder renews,
//!    carries out a requested handover (`PROMOTE AGGREGATOR` to a caught-up online child), writes
//!    the bootstrapped marker, and registers every peer whose agent reports a node in no
//!    cluster (`ADD LEAF`, `ADD AGGREGATOR`).
//! 5. **A child aggregator** holding the Lease releases it when the master is online (a handover
//!    just completed), or runs `AGGREGATOR SET AS MASTER` when the master is offline (it took the
//!    Lease to replace a lost master). A child takes a free Lease only when the master has been
//!    offline and the Lease free for `master_lost_after`, and no fresh child reports a higher
//!    `cluster` position (ties go to the lowest name): a master that merely restarts keeps its
//!    role, as SingleStore advises.
//! 6. **A node in no cluster**: bootstraps only as the Lease holder, only while the Lease has no
//!    bootstrapped marker and every known aggregator peer answered without a cluster (so a lost
//!    volume never bootstraps a second cluster: it releases the Lease and waits to be added).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sql::{Aggregator, Database, Leaf, Position};
use crate::mssql::decide::{Handover, LeaseState, Mono};

/// What kind of node a pod runs (`--node-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// An aggregator: the master or a child.
    Aggregator,
    /// A leaf.
    Leaf,
}

/// The node as observed over SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// `@@memsql_version`.
    pub version: String,
    /// `SHOW AGGREGATORS` (aggregators only; empty in no cluster).
    pub aggregators: Vec<Aggregator>,
    /// `SHOW LEAVES` (aggregators in a cluster only).
    pub leaves: Vec<Leaf>,
    /// `SHOW DATABASES EXTENDED`.
    pub databases: Vec<Database>,
}

/// The local node, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "node")]
pub enum Local {
    /// It answered.
    Up(NodeState),
    /// It did not.
    Unreachable,
}

/// Where a node stands in the cluster, from its own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In no cluster.
    Fresh,
    /// The master aggregator (by its own view).
    Master,
    /// A child aggregator.
    Child,
    /// A leaf (leaves cannot tell whether they were added).
    Leaf,
}

impl NodeState {
    /// This node's standing; `host` is its own address.
    pub fn standing(&self, kind: NodeKind, host: &str) -> Standing {
        match kind {
            NodeKind::Leaf => Standing::Leaf,
            NodeKind::Aggregator if self.aggregators.is_empty() => Standing::Fresh,
            NodeKind::Aggregator => {
                if self.aggregators.iter().any(|a| a.master && a.host == host) {
                    Standing::Master
                } else {
                    Standing::Child
                }
            }
        }
    }

    /// The master aggregator as this node sees it.
    pub fn master(&self) -> Option<&Aggregator> {
        self.aggregators.iter().find(|a| a.master)
    }

    /// The position of the `cluster` database.
    pub fn position(&self) -> Option<Position> {
        self.databases
            .iter()
            .find(|d| d.name == super::sql::CLUSTER_DATABASE)
            .and_then(|d| d.position)
    }

    /// The first database that is not caught up, if any.
    pub fn lagging(&self) -> Option<&Database> {
        self.databases.iter().find(|d| !d.caught_up())
    }
}

/// The role label values (KubeDB's `DatabasePodMaster`, `DatabasePodAggregator`,
/// `DatabasePodLeaf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleLabel {
    /// `Master`.
    Master,
    /// `Aggregator`: a child aggregator.
    Aggregator,
    /// `Leaf`.
    Leaf,
}

impl RoleLabel {
    /// As written on the pod.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => api::names::singlestore::ROLE_MASTER,
            Self::Aggregator => api::names::singlestore::ROLE_AGGREGATOR,
            Self::Leaf => api::names::singlestore::ROLE_LEAF,
        }
    }

    /// From a label value; anything else is not ours.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Master, Self::Aggregator, Self::Leaf]
            .into_iter()
            .find(|l| l.as_str() == value)
    }
}

/// The Lease as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// When the holder or version last changed, on this agent's clock.
    pub observed_at: Mono,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// The cluster-bootstrapped marker is present.
    pub bootstrapped: bool,
    /// A handover in force.
    pub handover: Option<Handover>,
}

/// Another pod of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Pod name.
    pub name: String,
    /// Its address in cluster statements.
    pub host: String,
    /// Its node kind.
    pub kind: NodeKind,
    /// Its agent's last report and how old it is.
    pub report: Option<(Local, Duration)>,
}

/// Timing of the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// A holder that has not renewed for this long lets the Lease go.
    pub renew_deadline: Duration,
    /// A peer report older than this does not count.
    pub peer_stale_after: Duration,
    /// How long the master must be offline, and the Lease free, before a child replaces it.
    pub master_lost_after: Duration,
}

/// What the agent remembers between rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// When the last successful acquire or renew was sent.
    pub last_renew: Option<Mono>,
    /// The license was set since this process started.
    pub license_set: bool,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// This pod.
    pub me: String,
    /// Its address in cluster statements.
    pub host: String,
    /// Its node kind.
    pub kind: NodeKind,
    /// Now.
    pub now: Mono,
    /// Timing.
    pub timing: Timing,
    /// The local node.
    pub local: Local,
    /// The Lease (`None`: absent; always `None` for a leaf).
    pub lease: Option<LeaseView>,
    /// The other pods.
    pub peers: Vec<Peer>,
    /// This pod's role label.
    pub label: Option<RoleLabel>,
    /// Memory.
    pub memory: Memory,
}

/// Why the agent waits (or steps down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The node does not answer.
    Unreachable,
    /// Nothing to do.
    Converged,
    /// Another agent holds the Lease while its node is master too: this node was replaced.
    ReplacedMaster(String),
    /// A handover is requested but no child is online and caught up.
    NoSuccessor,
    /// The master is online; a child has nothing to take over.
    MasterOnline,
    /// The master is offline, but not yet for `master_lost_after`.
    MasterMissing,
    /// Another child is further ahead, or first by name.
    OtherCandidate(String),
    /// A cluster exists (marker or a peer in one): this node waits to be added.
    AwaitingAdd,
    /// Aggregator peers have not all answered; bootstrapping now could make a second cluster.
    PeersUnknown(String),
    /// Another agent holds the Lease.
    LeaseHeld(String),
    /// The renew deadline passed.
    RenewDeadline,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable => write!(f, "SingleStore does not answer"),
            Self::Converged => write!(f, "converged"),
            Self::ReplacedMaster(by) => write!(
                f,
                "this node still says it is the master aggregator, but {by} holds the Lease and is master: it was replaced while it was gone"
            ),
            Self::NoSuccessor => write!(
                f,
                "a handover is requested but no child aggregator is online and caught up"
            ),
            Self::MasterOnline => write!(f, "the master aggregator is online"),
            Self::MasterMissing => write!(
                f,
                "the master aggregator is offline; waiting before replacing it"
            ),
            Self::OtherCandidate(p) => {
                write!(f, "{p} is the better candidate to replace the master")
            }
            Self::AwaitingAdd => write!(f, "waiting for the master aggregator to add this node"),
            Self::PeersUnknown(p) => write!(
                f,
                "waiting for the agent of {p} to report before bootstrapping"
            ),
            Self::LeaseHeld(h) => write!(f, "{h} holds the Lease"),
            Self::RenewDeadline => write!(f, "the Lease was not renewed in time"),
        }
    }
}

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take the Lease.
    AcquireLease,
    /// Renew it.
    RenewLease,
    /// Let it go.
    ReleaseLease(Reason),
    /// Write the cluster-bootstrapped marker on the Lease.
    MarkBootstrapped,
    /// `SET LICENSE`.
    SetLicense,
    /// `BOOTSTRAP AGGREGATOR` with this node's host.
    Bootstrap,
    /// `ADD LEAF` for this host.
    AddLeaf(String),
    /// `ADD AGGREGATOR` for this host.
    AddAggregator(String),
    /// `PROMOTE AGGREGATOR <host> TO MASTER` (a planned handover).
    Promote(String),
    /// `AGGREGATOR SET AS MASTER` (the master is lost).
    SetAsMaster,
    /// Set or remove this pod's role label.
    Label(Option<RoleLabel>),
    /// Nothing now.
    Wait(Reason),
}

impl Action {
    /// Every kind, for metrics.
    pub const KINDS: [&'static str; 12] = [
        "acquire_lease",
        "renew_lease",
        "release_lease",
        "mark_bootstrapped",
        "set_license",
        "bootstrap",
        "add_leaf",
        "add_aggregator",
        "promote",
        "set_as_master",
        "label",
        "wait",
    ];

    /// A bounded name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AcquireLease => "acquire_lease",
            Self::RenewLease => "renew_lease",
            Self::ReleaseLease(_) => "release_lease",
            Self::MarkBootstrapped => "mark_bootstrapped",
            Self::SetLicense => "set_license",
            Self::Bootstrap => "bootstrap",
            Self::AddLeaf(_) => "add_leaf",
            Self::AddAggregator(_) => "add_aggregator",
            Self::Promote(_) => "promote",
            Self::SetAsMaster => "set_as_master",
            Self::Label(_) => "label",
            Self::Wait(_) => "wait",
        }
    }
}

/// Classifies the Lease (the SQL Server agent's rules: expiry judged on this agent's clock).
pub fn lease_state(s: &Snapshot) -> LeaseState {
    let lease = s
        .lease
        .as_ref()
        .map(|l| (l.holder.as_deref(), l.observed_at, l.duration));
    crate::mssql::decide::classify_lease(
        lease,
        &s.me,
        s.memory.last_renew,
        s.now,
        s.timing.renew_deadline,
    )
}

/// Since when the Lease has been free (`None`: it is held).
fn free_since(s: &Snapshot) -> Option<Mono> {
    match &s.lease {
        None => Some(Duration::ZERO),
        Some(lease) => match lease.holder.as_deref() {
            None | Some("") => Some(lease.observed_at),
            Some(h) if h == s.me => None,
            Some(_) => {
                let expiry = lease.observed_at + lease.duration;
                (s.now >= expiry).then_some(expiry)
            }
        },
    }
}

fn fresh<'a>(s: &Snapshot, peer: &'a Peer) -> Option<&'a NodeState> {
    match &peer.report {
        Some((Local::Up(state), age)) if *age <= s.timing.peer_stale_after => Some(state),
        _ => None,
    }
}

fn mine(lease: &LeaseState) -> bool {
    matches!(
        lease,
        LeaseState::MineValid | LeaseState::MineLapsing | LeaseState::MineUnconfirmed
    )
}

/// The label the node and the Lease both support; `None` when unsure.
pub fn desired_label(s: &Snapshot, lease: &LeaseState) -> Option<RoleLabel> {
    let Local::Up(node) = &s.local else {
        return None;
    };
    match node.standing(s.kind, &s.host) {
        Standing::Leaf => Some(RoleLabel::Leaf),
        Standing::Master
            if matches!(lease, LeaseState::MineValid | LeaseState::MineUnconfirmed) =>
        {
            Some(RoleLabel::Master)
        }
        Standing::Child => Some(RoleLabel::Aggregator),
        Standing::Master | Standing::Fresh => None,
    }
}

/// What `/ready` answers: the role, or why the pod must not receive traffic.
pub fn readiness(s: &Snapshot, lease: &LeaseState) -> Result<&'static str, String> {
    let Local::Up(node) = &s.local else {
        return Err(Reason::Unreachable.to_string());
    };
    if let Some(db) = node.lagging() {
        return Err(format!(
            "database {} is {} (not caught up)",
            db.name,
            if db.state.is_empty() {
                "in no state"
            } else {
                &db.state
            }
        ));
    }
    let standing = node.standing(s.kind, &s.host);
    // A leaf cannot tell from its own node whether it was added: the master's agent can. A
    // master that answers without this leaf in its list means it was not added (yet); without a
    // word from the master (it restarts) the leaf's own state decides.
    if standing == Standing::Leaf
        && let Some(master) = s
            .peers
            .iter()
            .find_map(|p| fresh(s, p).filter(|n| n.standing(p.kind, &p.host) == Standing::Master))
        && !master.leaves.iter().any(|l| l.host == s.host)
    {
        return Err("waiting for the master aggregator to add this leaf".into());
    }
    match (standing, desired_label(s, lease)) {
        (_, Some(label)) => Ok(label.as_str()),
        (Standing::Fresh, _) => Err("not in a cluster yet".into()),
        _ => Err("master aggregator without the Lease".into()),
    }
}

/// The one action for this round.
pub fn decide(s: &Snapshot) -> Action {
    let lease = lease_state(s);
    let Local::Up(node) = &s.local else {
        if s.label.is_some() {
            return Action::Label(None);
        }
        if lease == LeaseState::MineLapsing {
            return Action::ReleaseLease(Reason::RenewDeadline);
        }
        return Action::Wait(Reason::Unreachable);
    };
    let standing = node.standing(s.kind, &s.host);
    let desired = desired_label(s, &lease);
    if standing == Standing::Leaf || (s.label == Some(RoleLabel::Master) && desired != s.label) {
        return if s.label == desired {
            Action::Wait(Reason::Converged)
        } else {
            Action::Label(desired)
        };
    }
    match standing {
        Standing::Master => master(s, node, &lease, desired),
        Standing::Child => child(s, node, &lease, desired),
        Standing::Fresh | Standing::Leaf => fresh_node(s, &lease),
    }
}

fn label_or(s: &Snapshot, desired: Option<RoleLabel>, otherwise: Action) -> Action {
    if desired.is_some() && s.label != desired {
        Action::Label(desired)
    } else {
        otherwise
    }
}

fn master(
    s: &Snapshot,
    node: &NodeState,
    lease: &LeaseState,
    desired: Option<RoleLabel>,
) -> Action {
    match lease {
        LeaseState::Other(holder) => {
            let holder_is_master = s.peers.iter().any(|p| {
                p.name == *holder
                    && fresh(s, p).is_some_and(|n| n.standing(p.kind, &p.host) == Standing::Master)
            });
            if holder_is_master {
                Action::Wait(Reason::ReplacedMaster(holder.clone()))
            } else {
                Action::Wait(Reason::LeaseHeld(holder.clone()))
            }
        }
        LeaseState::Free | LeaseState::MineLapsing | LeaseState::MineUnconfirmed => {
            Action::AcquireLease
        }
        LeaseState::MineValid => {
            let renew_due = s
                .memory
                .last_renew
                .is_none_or(|at| s.now >= at + s.timing.renew_interval);
            if renew_due {
                return Action::RenewLease;
            }
            if let Some(handover) = s.lease.as_ref().and_then(|l| l.handover.as_ref())
                && handover.from == s.me
                && s.now < handover.until
            {
                return match successor(s, node) {
                    Some(host) => Action::Promote(host),
                    None => Action::Wait(Reason::NoSuccessor),
                };
            }
            if s.label != desired {
                return Action::Label(desired);
            }
            if !s.lease.as_ref().is_some_and(|l| l.bootstrapped) {
                return Action::MarkBootstrapped;
            }
            register(s, node).unwrap_or(Action::Wait(Reason::Converged))
        }
    }
}

/// An online child aggregator, at the master's `cluster` position, whose agent reports it a
/// child: the lowest by name.
fn successor(s: &Snapshot, node: &NodeState) -> Option<String> {
    let position = node.position();
    s.peers
        .iter()
        .filter(|p| p.kind == NodeKind::Aggregator)
        .filter(|p| {
            node.aggregators
                .iter()
                .any(|a| a.host == p.host && a.online && !a.master)
        })
        .filter(|p| {
            fresh(s, p).is_some_and(|n| {
                n.standing(p.kind, &p.host) == Standing::Child && n.position() >= position
            })
        })
        .map(|p| p.host.clone())
        .min()
}

/// The first peer (by name) whose agent reports its node up and that this master does not list:
/// a leaf absent from `SHOW LEAVES` (a leaf cannot tell whether it was added), an aggregator in
/// no cluster absent from `SHOW AGGREGATORS`.
fn register(s: &Snapshot, node: &NodeState) -> Option<Action> {
    let mut peers: Vec<&Peer> = s.peers.iter().collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    peers.into_iter().find_map(|p| {
        let state = fresh(s, p)?;
        match p.kind {
            NodeKind::Leaf => (!node.leaves.iter().any(|l| l.host == p.host))
                .then(|| Action::AddLeaf(p.host.clone())),
            NodeKind::Aggregator => (state.standing(p.kind, &p.host) == Standing::Fresh
                && !node.aggregators.iter().any(|a| a.host == p.host))
            .then(|| Action::AddAggregator(p.host.clone())),
        }
    })
}

fn child(s: &Snapshot, node: &NodeState, lease: &LeaseState, desired: Option<RoleLabel>) -> Action {
    let master_online = node.master().is_some_and(|m| m.online);
    if mine(lease) {
        return if master_online {
            Action::ReleaseLease(Reason::MasterOnline)
        } else {
            Action::SetAsMaster
        };
    }
    if let LeaseState::Other(holder) = lease {
        return label_or(s, desired, Action::Wait(Reason::LeaseHeld(holder.clone())));
    }
    // The Lease is free.
    if master_online {
        return label_or(s, desired, Action::Wait(Reason::MasterOnline));
    }
    let waited = free_since(s).is_some_and(|since| s.now >= since + s.timing.master_lost_after);
    if !waited {
        return label_or(s, desired, Action::Wait(Reason::MasterMissing));
    }
    let me = (node.position(), std::cmp::Reverse(s.me.clone()));
    let better = s
        .peers
        .iter()
        .filter(|p| p.kind == NodeKind::Aggregator)
        .filter_map(|p| {
            let n = fresh(s, p)?;
            (n.standing(p.kind, &p.host) == Standing::Child)
                .then(|| (n.position(), std::cmp::Reverse(p.name.clone())))
        })
        .filter(|other| *other > me)
        .max();
    match better {
        Some((_, std::cmp::Reverse(name))) => {
            label_or(s, desired, Action::Wait(Reason::OtherCandidate(name)))
        }
        None => Action::AcquireLease,
    }
}

fn fresh_node(s: &Snapshot, lease: &LeaseState) -> Action {
    let bootstrapped = s.lease.as_ref().is_some_and(|l| l.bootstrapped);
    let peer_in_cluster = s.peers.iter().any(|p| {
        p.kind == NodeKind::Aggregator
            && fresh(s, p).is_some_and(|n| n.standing(p.kind, &p.host) != Standing::Fresh)
    });
    if bootstrapped || peer_in_cluster {
        if mine(lease) {
            return Action::ReleaseLease(Reason::AwaitingAdd);
        }
        return Action::Wait(Reason::AwaitingAdd);
    }
    if let Some(silent) = s
        .peers
        .iter()
        .filter(|p| p.kind == NodeKind::Aggregator)
        .find(|p| fresh(s, p).is_none())
    {
        return Action::Wait(Reason::PeersUnknown(silent.name.clone()));
    }
    match lease {
        LeaseState::Other(holder) => Action::Wait(Reason::LeaseHeld(holder.clone())),
        LeaseState::Free => {
            // Between equals the lowest name goes first.
            let first = s
                .peers
                .iter()
                .filter(|p| p.kind == NodeKind::Aggregator)
                .all(|p| p.name > s.me);
            if first {
                Action::AcquireLease
            } else {
                Action::Wait(Reason::OtherCandidate(
                    s.peers
                        .iter()
                        .filter(|p| p.kind == NodeKind::Aggregator)
                        .map(|p| p.name.clone())
                        .min()
                        .unwrap_or_default(),
                ))
            }
        }
        LeaseState::MineLapsing | LeaseState::MineUnconfirmed => Action::AcquireLease,
        LeaseState::MineValid if !s.memory.license_set => Action::SetLicense,
        LeaseState::MineValid => Action::Bootstrap,
    }
}

#[cfg(test)]
mod tests;
