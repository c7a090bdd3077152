use std::time::Duration;

use super::*;
use crate::sdb::sql::{Aggregator, Database, Leaf, Position};

const S: fn(u64) -> Duration = Duration::from_secs;

fn host(pod: &str) -> String {
    format!("{pod}.sdb-pods.demo.svc")
}

fn agg(pod: &str, online: bool, master: bool) -> Aggregator {
    Aggregator {
        host: host(pod),
        online,
        master,
    }
}

fn cluster_db(position: u64) -> Database {
    Database {
        name: "cluster".into(),
        role: "master".into(),
        state: "online".into(),
        position: Some(Position(0, position)),
    }
}

/// A node whose `SHOW AGGREGATORS` lists `aggs` (pod, online, master), at `position`.
fn node(aggs: &[(&str, bool, bool)], leaves: &[&str], position: u64) -> NodeState {
    NodeState {
        version: "8.7.10".into(),
        aggregators: aggs.iter().map(|(p, o, m)| agg(p, *o, *m)).collect(),
        leaves: leaves
            .iter()
            .map(|l| Leaf {
                host: host(l),
                online: true,
            })
            .collect(),
        databases: if aggs.is_empty() {
            Vec::new()
        } else {
            vec![cluster_db(position)]
        },
    }
}

fn fresh_node() -> NodeState {
    node(&[], &[], 0)
}

fn peer(name: &str, kind: NodeKind, state: Option<NodeState>) -> Peer {
    Peer {
        name: name.into(),
        host: host(name),
        kind,
        report: state.map(|n| (Local::Up(n), S(0))),
    }
}

fn timing() -> Timing {
    Timing {
        renew_interval: S(2),
        renew_deadline: S(6),
        peer_stale_after: S(3),
        master_lost_after: S(30),
    }
}

fn snapshot(me: &str, kind: NodeKind, local: Local) -> Snapshot {
    Snapshot {
        me: me.into(),
        host: host(me),
        kind,
        now: S(100),
        timing: timing(),
        local,
        lease: None,
        peers: Vec::new(),
        label: None,
        memory: Memory::default(),
    }
}

fn lease(holder: Option<&str>, observed_at: u64, bootstrapped: bool) -> Option<LeaseView> {
    Some(LeaseView {
        holder: holder.map(str::to_owned),
        observed_at: S(observed_at),
        duration: S(10),
        bootstrapped,
        handover: None,
    })
}

/// The master aggregator a-0 with child a-1 and leaves.
fn master_view(leaves: &[&str]) -> NodeState {
    node(&[("a-0", true, true), ("a-1", true, false)], leaves, 7)
}

fn holding(mut s: Snapshot) -> Snapshot {
    s.lease = lease(Some(&s.me.clone()), 99, true);
    s.memory.last_renew = Some(S(99));
    s
}

#[test]
fn bootstrap_happens_once_by_the_first_aggregator_after_every_peer_answered() {
    let a0 = |peers: Vec<Peer>| {
        let mut s = snapshot("a-0", NodeKind::Aggregator, Local::Up(fresh_node()));
        s.peers = peers;
        s
    };
    let fresh_a1 = || peer("a-1", NodeKind::Aggregator, Some(fresh_node()));
    // A silent aggregator peer might already be in a cluster.
    let silent = a0(vec![peer("a-1", NodeKind::Aggregator, None)]);
    assert_eq!(
        decide(&silent),
        Action::Wait(Reason::PeersUnknown("a-1".into()))
    );
    // Leaves do not count for that.
    let s = a0(vec![fresh_a1(), peer("l-0", NodeKind::Leaf, None)]);
    assert_eq!(decide(&s), Action::AcquireLease);
    // Only the lowest name goes first.
    let mut a1 = snapshot("a-1", NodeKind::Aggregator, Local::Up(fresh_node()));
    a1.peers = vec![peer("a-0", NodeKind::Aggregator, Some(fresh_node()))];
    assert_eq!(
        decide(&a1),
        Action::Wait(Reason::OtherCandidate("a-0".into()))
    );
    // The holder sets the license, then bootstraps.
    let mut s = a0(vec![fresh_a1()]);
    s.lease = lease(Some("a-0"), 99, false);
    s.memory.last_renew = Some(S(99));
    assert_eq!(decide(&s), Action::SetLicense);
    s.memory.license_set = true;
    assert_eq!(decide(&s), Action::Bootstrap);
}

#[test]
fn a_lost_volume_never_bootstraps_a_second_cluster() {
    // The marker says a cluster was bootstrapped: the empty node gives the Lease back.
    let mut s = snapshot("a-0", NodeKind::Aggregator, Local::Up(fresh_node()));
    s.lease = lease(Some("a-0"), 99, true);
    s.memory.last_renew = Some(S(99));
    assert_eq!(decide(&s), Action::ReleaseLease(Reason::AwaitingAdd));
    // Without the marker (Lease deleted), a peer in a cluster says the same.
    let mut s = snapshot("a-0", NodeKind::Aggregator, Local::Up(fresh_node()));
    s.peers = vec![peer(
        "a-1",
        NodeKind::Aggregator,
        Some(node(&[("a-1", true, true)], &[], 3)),
    )];
    assert_eq!(decide(&s), Action::Wait(Reason::AwaitingAdd));
}

#[test]
fn the_master_takes_the_lease_renews_labels_marks_and_registers() {
    let a1_child = || {
        peer(
            "a-1",
            NodeKind::Aggregator,
            Some(node(&[("a-0", true, true), ("a-1", true, false)], &[], 7)),
        )
    };
    let mut s = snapshot(
        "a-0",
        NodeKind::Aggregator,
        Local::Up(master_view(&["l-0"])),
    );
    s.peers = vec![
        a1_child(),
        peer("l-0", NodeKind::Leaf, Some(fresh_node())),
        peer("l-1", NodeKind::Leaf, Some(fresh_node())),
        peer("l-2", NodeKind::Leaf, None),
        peer("a-2", NodeKind::Aggregator, Some(fresh_node())),
    ];
    assert_eq!(decide(&s), Action::AcquireLease, "free Lease");
    s.lease = lease(Some("a-0"), 99, false);
    assert_eq!(
        decide(&s),
        Action::AcquireLease,
        "unconfirmed after a restart"
    );
    s.memory.last_renew = Some(S(97));
    assert_eq!(decide(&s), Action::RenewLease, "renew due");
    s.memory.last_renew = Some(S(99));
    assert_eq!(decide(&s), Action::Label(Some(RoleLabel::Master)));
    s.label = Some(RoleLabel::Master);
    assert_eq!(decide(&s), Action::MarkBootstrapped);
    s.lease = lease(Some("a-0"), 99, true);
    // Peers in name order: a-1 is listed, a-2 is fresh, l-0 is listed, l-1 is not, l-2 silent.
    assert_eq!(decide(&s), Action::AddAggregator(host("a-2")));
    s.peers.retain(|p| p.name != "a-2");
    assert_eq!(decide(&s), Action::AddLeaf(host("l-1")));
    s.peers.retain(|p| p.name != "l-1");
    assert_eq!(decide(&s), Action::Wait(Reason::Converged));
    assert_eq!(readiness(&s, &lease_state(&s)), Ok("Master"));
}

#[test]
fn a_planned_handover_promotes_a_caught_up_child_then_gives_the_lease_away() {
    let mut s = holding(snapshot(
        "a-0",
        NodeKind::Aggregator,
        Local::Up(master_view(&[])),
    ));
    s.label = Some(RoleLabel::Master);
    s.lease.as_mut().unwrap().handover = Some(Handover {
        from: "a-0".into(),
        until: S(130),
    });
    // a-1 lags behind the master's position: no successor.
    s.peers = vec![peer(
        "a-1",
        NodeKind::Aggregator,
        Some(node(&[("a-0", true, true), ("a-1", true, false)], &[], 6)),
    )];
    assert_eq!(decide(&s), Action::Wait(Reason::NoSuccessor));
    s.peers = vec![peer(
        "a-1",
        NodeKind::Aggregator,
        Some(node(&[("a-0", true, true), ("a-1", true, false)], &[], 7)),
    )];
    assert_eq!(decide(&s), Action::Promote(host("a-1")));
    // After PROMOTE this node is a child: the Master label goes first, then the Lease.
    s.local = Local::Up(node(&[("a-0", true, false), ("a-1", true, true)], &[], 8));
    assert_eq!(decide(&s), Action::Label(Some(RoleLabel::Aggregator)));
    s.label = Some(RoleLabel::Aggregator);
    assert_eq!(decide(&s), Action::ReleaseLease(Reason::MasterOnline));
    // The new master waits while a-0 still holds it, then takes it.
    let mut n = snapshot(
        "a-1",
        NodeKind::Aggregator,
        Local::Up(node(&[("a-0", true, false), ("a-1", true, true)], &[], 8)),
    );
    n.lease = lease(Some("a-0"), 99, true);
    n.peers = vec![peer(
        "a-0",
        NodeKind::Aggregator,
        Some(node(&[("a-0", true, false), ("a-1", true, true)], &[], 8)),
    )];
    assert_eq!(decide(&n), Action::Wait(Reason::LeaseHeld("a-0".into())));
    n.lease = lease(None, 100, true);
    assert_eq!(decide(&n), Action::AcquireLease);
}

#[test]
fn a_lost_master_is_replaced_by_the_most_advanced_child_after_the_grace() {
    let view = |position| {
        node(
            &[
                ("a-0", false, true),
                ("a-1", true, false),
                ("a-2", true, false),
            ],
            &[],
            position,
        )
    };
    let mut s = snapshot("a-1", NodeKind::Aggregator, Local::Up(view(7)));
    s.label = Some(RoleLabel::Aggregator);
    // Held by a-0, observed 5 s ago: not expired.
    s.lease = lease(Some("a-0"), 95, true);
    assert_eq!(decide(&s), Action::Wait(Reason::LeaseHeld("a-0".into())));
    // Expired at 105; the grace runs from then.
    s.now = S(120);
    assert_eq!(decide(&s), Action::Wait(Reason::MasterMissing));
    s.now = S(135);
    s.peers = vec![peer("a-2", NodeKind::Aggregator, Some(view(8)))];
    assert_eq!(
        decide(&s),
        Action::Wait(Reason::OtherCandidate("a-2".into()))
    );
    // Equal positions: the lower name.
    s.peers = vec![peer("a-2", NodeKind::Aggregator, Some(view(7)))];
    assert_eq!(decide(&s), Action::AcquireLease);
    // A master that came back online in the meantime keeps its role.
    let mut back = s.clone();
    back.local = Local::Up(node(&[("a-0", true, true), ("a-1", true, false)], &[], 7));
    assert_eq!(decide(&back), Action::Wait(Reason::MasterOnline));
    // Holding the Lease with the master offline: take over.
    s.lease = lease(Some("a-1"), 135, true);
    s.memory.last_renew = Some(S(135));
    assert_eq!(decide(&s), Action::SetAsMaster);
}

#[test]
fn a_replaced_master_that_returns_is_neither_labelled_nor_ready() {
    let mut s = snapshot(
        "a-0",
        NodeKind::Aggregator,
        Local::Up(node(&[("a-0", true, true), ("a-1", true, false)], &[], 5)),
    );
    s.label = Some(RoleLabel::Master);
    s.lease = lease(Some("a-1"), 99, true);
    s.peers = vec![peer(
        "a-1",
        NodeKind::Aggregator,
        Some(node(&[("a-1", true, true)], &[], 9)),
    )];
    assert_eq!(
        decide(&s),
        Action::Label(None),
        "the stale Master label goes first"
    );
    s.label = None;
    assert_eq!(
        decide(&s),
        Action::Wait(Reason::ReplacedMaster("a-1".into()))
    );
    assert!(readiness(&s, &lease_state(&s)).is_err());
}

#[test]
fn leaves_label_themselves_and_are_ready_only_with_every_partition_caught_up() {
    let mut leaf = fresh_node();
    leaf.databases = vec![Database {
        name: "app_0".into(),
        role: "master".into(),
        state: "recovering".into(),
        position: None,
    }];
    let mut s = snapshot("l-0", NodeKind::Leaf, Local::Up(leaf.clone()));
    assert_eq!(decide(&s), Action::Label(Some(RoleLabel::Leaf)));
    s.label = Some(RoleLabel::Leaf);
    assert_eq!(decide(&s), Action::Wait(Reason::Converged));
    assert_eq!(
        readiness(&s, &lease_state(&s)),
        Err("database app_0 is recovering (not caught up)".into())
    );
    leaf.databases[0].state = "online".into();
    s.local = Local::Up(leaf);
    assert_eq!(readiness(&s, &lease_state(&s)), Ok("Leaf"));
    // A master that answers without this leaf in its list: not added yet, not ready.
    s.peers = vec![peer(
        "a-0",
        NodeKind::Aggregator,
        Some(node(&[("a-0", true, true)], &[], 3)),
    )];
    assert_eq!(
        readiness(&s, &lease_state(&s)),
        Err("waiting for the master aggregator to add this leaf".into())
    );
    s.peers = vec![peer(
        "a-0",
        NodeKind::Aggregator,
        Some(node(&[("a-0", true, true)], &["l-0"], 4)),
    )];
    assert_eq!(readiness(&s, &lease_state(&s)), Ok("Leaf"));
    s.local = Local::Unreachable;
    assert_eq!(decide(&s), Action::Label(None));
}

#[test]
fn an_unreachable_holder_lets_the_lease_lapse() {
    let mut s = holding(snapshot("a-0", NodeKind::Aggregator, Local::Unreachable));
    assert_eq!(decide(&s), Action::Wait(Reason::Unreachable));
    s.now = S(110);
    assert_eq!(decide(&s), Action::ReleaseLease(Reason::RenewDeadline));
}

#[test]
fn label_values_are_kubedbs() {
    for (label, text) in [
        (RoleLabel::Master, "Master"),
        (RoleLabel::Aggregator, "Aggregator"),
        (RoleLabel::Leaf, "Leaf"),
    ] {
        assert_eq!(label.as_str(), text);
        assert_eq!(RoleLabel::parse(text), Some(label));
    }
    assert_eq!(RoleLabel::parse("master"), None);
}
