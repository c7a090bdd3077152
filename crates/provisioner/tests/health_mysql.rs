//! The MySQL-protocol SQL health check against a real MariaDB server, used as a wire-protocol
//! stand-in for SingleStore (SingleStore-only statements are unit-tested in the module).
//!
//! Needs `mariadbd` and `mariadb-install-db` from Debian's `mariadb-server` package (installed by
//! `.ci/run`). The server runs on a free loopback port with a data directory under the system
//! temp directory and is killed when the test ends, also on panic.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use provisioner::health::{Engine, FailureKind, SqlTarget, SqlTls, check_sql};
use std::time::Duration;

use testkit::mariadb::{MariaDb, new_ca, require_program, test_pki};

const ROOT_PASSWORD: &str = "Pr0be-S3cret-pw";
const READER_PASSWORD: &str = "Re4der-S3cret-pw";

fn target(port: u16, username: &str, password: &str, cluster: bool) -> SqlTarget {
    let mut t = SqlTarget::new(
        Engine::SingleStore { cluster },
        "127.0.0.1",
        port,
        username,
        password,
    );
    t.timeout = Duration::from_secs(10);
    t
}

async fn heartbeat_rows(admin: &mut Conn) -> Vec<(String, String)> {
    admin
        .query("SELECT prop_key, prop_value FROM kubedb_system.kv ORDER BY prop_key")
        .await
        .expect("read kubedb_system.kv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_protocol_health_checks_against_mariadb() {
    let pki = test_pki();
    let mut server = MariaDb::start(&pki);
    server.wait_ready().await;
    let port = server.port;

    let mut admin = server.admin().await;
    for statement in [
        format!("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}'"),
        format!("CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY '{READER_PASSWORD}'"),
        "GRANT SELECT ON *.* TO 'reader'@'127.0.0.1'".to_owned(),
    ] {
        admin
            .query_drop(statement.as_str())
            .await
            .expect(&statement);
    }

    // Healthy: connect over TCP with a password, read and write checks pass.
    let report = check_sql(&target(port, "root", ROOT_PASSWORD, false)).await;
    assert!(report.is_healthy(), "{report:?}");
    assert!(report.accepting_connection);
    assert_eq!(report.read_ok, Some(true));
    assert_eq!(report.write_ok, Some(true));
    assert_eq!(report.failure, None);
    assert!(
        report.message.starts_with(&format!(
            "SingleStore at 127.0.0.1:{port} is accepting connections; read and write checks passed"
        )),
        "{}",
        report.message
    );
    assert!(
        report.message.contains("not SingleStore"),
        "{}",
        report.message
    );
    assert!(!report.message.contains(ROOT_PASSWORD));

    // The write check left exactly one heartbeat row.
    let rows = heartbeat_rows(&mut admin).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "health_check");
    assert!(rows[0].1.starts_with("kubedb-health-"), "{rows:?}");
    let first_heartbeat = rows[0].1.clone();

    // Idempotent: a second probe upserts the same row with a new value.
    let report = check_sql(&target(port, "root", ROOT_PASSWORD, false)).await;
    assert!(report.is_healthy(), "{report:?}");
    let rows = heartbeat_rows(&mut admin).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_ne!(rows[0].1, first_heartbeat, "the heartbeat must change");

    // Write check disabled: no write result, and no write happens.
    let before = heartbeat_rows(&mut admin).await;
    let mut read_only = target(port, "root", ROOT_PASSWORD, false);
    read_only.write_check = false;
    let report = check_sql(&read_only).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.read_ok, Some(true));
    assert_eq!(report.write_ok, None);
    assert!(
        report.message.contains("write check disabled"),
        "{}",
        report.message
    );
    assert_eq!(heartbeat_rows(&mut admin).await, before);

    // Cluster mode against a server that is not SingleStore: no SingleStore-only statements.
    let report = check_sql(&target(port, "root", ROOT_PASSWORD, true)).await;
    assert!(report.is_healthy(), "{report:?}");
    assert!(
        report.message.contains("topology checks skipped"),
        "{}",
        report.message
    );

    // TLS verified against the server's CA (rustls with the ring provider).
    let mut tls = target(port, "root", ROOT_PASSWORD, false);
    tls.tls = SqlTls::Verified {
        ca_pem: pki.ca_pem.clone().into_bytes(),
    };
    let report = check_sql(&tls).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.write_ok, Some(true));

    // TLS with a CA that did not sign the server certificate: rejected in the handshake.
    let (_, _, other_ca_pem) = new_ca();
    tls.tls = SqlTls::Verified {
        ca_pem: other_ca_pem.into_bytes(),
    };
    let report = check_sql(&tls).await;
    assert!(!report.accepting_connection, "{report:?}");
    assert_eq!(report.failure, Some(FailureKind::Tls), "{report:?}");
    assert!(
        report
            .message
            .contains("is not accepting connections: TLS error"),
        "{}",
        report.message
    );

    // A login without write privileges: connected and readable, the write check fails.
    let report = check_sql(&target(port, "reader", READER_PASSWORD, false)).await;
    assert!(report.accepting_connection, "{report:?}");
    assert_eq!(report.read_ok, Some(true));
    assert_eq!(report.write_ok, Some(false));
    assert_eq!(report.failure, Some(FailureKind::PermissionDenied));
    assert!(
        report.message.contains("write check failed"),
        "{}",
        report.message
    );
    assert!(report.message.contains("error 1044"), "{}", report.message);
    assert!(!report.is_healthy());

    // Wrong password: not accepting, with the server's access-denied text and no password.
    let wrong = "Wr0ng-pa55word";
    let report = check_sql(&target(port, "root", wrong, false)).await;
    assert!(!report.accepting_connection, "{report:?}");
    assert_eq!(report.read_ok, None);
    assert_eq!(report.write_ok, None);
    assert_eq!(report.failure, Some(FailureKind::AuthenticationFailed));
    assert!(
        report.message.contains("is not accepting connections: authentication failed: error 1045: Access denied for user 'root'@'127.0.0.1'"),
        "{}",
        report.message
    );
    assert!(!report.message.contains(wrong));

    // Stopped server: connection refused.
    drop(admin);
    server.stop();
    let report = check_sql(&target(port, "root", ROOT_PASSWORD, false)).await;
    assert!(!report.accepting_connection, "{report:?}");
    assert_eq!(report.failure, Some(FailureKind::ConnectionRefused));
    assert!(
        report.message.starts_with(&format!(
            "SingleStore at 127.0.0.1:{port} is not accepting connections: connection refused"
        )),
        "{}",
        report.message
    );
}

#[test]
fn missing_programs_fail_with_an_install_hint() {
    let result = std::panic::catch_unwind(|| require_program("mariadbd-that-does-not-exist"));
    let panic = result.expect_err("a missing program must fail the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("apt-get install -y mariadb-server"),
        "{message}"
    );
}
