use super::sql::{Statement, parse};
use super::*;

fn id(pod: &str) -> NodeId {
    NodeId {
        namespace: "demo".into(),
        pod: pod.into(),
    }
}

fn host(pod: &str) -> String {
    format!("{pod}.sdb-pods.demo.svc")
}

const LICENSE: &str = "BDRmNjYwNzE0YjY0NDQ3ZDk4MjA3NDMwYWQ1ZGI3ZjQAAAAAAAAAAAQAAAAAAAAADCwCDQ==";

/// Running nodes `ag` (aggregators) and `leaves` of service `sdb-pods` in `demo`, password `pw`.
fn world(ag: &[&str], leaves: &[&str]) -> World {
    let mut w = World::default();
    for (pods, kind) in [(ag, Kind::Aggregator), (leaves, Kind::Leaf)] {
        for p in pods {
            let mut n = Node::new(kind, "root", "pw", "8.7.10");
            n.service = "sdb-pods".into();
            n.ip = "127.0.0.9".into();
            w.nodes.insert(id(p), n);
        }
    }
    w
}

fn run(w: &mut World, pod: &str, sql: &str) -> Result<Answer, ServerError> {
    let statement = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    w.execute(&id(pod), statement)
}

fn ok(w: &mut World, pod: &str, sql: &str) {
    run(w, pod, sql).unwrap_or_else(|e| panic!("{pod}: {sql}: {e:?}"));
}

fn code(w: &mut World, pod: &str, sql: &str) -> u16 {
    match run(w, pod, sql) {
        Err(e) => e.code,
        Ok(a) => panic!("{pod}: {sql} was accepted: {a:?}"),
    }
}

/// The rows of a query, cells as text (`NULL` for NULL).
fn query(w: &mut World, pod: &str, sql: &str) -> Vec<Vec<String>> {
    match run(w, pod, sql).unwrap_or_else(|e| panic!("{pod}: {sql}: {e:?}")) {
        Answer::Rows(_, rows) => rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Value::Null => "NULL".to_owned(),
                        Value::Int(i) => i.to_string(),
                        Value::Text(s) => s,
                    })
                    .collect()
            })
            .collect(),
        Answer::Done(_) => panic!("{sql}: no rows"),
    }
}

fn columns(w: &mut World, pod: &str, sql: &str) -> Vec<String> {
    match run(w, pod, sql).unwrap() {
        Answer::Rows(columns, _) => columns,
        Answer::Done(_) => panic!("{sql}: no rows"),
    }
}

fn add(kind: &str, pod: &str, password: &str) -> String {
    format!("ADD {kind} root:'{password}'@'{}':3306", host(pod))
}

/// The `cluster` row's position on `pod`.
fn position(w: &mut World, pod: &str) -> String {
    query(w, pod, "SHOW DATABASES EXTENDED")
        .into_iter()
        .find(|r| r[0] == "cluster")
        .map(|r| r[4].clone())
        .unwrap_or_default()
}

/// A cluster: `ag[0]` master, the other aggregators children, every leaf added, settled.
fn cluster(ag: &[&str], leaves: &[&str]) -> World {
    let mut w = world(ag, leaves);
    ok(&mut w, ag[0], &format!("SET LICENSE = '{LICENSE}'"));
    ok(
        &mut w,
        ag[0],
        &format!("BOOTSTRAP AGGREGATOR '{}'", host(ag[0])),
    );
    for l in leaves {
        ok(&mut w, ag[0], &add("LEAF", l, "pw"));
    }
    for a in &ag[1..] {
        ok(&mut w, ag[0], &add("AGGREGATOR", a, "pw"));
    }
    w.settle();
    w
}

/// Host → (State, Master_Aggregator) of `SHOW AGGREGATORS` on `pod`.
fn aggregators(w: &mut World, pod: &str) -> Vec<(String, String, String)> {
    query(w, pod, "SHOW AGGREGATORS")
        .into_iter()
        .map(|r| (r[0].clone(), r[2].clone(), r[5].clone()))
        .collect()
}

fn partitions(w: &World, pod: &str) -> Vec<(String, PartitionState)> {
    w.nodes[&id(pod)]
        .partitions
        .iter()
        .map(|(n, s)| (n.clone(), *s))
        .collect()
}

#[test]
fn statements_parse_by_their_documented_shape() {
    let accepted = [
        "SELECT 1",
        "select @@memsql_version;",
        "SELECT @@max_allowed_packet,@@wait_timeout,@@socket",
        "SELECT @@session.wait_timeout AS t, NULL, 'x'",
        "SHOW VARIABLES LIKE 'memsql_version'",
        "SHOW GLOBAL VARIABLES",
        "SHOW AGGREGATORS",
        "show leaves",
        "SHOW DATABASES EXTENDED",
        "SET NAMES utf8mb4",
        "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'",
        "SET autocommit = 1, SESSION sql_mode = 'ANSI'",
        "SET @@session.time_zone = '+00:00'",
        "SET LICENSE = 'abc='",
        "BOOTSTRAP AGGREGATOR 'sdb-aggregator-0.sdb-pods.demo.svc'",
        "ADD LEAF root:'p''w'@'sdb-leaf-0.sdb-pods.demo.svc':3306",
        "ADD LEAF root@'sdb-leaf-0.sdb-pods.demo.svc':3306",
        "add aggregator root:'pw'@'sdb-aggregator-1.sdb-pods.demo.svc':3306;",
        "REMOVE LEAF 'sdb-leaf-0.sdb-pods.demo.svc':3306",
        "REMOVE AGGREGATOR 'sdb-aggregator-1.sdb-pods.demo.svc':3306",
        "PROMOTE AGGREGATOR 'sdb-aggregator-1.sdb-pods.demo.svc':3306 TO MASTER",
        "AGGREGATOR SET AS MASTER",
        "CREATE DATABASE sales",
        "CREATE DATABASE IF NOT EXISTS `kubedb_system`",
        "CREATE TABLE IF NOT EXISTS `kubedb_system`.`kv` (`prop_key` VARCHAR(128) NOT NULL, `prop_value` VARCHAR(256) NOT NULL, PRIMARY KEY (`prop_key`))",
        "INSERT INTO `kubedb_system`.`kv` (`prop_key`, `prop_value`) VALUES ('health_check', 'a''b\\\\c') ON DUPLICATE KEY UPDATE `prop_value` = VALUES(`prop_value`)",
        "SELECT `prop_value` FROM `kubedb_system`.`kv` WHERE `prop_key` = 'health_check'",
    ];
    for sql in accepted {
        assert!(parse(sql).is_ok(), "{sql}: {:?}", parse(sql));
    }
    let refused = [
        "",
        "DROP DATABASE sales",
        "SHOW DATABASES",
        "SET GLOBAL leaf_failure_detection = OFF",
        "SET LICENSE 'abc'",
        "BOOTSTRAP AGGREGATOR sdb-aggregator-0",
        "ADD LEAF root:'pw'@'sdb-leaf-0.sdb-pods.demo.svc'",
        "ADD LEAF root:'pw'@'sdb-leaf-0.sdb-pods.demo.svc':99999",
        "ADD NODE root:'pw'@'x':3306",
        "REMOVE LEAF 'sdb-leaf-0.sdb-pods.demo.svc':3306 FORCE",
        "PROMOTE AGGREGATOR 'a':3306",
        "AGGREGATOR SET AS CHILD",
        "SELECT 1 SELECT 2",
        "SELECT 'unclosed",
        "CREATE TABLE `d`.`t` (`a` INT)",
        "INSERT INTO `d`.`t` (`a`, `b`) VALUES ('x')",
    ];
    for sql in refused {
        assert!(parse(sql).is_err(), "{sql} was accepted: {:?}", parse(sql));
    }
    assert_eq!(
        parse("ADD LEAF root:'p''w'@'h.s':3306").unwrap(),
        Statement::Add {
            leaf: true,
            user: "root".into(),
            password: "p'w".into(),
            address: sql::Address {
                host: "h.s".into(),
                port: 3306
            }
        }
    );
    match parse("INSERT INTO `d`.`t` (`k`, `v`) VALUES ('a''b\\\\c', 'x')").unwrap() {
        Statement::Insert { values, .. } => assert_eq!(values, ["a'b\\c", "x"]),
        other => panic!("{other:?}"),
    }
    let message = parse("FROB THE NODE").unwrap_err();
    assert!(message.contains("near 'FROB THE NODE'"), "{message}");
}

#[test]
fn versions_licenses_and_like_patterns() {
    for (image, version) in [
        (
            "ghcr.io/appscode-images/singlestore-node:alma-8.7.10-95e2357384",
            "8.7.10",
        ),
        ("singlestore/node:alma-8.9.3", "8.9.3"),
        ("registry:5000/singlestore-node:8.5.7", "8.5.7"),
        ("singlestore-node:latest", "latest"),
        ("singlestore-node", ""),
    ] {
        assert_eq!(version_of(image), version, "{image}");
    }
    for (key, valid) in [
        (LICENSE, true),
        ("abc", true),
        ("a-b_c+d/e==", true),
        ("", false),
        ("===", false),
        ("not a key", false),
        ("a=b", false),
        ("abc===", false),
    ] {
        assert_eq!(license_ok(key), valid, "{key:?}");
    }
    for (pattern, name, matches) in [
        ("memsql_version", "memsql_version", true),
        ("MEMSQL%", "memsql_version", true),
        ("%_timeout", "wait_timeout", true),
        ("wait_timeou_", "wait_timeout", true),
        ("memsql", "memsql_version", false),
        ("", "x", false),
    ] {
        assert_eq!(sql::like(pattern, name), matches, "{pattern} {name}");
    }
}

#[test]
fn hosts_resolve_to_nodes_of_the_same_namespace_and_service() {
    let mut w = world(&["a"], &[]);
    w.nodes.insert(
        NodeId {
            namespace: "other".into(),
            pod: "a".into(),
        },
        Node::new(Kind::Aggregator, "root", "pw", "8.7.10"),
    );
    for (h, resolves) in [
        ("a.sdb-pods.demo.svc", true),
        ("a.sdb-pods.demo.svc.cluster.local", true),
        ("a.sdb-pods.demo", true),
        ("a.sdb-pods", true),
        ("a.sdb-pods.demo.svc.", true),
        ("a", false),
        ("a.other-svc.demo.svc", false),
        ("a.sdb-pods.other.svc", false),
        ("b.sdb-pods.demo.svc", false),
        ("a.sdb-pods.demo.svc.example.com", false),
        ("127.0.0.9", false),
    ] {
        assert_eq!(w.resolve("demo", h).is_some(), resolves, "{h}");
    }
}

#[test]
fn variables_and_the_health_checks_read_statements() {
    let mut w = world(&["a"], &["l"]);
    assert_eq!(query(&mut w, "a", "SELECT 1"), [["1"]]);
    assert_eq!(query(&mut w, "l", "SELECT @@memsql_version"), [["8.7.10"]]);
    assert_eq!(
        columns(
            &mut w,
            "a",
            "SELECT @@max_allowed_packet,@@wait_timeout,@@socket"
        ),
        ["@@max_allowed_packet", "@@wait_timeout", "@@socket"]
    );
    assert_eq!(
        query(
            &mut w,
            "a",
            "SELECT @@max_allowed_packet,@@wait_timeout,@@socket,@@GLOBAL.version_comment"
        ),
        [["16777216", "28800", "NULL", VERSION_COMMENT]]
    );
    assert_eq!(
        query(&mut w, "a", "SHOW VARIABLES LIKE 'memsql_version'"),
        [["memsql_version", "8.7.10"]]
    );
    assert_eq!(
        query(&mut w, "a", "SHOW VARIABLES LIKE 'nothing'"),
        Vec::<Vec<String>>::new()
    );
    assert_eq!(query(&mut w, "a", "SHOW VARIABLES").len(), 4);
    ok(&mut w, "a", "SET NAMES utf8mb4");
    // Not in a cluster: no aggregators, no databases; SHOW LEAVES and leaves' SHOW AGGREGATORS
    // are refused.
    assert!(query(&mut w, "a", "SHOW AGGREGATORS").is_empty());
    assert!(query(&mut w, "a", "SHOW DATABASES EXTENDED").is_empty());
    assert!(query(&mut w, "l", "SHOW DATABASES EXTENDED").is_empty());
    assert_eq!(code(&mut w, "a", "SHOW LEAVES"), ER_WRONG_NODE);
    assert_eq!(code(&mut w, "l", "SHOW LEAVES"), ER_WRONG_NODE);
    assert_eq!(code(&mut w, "l", "SHOW AGGREGATORS"), ER_WRONG_NODE);
    // A node that is down answers nothing.
    w.nodes.get_mut(&id("a")).unwrap().up = false;
    assert_eq!(code(&mut w, "a", "SELECT 1"), ER_UNREACHABLE);
}

#[test]
fn licenses_and_bootstrap_refusals() {
    let mut w = world(&["a", "b"], &["l"]);
    let bootstrap = format!("BOOTSTRAP AGGREGATOR '{}'", host("a"));
    let cases: [(&str, &str, u16, &str); 6] = [
        ("a", "SET LICENSE = ''", ER_LICENSE, "an empty key"),
        (
            "a",
            "SET LICENSE = 'not base64!'",
            ER_LICENSE,
            "not base64-like",
        ),
        ("a", &bootstrap, ER_LICENSE, "no license yet"),
        ("l", "SET LICENSE = 'abc'", 0, "any node takes a license"),
        (
            "l",
            &format!("BOOTSTRAP AGGREGATOR '{}'", host("l")),
            ER_WRONG_NODE,
            "a leaf",
        ),
        ("a", &format!("SET LICENSE = '{LICENSE}'"), 0, "a valid key"),
    ];
    for (pod, sql, want, why) in cases {
        match run(&mut w, pod, sql) {
            Ok(_) => assert_eq!(want, 0, "{why}: {sql} was accepted"),
            Err(e) => assert_eq!(e.code, want, "{why}: {sql}: {e:?}"),
        }
    }
    assert_eq!(
        code(
            &mut w,
            "a",
            &format!("BOOTSTRAP AGGREGATOR '{}'", host("b"))
        ),
        ER_UNREACHABLE,
        "the host must name the node itself"
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "BOOTSTRAP AGGREGATOR 'nowhere.sdb-pods.demo.svc'"
        ),
        ER_UNREACHABLE
    );
    assert_eq!(
        code(&mut w, "a", "BOOTSTRAP AGGREGATOR 'a'"),
        ER_UNREACHABLE,
        "a bare pod name does not resolve"
    );
    ok(&mut w, "a", &bootstrap);
    let e = run(&mut w, "a", &bootstrap).unwrap_err();
    assert_eq!(e.code, ER_MEMBERSHIP);
    assert!(e.message.contains("already joined to a cluster"), "{e:?}");
    assert_eq!(position(&mut w, "a"), "0:1");
    assert_eq!(
        aggregators(&mut w, "a"),
        [(host("a"), "online".into(), "1".into())]
    );
    assert!(query(&mut w, "a", "SHOW LEAVES").is_empty());
    assert_eq!(w.nodes[&id("a")].role(&id("a")), Some("master"));
    // Another aggregator bootstraps a second cluster: allowed, a cluster of its own.
    ok(&mut w, "b", &format!("SET LICENSE = '{LICENSE}'"));
    ok(
        &mut w,
        "b",
        &format!("BOOTSTRAP AGGREGATOR '{}'", host("b")),
    );
    assert_ne!(w.nodes[&id("a")].cluster, w.nodes[&id("b")].cluster);
}

#[test]
fn adding_nodes_follows_the_masters_rules() {
    let mut w = world(&["a", "b", "c"], &["l", "m"]);
    ok(&mut w, "a", &format!("SET LICENSE = '{LICENSE}'"));
    ok(
        &mut w,
        "a",
        &format!("BOOTSTRAP AGGREGATOR '{}'", host("a")),
    );
    let cases = [
        (
            "b",
            add("LEAF", "l", "pw"),
            ER_WRONG_NODE,
            "not in a cluster",
        ),
        ("l", add("LEAF", "m", "pw"), ER_WRONG_NODE, "on a leaf"),
        (
            "a",
            add("LEAF", "l", "wrong"),
            ER_ACCESS_DENIED,
            "a wrong password",
        ),
        (
            "a",
            "ADD LEAF admin:'pw'@'l.sdb-pods.demo.svc':3306".to_owned(),
            ER_ACCESS_DENIED,
            "another user",
        ),
        (
            "a",
            add("LEAF", "b", "pw"),
            ER_WRONG_NODE,
            "an aggregator as a leaf",
        ),
        (
            "a",
            add("AGGREGATOR", "l", "pw"),
            ER_WRONG_NODE,
            "a leaf as an aggregator",
        ),
        (
            "a",
            "ADD LEAF root:'pw'@'l.sdb-pods.demo.svc':3307".to_owned(),
            ER_UNREACHABLE,
            "another port",
        ),
        ("a", add("LEAF", "x", "pw"), ER_UNREACHABLE, "no such pod"),
        (
            "a",
            add("AGGREGATOR", "a", "pw"),
            ER_MEMBERSHIP,
            "the master itself",
        ),
    ];
    for (pod, sql, want, why) in cases {
        assert_eq!(code(&mut w, pod, &sql), want, "{why}: {sql}");
    }
    let e = run(&mut w, "a", &add("LEAF", "l", "wrong")).unwrap_err();
    assert_eq!(e.state, "28000");
    assert_eq!(
        e.message,
        "Access denied for user 'root'@'127.0.0.9' (using password: YES)"
    );
    w.nodes.get_mut(&id("m")).unwrap().up = false;
    assert_eq!(
        code(&mut w, "a", &add("LEAF", "m", "pw")),
        ER_UNREACHABLE,
        "a node that is down"
    );
    w.nodes.get_mut(&id("m")).unwrap().up = true;

    ok(&mut w, "a", &add("LEAF", "l", "pw"));
    assert_eq!(position(&mut w, "a"), "0:2");
    assert_eq!(
        code(&mut w, "a", &add("LEAF", "l", "pw")),
        ER_MEMBERSHIP,
        "already a leaf"
    );
    ok(&mut w, "a", &add("AGGREGATOR", "b", "pw"));
    assert_eq!(
        position(&mut w, "b"),
        "0:3",
        "a new child gets the master's metadata"
    );
    assert_eq!(w.nodes[&id("b")].role(&id("b")), Some("child"));
    assert_eq!(
        code(&mut w, "b", &add("LEAF", "m", "pw")),
        ER_WRONG_NODE,
        "on a child"
    );
    // A leaf of another cluster cannot join.
    ok(&mut w, "c", &format!("SET LICENSE = '{LICENSE}'"));
    ok(
        &mut w,
        "c",
        &format!("BOOTSTRAP AGGREGATOR '{}'", host("c")),
    );
    ok(&mut w, "c", &add("LEAF", "m", "pw"));
    assert_eq!(code(&mut w, "a", &add("LEAF", "m", "pw")), ER_MEMBERSHIP);

    let leaves = query(&mut w, "a", "SHOW LEAVES");
    assert_eq!(leaves.len(), 1);
    assert_eq!(
        leaves[0],
        [
            host("l"),
            "3306".into(),
            "1".into(),
            "NULL".into(),
            "NULL".into(),
            "online".into(),
            "1".into(),
            "0.100".into(),
            "2".into()
        ]
    );
    assert_eq!(
        columns(&mut w, "b", "SHOW AGGREGATORS"),
        [
            "Host",
            "Port",
            "State",
            "Opened_Connections",
            "Average_Roundtrip_Latency_ms",
            "Master_Aggregator",
            "Node_ID"
        ]
    );
    assert_eq!(
        aggregators(&mut w, "b"),
        [
            (host("a"), "online".into(), "1".into()),
            (host("b"), "online".into(), "0".into())
        ]
    );
    // A leaf that stops shows offline.
    w.nodes.get_mut(&id("l")).unwrap().up = false;
    assert_eq!(query(&mut w, "a", "SHOW LEAVES")[0][5], "offline");
}

#[test]
fn children_apply_the_masters_position_at_the_settle_pass() {
    let mut w = cluster(&["a", "b", "c"], &["l"]);
    for pod in ["a", "b", "c"] {
        assert_eq!(position(&mut w, pod), "0:4", "{pod}");
    }
    assert_eq!(
        query(&mut w, "b", "SHOW DATABASES EXTENDED"),
        [["cluster", "4", "replica", "online", "0:4", ""]]
    );
    assert_eq!(
        query(&mut w, "a", "SHOW DATABASES EXTENDED")[0][2],
        "master"
    );
    ok(&mut w, "a", "CREATE DATABASE sales");
    assert_eq!(position(&mut w, "a"), "0:5");
    assert_eq!(position(&mut w, "b"), "0:4", "not before the settle pass");
    assert!(w.pending());
    // A child that is down does not catch up; it does once it runs again.
    w.nodes.get_mut(&id("c")).unwrap().up = false;
    w.settle();
    assert_eq!(position(&mut w, "b"), "0:5");
    assert!(!w.pending());
    w.nodes.get_mut(&id("c")).unwrap().up = true;
    assert_eq!(position(&mut w, "c"), "0:4");
    w.settle();
    assert_eq!(position(&mut w, "c"), "0:5");
}

#[test]
fn databases_get_two_partitions_per_leaf_round_robin() {
    let mut w = cluster(&["a", "b"], &[]);
    assert_eq!(
        code(&mut w, "a", "CREATE DATABASE sales"),
        ER_NO_LEAVES,
        "a cluster without leaves"
    );
    let mut w = cluster(&["a", "b"], &["l", "m"]);
    assert_eq!(code(&mut w, "l", "CREATE DATABASE sales"), ER_WRONG_NODE);
    ok(&mut w, "a", "CREATE DATABASE sales");
    assert_eq!(
        partitions(&w, "l"),
        [
            ("sales_0".into(), PartitionState::Online),
            ("sales_2".into(), PartitionState::Online)
        ]
    );
    assert_eq!(
        partitions(&w, "m"),
        [
            ("sales_1".into(), PartitionState::Online),
            ("sales_3".into(), PartitionState::Online)
        ]
    );
    assert_eq!(
        query(&mut w, "m", "SHOW DATABASES EXTENDED"),
        [
            ["sales_1", "0", "master", "online", "0:0", ""],
            ["sales_3", "0", "master", "online", "0:0", ""]
        ]
    );
    assert_eq!(
        code(&mut w, "a", "CREATE DATABASE sales"),
        ER_DB_CREATE_EXISTS
    );
    ok(&mut w, "a", "CREATE DATABASE IF NOT EXISTS sales");
    assert_eq!(
        position(&mut w, "a"),
        "0:5",
        "IF NOT EXISTS of an existing one changes nothing"
    );
    // On a child: carried out by the master; refused while the master is down.
    ok(&mut w, "b", "CREATE DATABASE orders");
    assert_eq!(position(&mut w, "a"), "0:6");
    w.nodes.get_mut(&id("a")).unwrap().up = false;
    assert_eq!(
        code(&mut w, "b", "CREATE DATABASE more"),
        ER_MASTER_UNREACHABLE
    );
    // Only online leaves get partitions.
    w.nodes.get_mut(&id("a")).unwrap().up = true;
    w.nodes.get_mut(&id("m")).unwrap().up = false;
    ok(&mut w, "a", "CREATE DATABASE solo");
    assert_eq!(
        partitions(&w, "l")
            .iter()
            .filter(|(n, _)| n.starts_with("solo"))
            .count(),
        2
    );
}

#[test]
fn removing_a_leaf_moves_its_partitions_first() {
    let mut w = cluster(&["a", "b"], &["l", "m", "n"]);
    ok(&mut w, "a", "CREATE DATABASE sales");
    let cases = [
        (
            "l",
            "REMOVE LEAF 'm.sdb-pods.demo.svc':3306",
            ER_WRONG_NODE,
            "on a leaf",
        ),
        (
            "a",
            "REMOVE LEAF 'b.sdb-pods.demo.svc':3306",
            ER_MEMBERSHIP,
            "an aggregator",
        ),
        (
            "a",
            "REMOVE LEAF 'm.sdb-pods.demo.svc':3307",
            ER_MEMBERSHIP,
            "another port",
        ),
    ];
    for (pod, sql, want, why) in cases {
        assert_eq!(code(&mut w, pod, sql), want, "{why}: {sql}");
    }
    // From a child, carried out by the master.
    ok(&mut w, "b", "REMOVE LEAF 'n.sdb-pods.demo.svc':3306");
    assert_eq!(w.nodes[&id("n")].cluster, None);
    assert!(partitions(&w, "n").is_empty());
    assert_eq!(partitions(&w, "l").len() + partitions(&w, "m").len(), 6);
    assert_eq!(
        partitions(&w, "l").len(),
        3,
        "balanced: {:?}",
        partitions(&w, "l")
    );
    assert_eq!(query(&mut w, "a", "SHOW LEAVES").len(), 2);
    assert_eq!(position(&mut w, "a"), "0:7");
    // The removed leaf can join again, empty.
    ok(&mut w, "a", &add("LEAF", "n", "pw"));
    // A leaf that is down is removed too (its host as listed); its partitions move.
    w.nodes.get_mut(&id("m")).unwrap().up = false;
    ok(&mut w, "a", "REMOVE LEAF 'm.sdb-pods.demo.svc':3306");
    assert_eq!(partitions(&w, "l").len() + partitions(&w, "n").len(), 6);
    ok(&mut w, "a", "REMOVE LEAF 'n.sdb-pods.demo.svc':3306");
    assert_eq!(partitions(&w, "l").len(), 6);
    let e = run(&mut w, "a", "REMOVE LEAF 'l.sdb-pods.demo.svc':3306").unwrap_err();
    assert_eq!(
        e.code, ER_NO_LEAVES,
        "the last leaf holding partitions: {e:?}"
    );
    assert_eq!(partitions(&w, "l").len(), 6, "nothing moved");
}

#[test]
fn the_master_is_never_removed_and_children_are() {
    let mut w = cluster(&["a", "b", "c"], &["l"]);
    assert_eq!(
        code(&mut w, "b", "REMOVE AGGREGATOR 'a.sdb-pods.demo.svc':3306"),
        ER_MEMBERSHIP
    );
    assert_eq!(
        code(&mut w, "a", "REMOVE AGGREGATOR 'l.sdb-pods.demo.svc':3306"),
        ER_MEMBERSHIP,
        "a leaf"
    );
    ok(&mut w, "a", "REMOVE AGGREGATOR 'c.sdb-pods.demo.svc':3306");
    assert_eq!(w.nodes[&id("c")].cluster, None);
    assert!(query(&mut w, "c", "SHOW AGGREGATORS").is_empty());
    assert_eq!(aggregators(&mut w, "a").len(), 2);
    assert_eq!(position(&mut w, "a"), "0:5");
}

#[test]
fn promotion_needs_an_online_current_child_and_demotes_the_master() {
    let mut w = cluster(&["a", "b", "c"], &["l"]);
    let promote = |pod: &str| format!("PROMOTE AGGREGATOR '{}':3306 TO MASTER", host(pod));
    assert_eq!(code(&mut w, "a", &promote("a")), ER_PROMOTION, "the master");
    assert_eq!(code(&mut w, "a", &promote("l")), ER_MEMBERSHIP, "a leaf");
    ok(&mut w, "a", "CREATE DATABASE sales");
    assert_eq!(
        code(&mut w, "a", &promote("b")),
        ER_PROMOTION,
        "metadata not current before the settle pass"
    );
    w.settle();
    w.nodes.get_mut(&id("c")).unwrap().up = false;
    assert_eq!(code(&mut w, "a", &promote("c")), ER_UNREACHABLE, "down");
    // From a child, carried out by the master.
    ok(&mut w, "b", &promote("b"));
    assert_eq!(w.nodes[&id("b")].role(&id("b")), Some("master"));
    assert_eq!(w.nodes[&id("a")].role(&id("a")), Some("child"));
    assert_eq!(position(&mut w, "a"), "0:6");
    assert_eq!(position(&mut w, "b"), "0:6");
    assert_eq!(
        aggregators(&mut w, "a")
            .into_iter()
            .filter(|(_, _, m)| m == "1")
            .map(|(h, _, _)| h)
            .collect::<Vec<_>>(),
        [host("b")]
    );
    assert_eq!(
        code(&mut w, "a", &add("LEAF", "l", "pw")),
        ER_WRONG_NODE,
        "the old master is a child now"
    );
    // c, down during the promotion, follows the new master once it runs again.
    w.nodes.get_mut(&id("c")).unwrap().up = true;
    w.settle();
    assert_eq!(w.nodes[&id("c")].role(&id("c")), Some("child"));
    assert_eq!(position(&mut w, "c"), "0:6");
}

#[test]
fn set_as_master_only_after_the_master_is_lost_and_the_lost_master_keeps_its_view() {
    let mut w = cluster(&["a", "b", "c"], &["l"]);
    assert_eq!(
        code(&mut w, "a", "AGGREGATOR SET AS MASTER"),
        ER_WRONG_NODE,
        "on the master"
    );
    assert_eq!(
        code(&mut w, "l", "AGGREGATOR SET AS MASTER"),
        ER_WRONG_NODE,
        "on a leaf"
    );
    assert_eq!(
        code(&mut w, "b", "AGGREGATOR SET AS MASTER"),
        ER_PROMOTION,
        "the master is online"
    );
    w.nodes.get_mut(&id("a")).unwrap().up = false;
    ok(&mut w, "b", "AGGREGATOR SET AS MASTER");
    assert_eq!(w.nodes[&id("b")].role(&id("b")), Some("master"));
    assert_eq!(position(&mut w, "b"), "0:5");
    assert_eq!(
        aggregators(&mut w, "b"),
        [
            (host("b"), "online".into(), "1".into()),
            (host("c"), "online".into(), "0".into())
        ],
        "the lost master is not in the new master's lists"
    );
    w.settle();
    assert_eq!(position(&mut w, "c"), "0:5", "c follows the new master");
    ok(&mut w, "c", "CREATE DATABASE sales");
    // The lost master starts again: it still believes it is the master of its old view.
    w.nodes.get_mut(&id("a")).unwrap().restart("8.7.10");
    w.settle();
    assert_eq!(w.nodes[&id("a")].role(&id("a")), Some("master"));
    assert_eq!(position(&mut w, "a"), "0:4");
    let view = aggregators(&mut w, "a");
    assert_eq!(view[0], (host("a"), "online".into(), "1".into()));
    assert_eq!(view.len(), 3);
    assert!(
        aggregators(&mut w, "b")
            .iter()
            .all(|(h, _, _)| *h != host("a"))
    );
    // Once the lost master is back, a child cannot set itself as master.
    let mut w2 = cluster(&["a", "b"], &[]);
    w2.nodes.get_mut(&id("a")).unwrap().up = false;
    w2.nodes.get_mut(&id("a")).unwrap().restart("8.7.10");
    assert_eq!(code(&mut w2, "b", "AGGREGATOR SET AS MASTER"), ER_PROMOTION);
}

#[test]
fn a_master_set_later_wins_over_a_lost_master_with_the_same_position() {
    let mut w = cluster(&["a", "b", "c"], &["l"]);
    // The master makes a change no child has applied, then is lost.
    ok(&mut w, "a", "CREATE DATABASE sales");
    w.nodes.get_mut(&id("a")).unwrap().up = false;
    ok(&mut w, "b", "AGGREGATOR SET AS MASTER");
    assert_eq!(position(&mut w, "b"), "0:5");
    w.nodes.get_mut(&id("a")).unwrap().restart("8.7.10");
    assert_eq!(position(&mut w, "a"), "0:5");
    w.settle();
    assert_eq!(w.nodes[&id("c")].metadata.as_ref().unwrap().master, id("b"));
    assert_eq!(position(&mut w, "c"), "0:5");
    assert_eq!(w.summary()["clusters"][0]["masterPod"], "b");
}

#[test]
fn restarted_leaves_recover_at_the_settle_pass_unless_stalled() {
    let mut w = cluster(&["a"], &["l", "m"]);
    ok(&mut w, "a", "CREATE DATABASE sales");
    for pod in ["l", "m"] {
        let n = w.nodes.get_mut(&id(pod)).unwrap();
        n.up = false;
        n.restart("8.9.3");
    }
    w.nodes.get_mut(&id("m")).unwrap().stalled = true;
    let states = |w: &mut World, pod: &str| {
        query(w, pod, "SHOW DATABASES EXTENDED")
            .into_iter()
            .map(|r| r[3].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(states(&mut w, "l"), ["recovering", "recovering"]);
    assert!(w.pending());
    w.settle();
    assert_eq!(states(&mut w, "l"), ["online", "online"]);
    assert_eq!(
        states(&mut w, "m"),
        ["recovering", "recovering"],
        "stalled: for ever"
    );
    assert!(
        !w.pending(),
        "a stalled leaf is no work for the settle pass"
    );
    assert_eq!(query(&mut w, "m", "SELECT @@memsql_version"), [["8.9.3"]]);
    assert_eq!(
        w.nodes[&id("m")].password,
        "pw",
        "the first password is kept"
    );
}

#[test]
fn the_health_check_writes_and_reads_back_on_any_aggregator() {
    let mut w = cluster(&["a", "b"], &["l"]);
    let setup = [
        "CREATE DATABASE IF NOT EXISTS `kubedb_system`",
        "CREATE TABLE IF NOT EXISTS `kubedb_system`.`kv` (`prop_key` VARCHAR(128) NOT NULL, `prop_value` VARCHAR(256) NOT NULL, PRIMARY KEY (`prop_key`))",
    ];
    let upsert = |v: &str| {
        format!(
            "INSERT INTO `kubedb_system`.`kv` (`prop_key`, `prop_value`) VALUES ('health_check', '{v}') ON DUPLICATE KEY UPDATE `prop_value` = VALUES(`prop_value`)"
        )
    };
    let read = "SELECT `prop_value` FROM `kubedb_system`.`kv` WHERE `prop_key` = 'health_check'";
    assert_eq!(
        code(&mut w, "b", read),
        ER_BAD_DB,
        "before the database exists"
    );
    // The first write inserts the row, later ones with a new value update it (2), an unchanged
    // value changes nothing (0), as MySQL counts.
    for (i, pod) in ["b", "a", "b"].into_iter().enumerate() {
        for sql in setup {
            ok(&mut w, pod, sql);
        }
        let value = format!("kubedb-health-{i}");
        let want = if i == 0 { 1 } else { 2 };
        assert_eq!(
            run(&mut w, pod, &upsert(&value)).unwrap(),
            Answer::Done(want)
        );
        assert_eq!(query(&mut w, pod, read), [[value.clone()]]);
    }
    assert_eq!(
        run(&mut w, "a", &upsert("kubedb-health-2")).unwrap(),
        Answer::Done(0)
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "INSERT INTO `kubedb_system`.`kv` (`prop_key`, `prop_value`) VALUES ('health_check', 'x')"
        ),
        ER_DUP_ENTRY
    );
    assert_eq!(
        code(&mut w, "a", "SELECT `nope` FROM `kubedb_system`.`kv`"),
        ER_BAD_FIELD
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "SELECT `prop_value` FROM `kubedb_system`.`other`"
        ),
        ER_NO_SUCH_TABLE
    );
    assert_eq!(
        code(&mut w, "a", &setup[1].replace("IF NOT EXISTS ", "")),
        ER_TABLE_EXISTS
    );
    assert_eq!(code(&mut w, "l", read), ER_WRONG_NODE, "not on a leaf");
    // An aggregator in no cluster cannot create the database.
    let mut lone = world(&["x"], &[]);
    assert_eq!(code(&mut lone, "x", setup[0]), ER_WRONG_NODE);
}

#[test]
fn the_summary_shows_nodes_and_clusters_without_secrets() {
    let mut w = cluster(&["a", "b"], &["l"]);
    ok(&mut w, "a", "CREATE DATABASE sales");
    let s = w.summary();
    let text = s.to_string();
    assert!(
        !text.contains("\"pw\"") && !text.contains(LICENSE),
        "{text}"
    );
    let node = |pod: &str| {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["pod"] == pod)
            .unwrap()
            .clone()
    };
    assert_eq!(node("a")["role"], "master");
    assert_eq!(node("a")["position"], 4);
    assert_eq!(node("b")["role"], "child");
    assert_eq!(node("b")["position"], 3, "not settled yet");
    assert_eq!(node("l")["role"], "leaf");
    assert_eq!(node("l")["kind"], "leaf");
    assert_eq!(node("l")["partitions"][1]["name"], "sales_1");
    assert_eq!(node("l")["partitions"][1]["state"], "online");
    let c = &s["clusters"][0];
    assert_eq!(c["master"], host("a"));
    assert_eq!(c["position"], 4);
    assert_eq!(c["aggregators"][1]["host"], host("b"));
    assert_eq!(c["leaves"][0]["pod"], "l");
    assert_eq!(c["databases"][0]["name"], "sales");
    assert_eq!(c["databases"][0]["partitions"][0]["leaf"], host("l"));
}

/// One node served over a real socket, spoken to with mysql_async as the agent and the
/// provisioner's health check do.
#[tokio::test]
async fn a_node_over_the_mysql_protocol() {
    use mysql_async::prelude::Queryable;
    use mysql_async::{Conn, OptsBuilder, Row};

    let nodes = server::Nodes::default();
    *nodes.world() = world(&["a"], &["l"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(server::serve_node(listener, nodes.clone(), id("a")));
    let opts = |password: &str| {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(addr.port())
            .user(Some("root"))
            .pass(Some(password))
    };
    match Conn::new(opts("wrong")).await.unwrap_err() {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1045);
            assert_eq!(
                e.message,
                "Access denied for user 'root'@'127.0.0.1' (using password: YES)"
            );
        }
        other => panic!("not a server error: {other:?}"),
    }
    let mut conn = Conn::new(opts("pw")).await.unwrap();
    let version: Option<String> = conn.query_first("SELECT @@memsql_version").await.unwrap();
    assert_eq!(version.as_deref(), Some("8.7.10"));
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let flavor: Vec<(String, String)> = conn
        .query("SHOW VARIABLES LIKE 'memsql_version'")
        .await
        .unwrap();
    assert_eq!(flavor, [("memsql_version".to_owned(), "8.7.10".to_owned())]);
    conn.query_drop(format!("SET LICENSE = '{LICENSE}'"))
        .await
        .unwrap();
    conn.query_drop(format!("BOOTSTRAP AGGREGATOR '{}'", host("a")))
        .await
        .unwrap();
    match conn
        .query_drop(add("LEAF", "l", "wrong"))
        .await
        .unwrap_err()
    {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1045),
        other => panic!("not a server error: {other:?}"),
    }
    conn.query_drop(add("LEAF", "l", "pw")).await.unwrap();
    let aggs: Vec<Row> = conn.query("SHOW AGGREGATORS").await.unwrap();
    assert_eq!(aggs.len(), 1);
    assert_eq!(aggs[0].get::<String, _>("Host"), Some(host("a")));
    assert_eq!(aggs[0].get::<i64, _>("Master_Aggregator"), Some(1));
    assert_eq!(
        aggs[0].get::<Option<String>, _>("Average_Roundtrip_Latency_ms"),
        Some(None)
    );
    let leaves: Vec<Row> = conn.query("SHOW LEAVES").await.unwrap();
    assert_eq!(
        leaves[0].get::<String, _>("State").as_deref(),
        Some("online")
    );
    conn.query_drop("CREATE DATABASE IF NOT EXISTS `kubedb_system`")
        .await
        .unwrap();
    let dbs: Vec<(String, i64, String, String, String, String)> =
        conn.query("SHOW DATABASES EXTENDED").await.unwrap();
    assert_eq!(dbs[0].0, "cluster");
    assert_eq!(dbs[0].4, "0:3");
    match conn.query_drop("DROP DATABASE x").await.unwrap_err() {
        mysql_async::Error::Server(e) => assert_eq!((e.code, e.state.as_str()), (1064, "42000")),
        other => panic!("not a server error: {other:?}"),
    }
    conn.disconnect().await.unwrap();
    serving.abort();
}
