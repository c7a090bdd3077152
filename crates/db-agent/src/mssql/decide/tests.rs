//! Table tests of [`decide`] and its helpers. Every row builds a snapshot from the defaults below
//! and names the one action expected; the names say which rule the row is about.

use super::*;

const NOW: Duration = Duration::from_secs(1000);
const LEASE: Duration = Duration::from_secs(15);
const TIMING: Timing = Timing {
    renew_interval: Duration::from_secs(2),
    renew_deadline: Duration::from_secs(10),
    peer_stale_after: Duration::from_secs(6),
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn db(name: &str, sync: SyncState, failover_ready: bool, lsn: u128) -> DatabaseState {
    DatabaseState {
        name: name.into(),
        sync,
        failover_ready,
        suspended: false,
        online: true,
        hardened_lsn: Some(lsn),
    }
}

fn synced(lsn: u128) -> DatabaseState {
    db("db1", SyncState::Synchronized, true, lsn)
}

fn ag(role: Role, seq: i64, replicas: &[&str], databases: Vec<DatabaseState>) -> AgState {
    AgState {
        role,
        online: true,
        sequence_number: seq,
        required_synchronized_secondaries: required_synchronized_secondaries(replicas.len()),
        replicas: replicas.iter().map(|r| (*r).to_owned()).collect(),
        databases,
    }
}

const THREE: [&str; 3] = ["pod-0", "pod-1", "pod-2"];

fn primary(seq: i64) -> Local {
    up(Some(ag(Role::Primary, seq, &THREE, vec![synced(100)])))
}

fn secondary(seq: i64, lsn: u128) -> Local {
    up(Some(ag(Role::Secondary, seq, &THREE, vec![synced(lsn)])))
}

fn up(ag: Option<AgState>) -> Local {
    Local::Up(LocalState {
        setup: InstanceSetup::DONE,
        ag,
    })
}

fn empty() -> Local {
    up(None)
}

/// Snapshot builder: `S::new("pod-1")` is pod-1 with an empty, set-up instance, no Lease, no
/// peers, no label, nothing remembered.
struct S(Snapshot);

impl S {
    fn new(me: &str) -> Self {
        Self(Snapshot {
            me: me.into(),
            now: NOW,
            timing: TIMING,
            local: empty(),
            lease: None,
            peers: Vec::new(),
            label: None,
            memory: Memory::default(),
            wanted_databases: Vec::new(),
        })
    }
    fn local(mut self, local: Local) -> Self {
        self.0.local = local;
        self
    }
    /// A Lease held by `holder` whose last change this agent saw `ago` seconds before now.
    fn lease(mut self, holder: &str, ago: u64, marker: bool) -> Self {
        self.0.lease = Some(LeaseView {
            holder: Some(holder.into()).filter(|h: &String| !h.is_empty()),
            observed_at: NOW - secs(ago),
            duration: LEASE,
            ag_created: marker,
            handover: None,
        });
        self
    }
    /// This agent holds the Lease and last renewed it `ago` (milliseconds) before now.
    fn held_ms(mut self, ago_ms: u64, marker: bool) -> Self {
        let me = self.0.me.clone();
        self = self.lease(&me, 0, marker);
        self.0.memory.last_renew = Some(NOW - Duration::from_millis(ago_ms));
        self
    }
    fn held(self, ago: u64, marker: bool) -> Self {
        self.held_ms(ago * 1000, marker)
    }
    fn granted(mut self) -> Self {
        self.0.memory.create_db_granted = true;
        self
    }
    fn label(mut self, label: RoleLabel) -> Self {
        self.0.label = Some(label);
        self
    }
    fn peer_aged(mut self, name: &str, state: Option<Local>, age: Option<u64>) -> Self {
        self.0.peers.push(PeerView {
            name: name.into(),
            state,
            age: age.map(secs),
        });
        self
    }
    fn peer(self, name: &str, state: Local) -> Self {
        self.peer_aged(name, Some(state), Some(1))
    }
    fn stale_peer(self, name: &str, state: Local) -> Self {
        self.peer_aged(name, Some(state), Some(60))
    }
    fn silent_peer(self, name: &str) -> Self {
        self.peer_aged(name, None, None)
    }
    fn wanted(mut self, db: &str) -> Self {
        self.0.wanted_databases.push(db.into());
        self
    }
    fn with(mut self, f: impl FnOnce(&mut Snapshot)) -> Self {
        f(&mut self.0);
        self
    }
}

/// A serving primary pod-0 with everything done; rows change one thing.
fn serving_primary() -> S {
    S::new("pod-0")
        .local(primary(7))
        .held_ms(500, true)
        .granted()
        .label(RoleLabel::Primary)
        .peer("pod-1", secondary(7, 100))
        .peer("pod-2", secondary(7, 100))
}

/// pod-1 after the primary pod-0 vanished: the Lease (held by pod-0) was last seen changing 20
/// seconds ago, so it expired 5 seconds ago in pod-1's view.
fn orphan(me: &str) -> S {
    S::new(me)
        .lease("pod-0", 20, true)
        .granted()
        .label(RoleLabel::Secondary)
        .silent_peer("pod-0")
}

fn check(rows: Vec<(&str, S, Action)>) {
    let mut failures = Vec::new();
    for (name, snapshot, want) in rows {
        let got = decide(&snapshot.0);
        if got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn bootstrap() {
    let fresh_cluster = |me: &str| {
        let mut s = S::new(me);
        for p in THREE.iter().filter(|p| **p != me) {
            s = s.peer(p, empty());
        }
        s
    };
    check(vec![
        (
            "every pod answered without an AG: the lowest name takes the Lease",
            fresh_cluster("pod-0"),
            Action::AcquireLease,
        ),
        (
            "a higher name leaves creation to a ready lower one",
            fresh_cluster("pod-1"),
            Action::Wait(Reason::LowerPeerFirst("pod-0".into())),
        ),
        (
            "a lower name that is not set up yet does not hold anyone back",
            S::new("pod-1")
                .peer(
                    "pod-0",
                    Local::Up(LocalState {
                        setup: InstanceSetup::default(),
                        ag: None,
                    }),
                )
                .peer("pod-2", empty()),
            Action::AcquireLease,
        ),
        (
            "a peer whose SQL Server does not answer may have an AG: wait",
            S::new("pod-0")
                .peer("pod-1", Local::Unreachable)
                .peer("pod-2", empty()),
            Action::Wait(Reason::PeerUnknown("pod-1".into())),
        ),
        (
            "a peer that never answered: wait",
            S::new("pod-0").silent_peer("pod-1").peer("pod-2", empty()),
            Action::Wait(Reason::PeerUnknown("pod-1".into())),
        ),
        (
            "holding the Lease with every peer answering: create",
            fresh_cluster("pod-0").held(1, false),
            Action::CreateAg,
        ),
        (
            "holding the Lease, a peer went stale: keep the Lease, wait",
            S::new("pod-0")
                .held(1, false)
                .peer("pod-1", empty())
                .stale_peer("pod-2", empty()),
            Action::Wait(Reason::PeerUnknown("pod-2".into())),
        ),
        (
            "holding the Lease while waiting, renew when due",
            S::new("pod-0")
                .held(2, false)
                .peer("pod-1", empty())
                .stale_peer("pod-2", empty()),
            Action::RenewLease,
        ),
        (
            "holding the Lease, a peer reports an AG: never create, release",
            fresh_cluster("pod-0")
                .held(1, false)
                .with(|s| s.peers[1].state = Some(secondary(3, 10))),
            Action::StepDown(Reason::PeerHasAg("pod-2".into())),
        ),
        (
            "set-up comes before any AG work",
            S::new("pod-0").local(Local::Up(LocalState {
                setup: InstanceSetup {
                    hadr_enabled: true,
                    ..InstanceSetup::default()
                },
                ag: None,
            })),
            Action::SetupInstance,
        ),
        (
            "HADR off cannot be fixed with T-SQL",
            S::new("pod-0").local(Local::Up(LocalState {
                setup: InstanceSetup::default(),
                ag: None,
            })),
            Action::Wait(Reason::HadrDisabled),
        ),
        (
            "a single-replica database creates its AG alone",
            S::new("pod-0").held(1, false),
            Action::CreateAg,
        ),
    ]);
}

#[test]
fn lost_pod_0_volume_never_creates_a_second_ag() {
    let pod1_primary = up(Some(ag(Role::Primary, 9, &THREE, vec![synced(100)])));
    check(vec![
        (
            "pod-1 is primary and lists pod-0: join",
            S::new("pod-0")
                .lease("pod-1", 1, true)
                .peer("pod-1", pod1_primary.clone())
                .peer("pod-2", secondary(9, 100)),
            Action::JoinAg,
        ),
        (
            "the primary does not list us (yet): wait to be added",
            S::new("pod-0").lease("pod-1", 1, true).peer(
                "pod-1",
                up(Some(ag(Role::Primary, 9, &["pod-1", "pod-2"], vec![]))),
            ),
            Action::Wait(Reason::WaitingToBeAdded("pod-1".into())),
        ),
        (
            "Lease free but marked: wait, never take it to create",
            S::new("pod-0")
                .lease("", 0, true)
                .peer("pod-1", empty())
                .peer("pod-2", empty()),
            Action::Wait(Reason::AgAlreadyCreated),
        ),
        (
            "pod-0 restarted while the Lease still names it: release it",
            S::new("pod-0")
                .lease("pod-0", 1, true)
                .peer("pod-1", secondary(9, 100))
                .peer("pod-2", secondary(9, 100)),
            Action::StepDown(Reason::AgAlreadyCreated),
        ),
        (
            "the Lease object was deleted (no marker) but a peer has the AG: never create",
            S::new("pod-0")
                .peer("pod-1", secondary(9, 100))
                .peer("pod-2", empty()),
            Action::Wait(Reason::PeerHasAg("pod-1".into())),
        ),
        (
            "a stale label goes while waiting to join",
            S::new("pod-0")
                .label(RoleLabel::Secondary)
                .lease("pod-1", 1, true)
                .peer("pod-1", pod1_primary),
            Action::Label(None),
        ),
    ]);
}

#[test]
fn primary_housekeeping_one_step_at_a_time() {
    check(vec![
        (
            "all done: serve",
            serving_primary(),
            Action::Wait(Reason::Serving),
        ),
        (
            "just created: the marker first",
            serving_primary().held_ms(500, false),
            Action::MarkAgCreated,
        ),
        (
            "no label yet",
            serving_primary().with(|s| s.label = None),
            Action::Label(Some(RoleLabel::Primary)),
        ),
        (
            "grant after a restart of the agent",
            serving_primary().with(|s| s.memory.create_db_granted = false),
            Action::GrantCreateDatabase,
        ),
        (
            "a new, set-up peer without the AG is added",
            S::new("pod-0")
                .local(up(Some(ag(Role::Primary, 3, &["pod-0"], vec![]))))
                .held_ms(500, true)
                .granted()
                .label(RoleLabel::Primary)
                .peer("pod-1", empty()),
            Action::AddReplica("pod-1".into()),
        ),
        (
            "a peer that is not set up is not added yet",
            S::new("pod-0")
                .local(up(Some(ag(Role::Primary, 3, &["pod-0"], vec![]))))
                .held_ms(500, true)
                .granted()
                .label(RoleLabel::Primary)
                .peer(
                    "pod-1",
                    Local::Up(LocalState {
                        setup: InstanceSetup::default(),
                        ag: None,
                    }),
                ),
            Action::Wait(Reason::Serving),
        ),
        (
            "three replicas need one synchronized secondary to commit",
            serving_primary().with(|s| {
                if let Local::Up(LocalState { ag: Some(ag), .. }) = &mut s.local {
                    ag.required_synchronized_secondaries = 0;
                }
            }),
            Action::SetRequiredSynchronizedSecondaries(1),
        ),
        (
            "a wanted database is added",
            serving_primary().wanted("db1").wanted("sales"),
            Action::AddDatabase("sales".into()),
        ),
        (
            "suspended databases after a promotion are resumed",
            serving_primary().with(|s| {
                if let Local::Up(LocalState { ag: Some(ag), .. }) = &mut s.local {
                    ag.databases[0].suspended = true;
                }
            }),
            Action::ResumeDatabases,
        ),
    ]);
}

#[test]
fn lease_expiry_races_and_fencing() {
    check(vec![
        (
            "renew when the interval has passed",
            serving_primary().held(2, true),
            Action::RenewLease,
        ),
        (
            "just inside the renew deadline: still renew",
            serving_primary().held_ms(9_999, true),
            Action::RenewLease,
        ),
        (
            "at the renew deadline a primary demotes itself, though others must still wait 5 s",
            serving_primary().held(10, true),
            Action::Demote(Reason::RenewDeadlinePassed),
        ),
        (
            "demoted after the deadline: the primary label goes next",
            serving_primary().held(11, true).local(secondary(7, 100)),
            Action::Label(None),
        ),
        (
            "demoted and unlabelled: take the Lease back by renewing it, being eligible",
            serving_primary()
                .held(11, true)
                .local(secondary(7, 100))
                .with(|s| s.label = None),
            Action::RenewLease,
        ),
        (
            "SQL Server unreachable: no renewals, the label goes",
            serving_primary().local(Local::Unreachable),
            Action::Label(None),
        ),
        (
            "SQL Server unreachable and unlabelled, Lease still valid: wait, do not renew",
            serving_primary()
                .local(Local::Unreachable)
                .held(3, true)
                .with(|s| s.label = None),
            Action::Wait(Reason::SqlServerUnreachable),
        ),
        (
            "SQL Server unreachable past the renew deadline: release the Lease",
            serving_primary()
                .local(Local::Unreachable)
                .held(10, true)
                .with(|s| s.label = None),
            Action::StepDown(Reason::SqlServerUnreachable),
        ),
        (
            "the agent restarted while its instance is primary: renew the Lease naming it",
            serving_primary().with(|s| s.memory = Memory::default()),
            Action::RenewLease,
        ),
        (
            "a candidate judges expiry from when it saw the Lease change: not expired yet",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("pod-0", 14, true)
                .granted()
                .label(RoleLabel::Secondary)
                .silent_peer("pod-0")
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::Following("pod-0".into())),
        ),
        (
            "a candidate that just started sees the Lease as new: waits a full duration",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("pod-0", 0, true)
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::Following("pod-0".into())),
        ),
        (
            "at the duration the Lease is free in the candidate's view",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("pod-0", 15, true)
                .granted()
                .label(RoleLabel::Secondary)
                .silent_peer("pod-0")
                .peer("pod-2", secondary(7, 100)),
            Action::AcquireLease,
        ),
    ]);
}

#[test]
fn split_brain_and_stale_views() {
    check(vec![
        (
            "primary in SQL Server while another holds the Lease: demote, before the label",
            S::new("pod-1")
                .local(secondary(7, 100))
                .with(|s| s.local = primary(7))
                .lease("pod-0", 1, true)
                .label(RoleLabel::Primary)
                .peer("pod-0", primary(7)),
            Action::Demote(Reason::LeaseHeldBy("pod-0".into())),
        ),
        (
            "stale DMV after a restart reports PRIMARY, no label: demote all the same",
            S::new("pod-2").local(primary(7)).lease("pod-0", 1, true),
            Action::Demote(Reason::LeaseHeldBy("pod-0".into())),
        ),
        (
            "holder and primary, a peer also primary with the same sequence number: keep",
            serving_primary().with(|s| s.peers[0].state = Some(primary(7))),
            Action::Wait(Reason::Serving),
        ),
        (
            "holder and primary, a peer primary with a higher sequence number: demote",
            serving_primary().with(|s| s.peers[0].state = Some(primary(8))),
            Action::Demote(Reason::PeerAhead("pod-1".into())),
        ),
        (
            "a stale peer report with a higher sequence number does not count",
            serving_primary().with(|s| {
                s.peers[0].state = Some(primary(8));
                s.peers[0].age = Some(secs(7));
            }),
            Action::Wait(Reason::Serving),
        ),
        (
            "primary without any Lease and without quorum: demote",
            S::new("pod-0")
                .local(primary(7))
                .granted()
                .silent_peer("pod-1")
                .silent_peer("pod-2"),
            Action::Demote(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "primary without any Lease, with quorum: take it",
            S::new("pod-0")
                .local(primary(7))
                .granted()
                .peer("pod-1", secondary(7, 100))
                .silent_peer("pod-2"),
            Action::AcquireLease,
        ),
        (
            "two primaries, free Lease, same sequence number: the higher name demotes",
            S::new("pod-1")
                .local(primary(7))
                .peer("pod-0", primary(7))
                .peer("pod-2", secondary(7, 100)),
            Action::Demote(Reason::TieGoesTo("pod-0".into())),
        ),
        (
            "a secondary labelled primary: corrected first",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("pod-0", 1, true)
                .label(RoleLabel::Primary),
            Action::Label(Some(RoleLabel::Secondary)),
        ),
        (
            "a primary label with an expired Lease the holder still names: removed",
            serving_primary().held(12, true).local(secondary(7, 100)),
            Action::Label(None),
        ),
    ]);
}

#[test]
fn failover_promotes_only_the_most_advanced_synchronized_replica() {
    check(vec![
        (
            "more hardened log: pod-1 takes the Lease",
            orphan("pod-1")
                .local(secondary(7, 120))
                .peer("pod-2", secondary(7, 100)),
            Action::AcquireLease,
        ),
        (
            "less hardened log: pod-2 waits for pod-1",
            orphan("pod-2")
                .local(secondary(7, 100))
                .peer("pod-1", secondary(7, 120)),
            Action::Wait(Reason::PeerAhead("pod-1".into())),
        ),
        (
            "higher sequence number beats more log",
            orphan("pod-1")
                .local(secondary(7, 120))
                .peer("pod-2", secondary(8, 100)),
            Action::Wait(Reason::PeerAhead("pod-2".into())),
        ),
        (
            "equals: the lower name goes",
            orphan("pod-2")
                .local(secondary(7, 100))
                .peer("pod-1", secondary(7, 100)),
            Action::Wait(Reason::TieGoesTo("pod-1".into())),
        ),
        (
            "equals, but the Lease has been free longer than the yield window: try anyway",
            orphan("pod-2")
                .local(secondary(7, 100))
                .lease("pod-0", 22, true)
                .peer("pod-1", secondary(7, 100)),
            Action::AcquireLease,
        ),
        (
            "equals: a holder keeps what it won and promotes",
            orphan("pod-2")
                .local(secondary(7, 100))
                .held_ms(500, true)
                .with(|s| s.label = None)
                .peer("pod-1", secondary(7, 100)),
            Action::Promote,
        ),
        (
            "equals: the lower name takes the Lease",
            orphan("pod-1")
                .local(secondary(7, 100))
                .peer("pod-2", secondary(7, 100)),
            Action::AcquireLease,
        ),
        (
            "an equal peer that is not failover-ready does not go first",
            orphan("pod-2").local(secondary(7, 100)).peer(
                "pod-1",
                up(Some(ag(
                    Role::Secondary,
                    7,
                    &THREE,
                    vec![db("db1", SyncState::Synchronizing, false, 100)],
                ))),
            ),
            Action::AcquireLease,
        ),
        (
            "not failover-ready itself: no promotion",
            orphan("pod-1")
                .local(up(Some(ag(
                    Role::Secondary,
                    7,
                    &THREE,
                    vec![db("db1", SyncState::NotSynchronizing, false, 120)],
                ))))
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::NotFailoverReady("db1".into())),
        ),
        (
            "a reverting database is never a failover target",
            orphan("pod-1")
                .local(up(Some(ag(
                    Role::Secondary,
                    7,
                    &THREE,
                    vec![db("db1", SyncState::Reverting, true, 120)],
                ))))
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::NotFailoverReady("db1".into())),
        ),
        (
            "three replicas, one answer: no quorum (Pacemaker needs 3 − 1)",
            orphan("pod-1")
                .local(secondary(7, 120))
                .silent_peer("pod-2"),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "a stale answer is no answer, even one that looked behind",
            orphan("pod-1")
                .local(secondary(7, 120))
                .stale_peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "a stale answer that looked ahead does not block either (but quorum still does)",
            orphan("pod-1")
                .local(secondary(7, 100))
                .stale_peer("pod-2", secondary(9, 500)),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "a peer that reports itself primary with the same sequence number: wait for it",
            S::new("pod-1")
                .local(secondary(7, 100))
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-0", primary(7))
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::PeerIsPrimary("pod-0".into())),
        ),
        (
            "an old primary that was failed over (lower sequence number) does not block",
            S::new("pod-1")
                .local(secondary(8, 100))
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-0", primary(7))
                .peer("pod-2", secondary(8, 100)),
            Action::AcquireLease,
        ),
        (
            "holding the Lease as a secondary, still the best: promote",
            orphan("pod-1")
                .local(secondary(7, 120))
                .held_ms(500, true)
                .with(|s| s.label = None)
                .peer("pod-2", secondary(7, 100)),
            Action::Promote,
        ),
        (
            "holding the Lease, a peer turned out further ahead: release it",
            orphan("pod-1")
                .local(secondary(7, 100))
                .held_ms(500, true)
                .with(|s| s.label = None)
                .peer("pod-2", secondary(7, 120)),
            Action::StepDown(Reason::PeerAhead("pod-2".into())),
        ),
        (
            "holding the Lease as a secondary, renew due: renew before promoting",
            orphan("pod-1")
                .local(secondary(7, 120))
                .held(2, true)
                .with(|s| s.label = None)
                .peer("pod-2", secondary(7, 100)),
            Action::RenewLease,
        ),
    ]);
}

#[test]
fn even_replica_counts() {
    let two = ["pod-0", "pod-1"];
    let four = ["pod-0", "pod-1", "pod-2", "pod-3"];
    let sec = |replicas: &[&str], required: u32, lsn: u128| {
        let mut a = ag(Role::Secondary, 7, replicas, vec![synced(lsn)]);
        a.required_synchronized_secondaries = required;
        up(Some(a))
    };
    check(vec![
        (
            "two replicas, one must be synchronized to commit: the survivor alone may promote",
            orphan("pod-1").local(sec(&two, 1, 100)),
            Action::AcquireLease,
        ),
        (
            "two replicas with nothing required to commit: no automatic failover",
            orphan("pod-1").local(sec(&two, 0, 100)),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "four replicas, two required: two answers suffice",
            orphan("pod-1")
                .local(sec(&four, 2, 120))
                .peer("pod-2", sec(&four, 2, 100))
                .silent_peer("pod-3"),
            Action::AcquireLease,
        ),
        (
            "four replicas, two required: one answer does not",
            orphan("pod-1")
                .local(sec(&four, 2, 120))
                .silent_peer("pod-2")
                .silent_peer("pod-3"),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
        (
            "a pod outside the AG configuration does not count towards quorum",
            orphan("pod-1")
                .local(secondary(7, 120))
                .peer("pod-9", secondary(7, 100))
                .silent_peer("pod-2"),
            Action::Wait(Reason::NoQuorum {
                answered: 1,
                needed: 2,
            }),
        ),
    ]);
}

#[test]
fn secondaries() {
    let following = || {
        S::new("pod-1")
            .local(secondary(7, 100))
            .lease("pod-0", 1, true)
            .granted()
            .label(RoleLabel::Secondary)
            .peer("pod-0", primary(7))
    };
    check(vec![
        (
            "steady state",
            following(),
            Action::Wait(Reason::Following("pod-0".into())),
        ),
        (
            "unlabelled: label secondary",
            following().with(|s| s.label = None),
            Action::Label(Some(RoleLabel::Secondary)),
        ),
        (
            "grant after an agent restart",
            following().with(|s| s.memory.create_db_granted = false),
            Action::GrantCreateDatabase,
        ),
        (
            "RESOLVING while another holds the Lease: set the role to secondary",
            following().local(up(Some(ag(Role::Resolving, 7, &THREE, vec![synced(1)])))),
            Action::Demote(Reason::LeaseHeldBy("pod-0".into())),
        ),
        (
            "RESOLVING and labelled: the label goes (unsure) after the role is set",
            following()
                .local(up(Some(ag(Role::Resolving, 7, &THREE, vec![synced(1)]))))
                .with(|s| s.lease = None),
            Action::Label(None),
        ),
        (
            "suspended after a failover elsewhere: follow the new primary",
            following().with(|s| {
                if let Local::Up(LocalState { ag: Some(ag), .. }) = &mut s.local {
                    ag.databases[0].suspended = true;
                }
            }),
            Action::FollowNewPrimary,
        ),
    ]);
}

#[test]
fn lease_state_boundaries() {
    let at = |s: S| lease_state(&s.0);
    assert_eq!(at(S::new("pod-0")), LeaseState::Free);
    assert_eq!(at(S::new("pod-0").lease("", 0, true)), LeaseState::Free);
    assert_eq!(
        at(S::new("pod-0").lease("pod-0", 0, false)),
        LeaseState::MineUnconfirmed
    );
    assert_eq!(
        at(S::new("pod-0").held_ms(9_999, false)),
        LeaseState::MineValid
    );
    assert_eq!(at(S::new("pod-0").held(10, false)), LeaseState::MineLapsing);
    assert_eq!(
        at(S::new("pod-1").lease("pod-0", 14, false)),
        LeaseState::Other("pod-0".into())
    );
    assert_eq!(
        at(S::new("pod-1").lease("pod-0", 15, false)),
        LeaseState::Free
    );
}

#[test]
fn labels_need_the_lease_and_sql_server_to_agree() {
    use LeaseState::*;
    let other = || Other("pod-9".into());
    let rows: Vec<(Local, LeaseState, Option<RoleLabel>)> = vec![
        (primary(1), MineValid, Some(RoleLabel::Primary)),
        (primary(1), MineLapsing, None),
        (primary(1), MineUnconfirmed, Some(RoleLabel::Primary)),
        (primary(1), other(), None),
        (primary(1), Free, None),
        (secondary(1, 1), other(), Some(RoleLabel::Secondary)),
        (secondary(1, 1), Free, Some(RoleLabel::Secondary)),
        (secondary(1, 1), MineValid, None),
        (
            up(Some(ag(Role::Resolving, 1, &THREE, vec![]))),
            other(),
            None,
        ),
        (empty(), other(), None),
        (Local::Unreachable, MineValid, None),
    ];
    for (local, lease, want) in rows {
        assert_eq!(desired_label(&local, &lease), want, "{local:?} {lease:?}");
    }
}

#[test]
fn readiness_table() {
    use LeaseState::*;
    let offline_db = {
        let mut a = ag(Role::Primary, 1, &THREE, vec![synced(1)]);
        a.databases[0].online = false;
        up(Some(a))
    };
    let synchronizing = up(Some(ag(
        Role::Secondary,
        1,
        &THREE,
        vec![db("db1", SyncState::Synchronizing, false, 1)],
    )));
    let rows: Vec<(Local, LeaseState, Result<RoleLabel, &str>)> = vec![
        (primary(1), MineValid, Ok(RoleLabel::Primary)),
        (
            primary(1),
            other_holder(),
            Err("primary without a valid Lease"),
        ),
        (
            primary(1),
            MineLapsing,
            Err("primary without a valid Lease"),
        ),
        (offline_db, MineValid, Err("database db1 is not online")),
        (secondary(1, 1), other_holder(), Ok(RoleLabel::Secondary)),
        (
            synchronizing,
            other_holder(),
            Err("database db1 is Synchronizing"),
        ),
        (
            up(Some(ag(Role::Secondary, 1, &THREE, vec![]))),
            Free,
            Ok(RoleLabel::Secondary),
        ),
        (
            empty(),
            Free,
            Err("this instance is not in the availability group"),
        ),
        (
            Local::Unreachable,
            MineValid,
            Err("SQL Server does not answer on loopback"),
        ),
    ];
    for (local, lease, want) in rows {
        let got = readiness(&local, &lease);
        assert_eq!(
            got.as_ref().map_err(String::as_str),
            want.as_ref().map_err(|e| *e),
            "{local:?}"
        );
    }
}

fn other_holder() -> LeaseState {
    LeaseState::Other("pod-0".into())
}

#[test]
fn required_synchronized_secondaries_follows_pacemaker() {
    let rows = [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (7, 3)];
    for (replicas, want) in rows {
        assert_eq!(
            required_synchronized_secondaries(replicas),
            want,
            "{replicas}"
        );
    }
}

#[test]
fn action_kinds_are_listed() {
    let actions = [
        Action::SetupInstance,
        Action::CreateAg,
        Action::MarkAgCreated,
        Action::AddReplica(String::new()),
        Action::JoinAg,
        Action::GrantCreateDatabase,
        Action::AcquireLease,
        Action::RenewLease,
        Action::StepDown(Reason::Serving),
        Action::Promote,
        Action::Demote(Reason::Serving),
        Action::FollowNewPrimary,
        Action::ResumeDatabases,
        Action::SetRequiredSynchronizedSecondaries(0),
        Action::AddDatabase(String::new()),
        Action::Label(None),
        Action::Wait(Reason::Serving),
    ];
    let kinds: Vec<_> = actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, Action::KINDS);
}

#[test]
fn role_and_sync_codes_follow_the_dmv_documentation() {
    assert_eq!(Role::from_code(0), Some(Role::Resolving));
    assert_eq!(Role::from_code(1), Some(Role::Primary));
    assert_eq!(Role::from_code(2), Some(Role::Secondary));
    assert_eq!(Role::from_code(3), None);
    assert_eq!(SyncState::from_code(2), Some(SyncState::Synchronized));
    assert_eq!(SyncState::from_code(4), Some(SyncState::Initializing));
    assert_eq!(SyncState::from_code(5), None);
}

#[test]
fn a_stopping_agent_fences_then_frees_the_lease_and_drops_its_label() {
    use Action::{Demote, Label, StepDown};
    let stop = Reason::ShuttingDown;
    let rows: Vec<(&str, S, Vec<Action>)> = vec![
        (
            "primary holding the Lease: fence first, then free it, then the label",
            S::new("pod-0")
                .local(primary(3))
                .held(1, true)
                .label(RoleLabel::Primary),
            vec![Demote(stop.clone()), StepDown(stop.clone()), Label(None)],
        ),
        (
            "a holder whose SQL Server is already gone only frees the Lease",
            S::new("pod-0")
                .local(Local::Unreachable)
                .held(1, true)
                .label(RoleLabel::Primary),
            vec![StepDown(stop.clone()), Label(None)],
        ),
        (
            "a lapsing holder still frees what it holds by the record",
            S::new("pod-0").local(primary(3)).held(30, true),
            vec![Demote(stop.clone()), StepDown(stop.clone())],
        ),
        (
            "a secondary never touches another agent's Lease",
            S::new("pod-1")
                .local(secondary(3, 100))
                .lease("pod-0", 1, true)
                .label(RoleLabel::Secondary),
            vec![Label(None)],
        ),
        (
            "nothing held and no label: nothing to do",
            S::new("pod-2")
                .local(secondary(3, 100))
                .lease("pod-0", 1, true),
            vec![],
        ),
    ];
    for (name, s, want) in rows {
        assert_eq!(shutdown(&s.0), want, "{name}");
    }
}

impl S {
    /// A handover away from `from` in force for `remaining` more seconds (0: lapsed).
    fn handover(mut self, from: &str, remaining: u64) -> Self {
        if let Some(lease) = &mut self.0.lease {
            lease.handover = Some(Handover {
                from: from.into(),
                until: NOW + secs(remaining),
            });
        }
        self
    }
}

#[test]
fn planned_handover() {
    let lagging = up(Some(ag(
        Role::Secondary,
        7,
        &THREE,
        vec![db("db1", SyncState::Synchronizing, true, 90)],
    )));
    // pod-0 after it demoted itself for the handover: still the holder, now a secondary.
    let demoted = || {
        S::new("pod-0")
            .local(secondary(7, 100))
            .held_ms(500, true)
            .granted()
            .label(RoleLabel::Secondary)
            .peer("pod-1", secondary(7, 100))
            .peer("pod-2", secondary(7, 100))
    };
    check(vec![
        (
            "the primary hands over to a synchronized secondary",
            serving_primary().handover("pod-0", 20),
            Action::Demote(Reason::HandOverTo("pod-1".into())),
        ),
        (
            "it skips a secondary that is not synchronized",
            serving_primary()
                .with(|s| s.peers.retain(|p| p.name != "pod-1"))
                .peer("pod-1", lagging.clone())
                .handover("pod-0", 20),
            Action::Demote(Reason::HandOverTo("pod-2".into())),
        ),
        (
            "without a synchronized secondary it keeps serving",
            serving_primary()
                .with(|s| s.peers.clear())
                .peer("pod-1", lagging.clone())
                .peer("pod-2", lagging.clone())
                .handover("pod-0", 20),
            decide(
                &serving_primary()
                    .with(|s| s.peers.clear())
                    .peer("pod-1", lagging.clone())
                    .peer("pod-2", lagging.clone())
                    .0,
            ),
        ),
        (
            "a handover away from another replica changes nothing for the primary",
            serving_primary().handover("pod-2", 20),
            decide(&serving_primary().0),
        ),
        (
            "a lapsed handover changes nothing",
            serving_primary().handover("pod-0", 0),
            decide(&serving_primary().0),
        ),
        (
            "once demoted, the holder frees the Lease",
            demoted().handover("pod-0", 20),
            Action::StepDown(Reason::HandingOver),
        ),
        (
            "the departing replica does not take a free Lease",
            S::new("pod-0")
                .local(secondary(7, 100))
                .lease("", 0, true)
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-1", secondary(7, 100))
                .peer("pod-2", secondary(7, 100))
                .handover("pod-0", 20),
            Action::Wait(Reason::HandingOver),
        ),
        (
            "nobody yields a tie to the departing replica",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("", 0, true)
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-0", secondary(7, 100))
                .peer("pod-2", secondary(7, 100))
                .handover("pod-0", 20),
            Action::AcquireLease,
        ),
        (
            "without the handover pod-1 would leave the tie to pod-0",
            S::new("pod-1")
                .local(secondary(7, 100))
                .lease("", 0, true)
                .granted()
                .label(RoleLabel::Secondary)
                .peer("pod-0", secondary(7, 100))
                .peer("pod-2", secondary(7, 100)),
            Action::Wait(Reason::TieGoesTo("pod-0".into())),
        ),
    ]);
}

#[test]
fn handover_annotations_become_monotonic_deadlines() {
    let wall: k8s_openapi::jiff::Timestamp = "2026-12-06T05:00:00Z".parse().unwrap();
    let later: k8s_openapi::jiff::Timestamp = "2026-12-06T05:00:30Z".parse().unwrap();
    assert_eq!(
        handover_view("pod-0", later, NOW, wall),
        Some(Handover {
            from: "pod-0".into(),
            until: NOW + secs(30)
        })
    );
    assert_eq!(
        handover_view("pod-0", wall, NOW, wall),
        None,
        "lapses at until"
    );
    assert_eq!(
        handover_view("pod-0", wall, NOW, later),
        None,
        "already past"
    );
}

#[test]
fn a_report_with_25_digit_lsns_survives_the_trip_to_a_peer() {
    let mut big = synced(0);
    big.hardened_lsn = Some(9_999_999_999_999_999_999_999_999);
    let mut null = synced(0);
    null.name = "db2".into();
    null.hardened_lsn = None;
    let local = up(Some(ag(Role::Secondary, 7, &THREE, vec![big, null])));
    let json = serde_json::to_string(&local).unwrap();
    assert!(
        json.contains(r#""hardened_lsn":"9999999999999999999999999""#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Local>(&json).unwrap(), local);
}
