use super::sql::parse;
use super::*;

fn id(pod: &str) -> InstanceId {
    InstanceId {
        namespace: "demo".into(),
        pod: pod.into(),
    }
}

const PFX: &str = "/var/opt/mssql/endpoint-cert/keystore.p12";

fn world(pods: &[&str]) -> World {
    let mut w = World::default();
    for p in pods {
        let mut i = Instance::new(p, "sa-pw", true);
        i.files.insert(PFX.into());
        w.instances.insert(id(p), i);
    }
    w
}

fn run(w: &mut World, pod: &str, sql: &str) -> Result<Answer, SqlError> {
    let statement = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    w.execute(&id(pod), statement)
}

fn ok(w: &mut World, pod: &str, sql: &str) {
    run(w, pod, sql).unwrap_or_else(|e| panic!("{pod}: {sql}: {e:?}"));
}

fn code(w: &mut World, pod: &str, sql: &str) -> u32 {
    match run(w, pod, sql) {
        Err(e) => e.code,
        Ok(a) => panic!("{sql} was accepted: {a:?}"),
    }
}

fn setup(w: &mut World, pod: &str) {
    for sql in [
        "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'm'",
        "CREATE LOGIN [dbm_login] WITH PASSWORD = N'l'",
        "CREATE USER [dbm_user] FOR LOGIN [dbm_login]",
        "CREATE CERTIFICATE [dbm_certificate] AUTHORIZATION [dbm_user] FROM FILE = N'/var/opt/mssql/endpoint-cert/keystore.p12' WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = N'm')",
        "CREATE ENDPOINT [Hadr_endpoint] AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = ALL, AUTHENTICATION = CERTIFICATE [dbm_certificate], ENCRYPTION = REQUIRED ALGORITHM AES)",
        "ALTER ENDPOINT [Hadr_endpoint] STATE = STARTED",
        "GRANT CONNECT ON ENDPOINT::[Hadr_endpoint] TO [dbm_login]",
    ] {
        ok(w, pod, sql);
    }
}

fn replica(pod: &str) -> String {
    format!(
        "N'{pod}' WITH (ENDPOINT_URL = N'tcp://{pod}.ag-pods.demo.svc:5022', AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL, SEEDING_MODE = AUTOMATIC, SECONDARY_ROLE (ALLOW_CONNECTIONS = NO))"
    )
}

fn databases(w: &mut World, pod: &str) -> Vec<Vec<Value>> {
    match run(w, pod, "SELECT DB_NAME(s.database_id) AS database_name, CAST(s.synchronization_state AS int) AS synchronization_state, CAST(s.is_suspended AS int) AS is_suspended, CAST(FLOOR(s.last_hardened_lsn / 1000000000000000) AS bigint) AS lsn_high, CAST(s.last_hardened_lsn % 1000000000000000 AS bigint) AS lsn_low FROM sys.dm_hadr_database_replica_states AS s JOIN sys.availability_groups AS g ON g.group_id = s.group_id WHERE s.is_local = 1 AND g.name = N'ag'").unwrap() {
        Answer::Rows(_, rows) => rows,
        Answer::Done => panic!("no rows"),
    }
}

fn role(w: &mut World, pod: &str) -> Option<i64> {
    match run(w, pod, "SELECT CAST(ISNULL(rs.role, 0) AS int) AS role FROM sys.availability_groups AS g LEFT JOIN sys.dm_hadr_availability_replica_states AS rs ON rs.group_id = g.group_id AND rs.is_local = 1 WHERE g.name = N'ag'").unwrap() {
        Answer::Rows(_, rows) => rows.first().map(|r| match r[0] {
            Value::Int(v) => v,
            _ => panic!("role is an int"),
        }),
        Answer::Done => panic!("no rows"),
    }
}

/// An AG of `pods` with database `sales`, the first pod primary.
fn formed(pods: &[&str]) -> World {
    let mut w = world(pods);
    for p in pods {
        setup(&mut w, p);
    }
    let first = pods[0];
    ok(
        &mut w,
        first,
        &format!(
            "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
            replica(first)
        ),
    );
    for p in &pods[1..] {
        ok(
            &mut w,
            first,
            &format!(
                "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON {}",
                replica(p)
            ),
        );
        ok(
            &mut w,
            p,
            "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
        );
        ok(
            &mut w,
            p,
            "ALTER AVAILABILITY GROUP [ag] GRANT CREATE ANY DATABASE",
        );
    }
    ok(
        &mut w,
        first,
        "IF DB_ID(N'sales') IS NULL CREATE DATABASE [sales]",
    );
    ok(&mut w, first, "ALTER DATABASE [sales] SET RECOVERY FULL");
    ok(
        &mut w,
        first,
        "BACKUP DATABASE [sales] TO DISK = N'/dev/null'",
    );
    ok(
        &mut w,
        first,
        "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]",
    );
    w
}

#[test]
fn setup_refusals_follow_dependencies() {
    let mut w = world(&["a"]);
    assert_eq!(
        code(
            &mut w,
            "a",
            "CREATE CERTIFICATE [c] AUTHORIZATION [u] FROM FILE = N'/var/opt/mssql/endpoint-cert/keystore.p12' WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = N'm')"
        ),
        15581,
        "no master key"
    );
    assert_eq!(
        code(&mut w, "a", "CREATE USER [u] FOR LOGIN [nobody]"),
        15007
    );
    ok(
        &mut w,
        "a",
        "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'm'",
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'm'"
        ),
        15578
    );
    ok(&mut w, "a", "CREATE LOGIN [l] WITH PASSWORD = N'p'");
    assert_eq!(
        code(&mut w, "a", "CREATE LOGIN [l] WITH PASSWORD = N'p'"),
        15025
    );
    ok(&mut w, "a", "CREATE USER [u] FOR LOGIN [l]");
    assert_eq!(
        code(
            &mut w,
            "a",
            "CREATE CERTIFICATE [c] AUTHORIZATION [u] FROM FILE = N'/missing.p12' WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = N'm')"
        ),
        15208,
        "a certificate file the container cannot read"
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "CREATE ENDPOINT [e] AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = ALL, AUTHENTICATION = CERTIFICATE [c], ENCRYPTION = REQUIRED ALGORITHM AES)"
        ),
        15151
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            &format!(
                "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
                replica("a")
            )
        ),
        35221,
        "no endpoint yet"
    );
}

#[test]
fn an_ag_is_created_once_and_joined_only_when_listed() {
    let mut w = world(&["a", "b"]);
    setup(&mut w, "a");
    setup(&mut w, "b");
    let create = format!(
        "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
        replica("a")
    );
    assert_eq!(
        code(
            &mut w,
            "b",
            &format!(
                "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
                replica("a")
            )
        ),
        35237,
        "the local instance must be the replica named"
    );
    ok(&mut w, "a", &create);
    assert_eq!(code(&mut w, "a", &create), 41042);
    assert_eq!(w.ags_created[&("demo".into(), "ag".into())], 1);
    assert_eq!(
        code(
            &mut w,
            "b",
            "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)"
        ),
        41158
    );
    assert_eq!(
        code(
            &mut w,
            "b",
            &format!(
                "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON {}",
                replica("b")
            )
        ),
        15151,
        "ADD REPLICA where the AG does not exist"
    );
    let wrong_mode = replica("b").replace("FAILOVER_MODE = EXTERNAL", "FAILOVER_MODE = AUTOMATIC");
    assert_eq!(
        code(
            &mut w,
            "a",
            &format!("ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON {wrong_mode}")
        ),
        47105
    );
    ok(
        &mut w,
        "a",
        &format!(
            "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON {}",
            replica("b")
        ),
    );
    assert_eq!(
        code(
            &mut w,
            "b",
            "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = WSFC)"
        ),
        41199
    );
    ok(
        &mut w,
        "b",
        "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
    );
    assert_eq!(
        code(
            &mut w,
            "b",
            "ALTER AVAILABILITY GROUP [ag] SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = 1)"
        ),
        41190,
        "only on the primary"
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "ALTER AVAILABILITY GROUP [ag] SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = 2)"
        ),
        41183
    );
    assert_eq!(role(&mut w, "b"), Some(ROLE_SECONDARY));
}

#[test]
fn databases_need_full_recovery_and_a_backup_and_seed_when_granted() {
    let mut w = world(&["a", "b"]);
    setup(&mut w, "a");
    setup(&mut w, "b");
    ok(
        &mut w,
        "a",
        &format!(
            "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
            replica("a")
        ),
    );
    ok(
        &mut w,
        "a",
        &format!(
            "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON {}",
            replica("b")
        ),
    );
    ok(
        &mut w,
        "b",
        "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]"
        ),
        911
    );
    ok(
        &mut w,
        "a",
        "IF DB_ID(N'sales') IS NULL CREATE DATABASE [sales]",
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]"
        ),
        1475
    );
    ok(&mut w, "a", "ALTER DATABASE [sales] SET RECOVERY FULL");
    assert_eq!(
        code(
            &mut w,
            "a",
            "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]"
        ),
        35250
    );
    assert_eq!(
        code(
            &mut w,
            "a",
            "BACKUP DATABASE [sales] TO DISK = N'/tmp/x.bak'"
        ),
        3201
    );
    ok(
        &mut w,
        "a",
        "BACKUP DATABASE [sales] TO DISK = N'/dev/null'",
    );
    ok(
        &mut w,
        "a",
        "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]",
    );
    assert!(
        databases(&mut w, "b").is_empty(),
        "not seeded before the grant"
    );
    ok(
        &mut w,
        "b",
        "ALTER AVAILABILITY GROUP [ag] GRANT CREATE ANY DATABASE",
    );
    let rows = databases(&mut w, "b");
    assert_eq!(rows[0][0], Value::Text("sales".into()));
    assert_eq!(rows[0][1], Value::Int(SYNCHRONIZED));
}

#[test]
fn writes_follow_synchronized_secondaries_and_stalled_ones_lag() {
    let mut w = formed(&["a", "b", "c"]);
    w.instances.get_mut(&id("c")).unwrap().stalled = true;
    w.settle("demo");
    w.write_everywhere();
    w.write_everywhere();
    let lsn = |w: &mut World, pod: &str| databases(w, pod)[0][4].clone();
    assert_eq!(lsn(&mut w, "a"), Value::BigInt(3));
    assert_eq!(lsn(&mut w, "b"), Value::BigInt(3));
    assert_eq!(
        lsn(&mut w, "c"),
        Value::BigInt(1),
        "the stalled replica lags"
    );
    assert_eq!(databases(&mut w, "c")[0][1], Value::Int(NOT_SYNCHRONIZING));
    ok(
        &mut w,
        "a",
        "ALTER AVAILABILITY GROUP [ag] SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = 2)",
    );
    w.write_everywhere();
    assert_eq!(
        lsn(&mut w, "a"),
        Value::BigInt(3),
        "two synchronized secondaries required, one present: no commit"
    );
}

#[test]
fn failover_suspends_until_resumed_and_a_restarted_primary_comes_back_resolving() {
    let mut w = formed(&["a", "b"]);
    w.instances.get_mut(&id("a")).unwrap().up = false;
    w.settle("demo");
    assert_eq!(databases(&mut w, "b")[0][1], Value::Int(NOT_SYNCHRONIZING));
    assert!(
        run(&mut w, "a", "ALTER AVAILABILITY GROUP [ag] OFFLINE").is_err(),
        "down"
    );
    ok(
        &mut w,
        "b",
        "ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS",
    );
    assert_eq!(
        code(
            &mut w,
            "b",
            "ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS"
        ),
        41142
    );
    assert_eq!(
        databases(&mut w, "b")[0][2],
        Value::Int(1),
        "suspended after a forced failover"
    );
    ok(&mut w, "b", "ALTER DATABASE [sales] SET HADR RESUME");
    assert_eq!(databases(&mut w, "b")[0][1], Value::Int(SYNCHRONIZED));

    w.instances.get_mut(&id("a")).unwrap().restart(true);
    w.settle("demo");
    assert_eq!(role(&mut w, "a"), Some(ROLE_RESOLVING));
    ok(
        &mut w,
        "a",
        "ALTER AVAILABILITY GROUP [ag] SET (ROLE = SECONDARY)",
    );
    let rows = databases(&mut w, "a");
    assert_eq!(
        rows[0][2],
        Value::Int(1),
        "suspended: it follows a new primary"
    );
    assert_eq!(rows[0][1], Value::Int(NOT_SYNCHRONIZING));
    ok(&mut w, "a", "ALTER DATABASE [sales] SET HADR RESUME");
    assert_eq!(databases(&mut w, "a")[0][1], Value::Int(SYNCHRONIZED));
    assert_eq!(w.primary("demo", "ag"), Some(id("b")));
}

#[test]
fn endpoint_urls_must_name_the_pod() {
    assert!(url_reaches(
        "tcp://a.ag-pods.demo.svc:5022",
        "a",
        Some(5022)
    ));
    assert!(url_reaches(
        "TCP://a.ag-pods.demo.svc.cluster.local:5022",
        "a",
        Some(5022)
    ));
    assert!(!url_reaches(
        "tcp://b.ag-pods.demo.svc:5022",
        "a",
        Some(5022)
    ));
    assert!(
        !url_reaches("tcp://a:5022", "a", Some(5022)),
        "a bare name does not resolve"
    );
    assert!(!url_reaches(
        "tcp://a.ag-pods.demo.svc:5023",
        "a",
        Some(5022)
    ));
    assert!(!url_reaches(
        "http://a.ag-pods.demo.svc:5022",
        "a",
        Some(5022)
    ));
    assert!(!url_reaches("tcp://a.ag-pods.demo.svc:5022", "a", None));
}

#[test]
fn logins_check_the_first_password() {
    let i = Instance::new("a", "first", true);
    assert!(i.login_ok("sa", "first"));
    assert!(i.login_ok("SA", "first"));
    assert!(!i.login_ok("sa", "second"));
    assert!(!i.login_ok("dbm_login", "first"));
}
