//! The SingleStore backend (`sdb::backend::MysqlBackend`, mysql_async) over real sockets,
//! against kube-sim's simulated SingleStore nodes (its MySQL-protocol server and the node state
//! behind it), one listener per node on loopback.

use std::time::Duration;

use db_agent::sdb::backend::{MysqlBackend, SdbBackend, SdbError, Target};
use db_agent::sdb::decide::{NodeKind, Standing};
use db_agent::sdb::sql;
use kube_sim::db::singlestore::server::{Nodes, serve_node};
use kube_sim::db::singlestore::{Kind, Node, NodeId};

const NS: &str = "demo";

fn id(pod: &str) -> NodeId {
    NodeId {
        namespace: NS.into(),
        pod: pod.into(),
    }
}

fn host(pod: &str) -> String {
    format!("{pod}.sdb-pods.{NS}.svc")
}

/// Nodes `sdb-aggregator-0` and `sdb-leaf-0` (root password `pw`), each served on its own port.
async fn cluster() -> (Nodes, Vec<(String, u16)>) {
    let nodes = Nodes::default();
    let mut ports = Vec::new();
    for (pod, kind) in [
        ("sdb-aggregator-0", Kind::Aggregator),
        ("sdb-leaf-0", Kind::Leaf),
    ] {
        let mut node = Node::new(kind, "root", "pw", "8.7.10");
        node.service = "sdb-pods".into();
        node.ip = "127.0.0.1".into();
        nodes.world().nodes.insert(id(pod), node);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push((pod.to_owned(), listener.local_addr().unwrap().port()));
        tokio::spawn(serve_node(listener, nodes.clone(), id(pod)));
    }
    (nodes, ports)
}

fn backend(port: u16, password: &str) -> MysqlBackend {
    MysqlBackend::new(Target {
        host: "127.0.0.1".into(),
        port,
        username: "root".into(),
        password: password.into(),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn bootstrap_register_and_observe_over_the_wire() {
    let (nodes, ports) = cluster().await;
    let mut master = backend(ports[0].1, "pw");
    let mut leaf = backend(ports[1].1, "pw");

    // A fresh aggregator: no cluster; a fresh leaf: no partitions.
    let fresh = master.observe(NodeKind::Aggregator).await.unwrap();
    assert_eq!(fresh.version, "8.7.10");
    assert_eq!(
        fresh.standing(NodeKind::Aggregator, &host("sdb-aggregator-0")),
        Standing::Fresh
    );
    assert!(
        leaf.observe(NodeKind::Leaf)
            .await
            .unwrap()
            .databases
            .is_empty()
    );

    // Bootstrapping needs a license; the refusal is a statement refusal, not a login one.
    match master
        .execute(&sql::bootstrap(&host("sdb-aggregator-0")))
        .await
    {
        Err(SdbError::Refused { .. }) => {}
        other => panic!("bootstrap without a license: {other:?}"),
    }
    master
        .execute(&sql::set_license("bGljZW5zZQ=="))
        .await
        .unwrap();
    master
        .execute(&sql::bootstrap(&host("sdb-aggregator-0")))
        .await
        .unwrap();
    // The target's password is checked by the master: 1045 there is a refused statement.
    match master
        .execute(&sql::add_leaf("root", "wrong", &host("sdb-leaf-0")))
        .await
    {
        Err(SdbError::Refused { code: 1045, .. }) => {}
        other => panic!("ADD LEAF with a wrong password: {other:?}"),
    }
    master
        .execute(&sql::add_leaf("root", "pw", &host("sdb-leaf-0")))
        .await
        .unwrap();
    master.execute("CREATE DATABASE app").await.unwrap();

    let state = master.observe(NodeKind::Aggregator).await.unwrap();
    assert_eq!(
        state.standing(NodeKind::Aggregator, &host("sdb-aggregator-0")),
        Standing::Master
    );
    assert_eq!(state.leaves.len(), 1);
    assert_eq!(state.leaves[0].host, host("sdb-leaf-0"));
    assert!(state.leaves[0].online);
    assert!(state.position().is_some(), "{:?}", state.databases);
    let on_leaf = leaf.observe(NodeKind::Leaf).await.unwrap();
    assert!(
        on_leaf.databases.iter().any(|d| d.name.starts_with("app_")),
        "{:?}",
        on_leaf.databases
    );

    // A restarted leaf: its partitions recover until the simulation settles them.
    nodes
        .world()
        .nodes
        .get_mut(&id("sdb-leaf-0"))
        .unwrap()
        .restart("8.7.10");
    let restarted = leaf.observe(NodeKind::Leaf).await.unwrap();
    assert!(restarted.lagging().is_some(), "{:?}", restarted.databases);
    nodes.world().settle();
    assert_eq!(leaf.observe(NodeKind::Leaf).await.unwrap().lagging(), None);
}

#[tokio::test]
async fn a_refused_login_and_a_closed_port_are_told_apart() {
    let (_nodes, ports) = cluster().await;
    match backend(ports[0].1, "wrong")
        .observe(NodeKind::Aggregator)
        .await
    {
        Err(SdbError::LoginRefused {
            code: 1045,
            message,
        }) => {
            assert!(message.contains("Access denied"), "{message}");
        }
        other => panic!("wrong password: {other:?}"),
    }
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    match backend(port, "pw").observe(NodeKind::Aggregator).await {
        Err(SdbError::Unreachable(_)) => {}
        other => panic!("closed port: {other:?}"),
    }
}

/// Against a real MySQL-protocol server (MariaDB, which `.ci/run` installs): the agent's login
/// and its reading of refusals. MariaDB has no SingleStore variables, so the observation is
/// refused after a successful login; a wrong password is a refused login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_refusals_against_mariadb() {
    use mysql_async::prelude::Queryable;
    let pki = testkit::mariadb::test_pki();
    let mut server = testkit::mariadb::MariaDb::start(&pki);
    server.wait_ready().await;
    let mut admin = server.admin().await;
    admin
        .query_drop("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY 'Ag3nt-pw'")
        .await
        .unwrap();
    match backend(server.port, "Ag3nt-pw")
        .observe(NodeKind::Leaf)
        .await
    {
        // ER_UNKNOWN_SYSTEM_VARIABLE: logged in, the statement refused.
        Err(SdbError::Refused {
            code: 1193,
            message,
        }) => {
            assert!(message.contains("memsql_version"), "{message}");
        }
        other => panic!("a login to MariaDB and SELECT @@memsql_version: {other:?}"),
    }
    let mut agent = backend(server.port, "Ag3nt-pw");
    agent.execute("CREATE DATABASE agent_probe").await.unwrap();
    match agent.execute("CREATE DATABASE agent_probe").await {
        Err(SdbError::Refused { code: 1007, .. }) => {}
        other => panic!("a second CREATE DATABASE: {other:?}"),
    }
    match backend(server.port, "wrong").observe(NodeKind::Leaf).await {
        Err(SdbError::LoginRefused { code: 1045, .. }) => {}
        other => panic!("a wrong password: {other:?}"),
    }
    server.stop();
    match agent.observe(NodeKind::Leaf).await {
        Err(SdbError::Unreachable(_)) => {}
        other => panic!("a stopped server: {other:?}"),
    }
}
