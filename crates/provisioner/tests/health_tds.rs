//! The SQL Server probe against a scripted TDS peer on loopback: no SQL Server can run here, so
//! this fake speaks enough TDS 7.4 (PRELOGIN, LOGIN7, SQL batches answered with COLMETADATA, ROW,
//! ERROR and DONE tokens) to drive the real tiberius client through login, the read check and the
//! write check, and records the statements it receives.

use std::time::Duration;

use provisioner::health::{
    Engine, FailureKind, MSSQL_HEARTBEAT_READ_BACK, MSSQL_READ_QUERY, MSSQL_WRITE_SETUP, SqlTarget,
    check_sql, mssql_upsert_statement,
};
use testkit::tds::{
    Cell, Col, ENCRYPT_NOT_SUP, ENCRYPT_REQ, LOGIN7, PRELOGIN, SQL_BATCH, TABULAR_RESULT,
    batch_text, done, error_token, login_ack, prelogin_response, read_message, result_set, utf16,
    write_message,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const PASSWORD: &str = "Sa-S3cret-pw";

/// An ERROR token (severity 14) and the final DONE with the error bit.
fn error_response(code: u32, message: &str) -> Vec<u8> {
    let mut p = error_token(code, 14, message);
    p.extend(done(true, None));
    p
}

/// A result set of NVARCHAR(128) columns with one row, then DONE.
fn nvarchar_result(columns: &[&str], row: &[Option<&str>]) -> Vec<u8> {
    let columns: Vec<(&str, Col)> = columns.iter().map(|name| (*name, Col::Text)).collect();
    let row: Vec<Cell<'_>> = row
        .iter()
        .map(|v| v.map_or(Cell::Null, Cell::Text))
        .collect();
    result_set(&columns, &[row])
}

/// The heartbeat value inside an upsert statement (`... N'<value>' AS prop_value ...`).
fn upserted_value(statement: &str) -> Option<String> {
    let (_, rest) = statement.split_once("N'health_check' AS prop_key, N'")?;
    rest.split_once('\'').map(|(v, _)| v.to_owned())
}

/// How the fake server behaves.
#[derive(Clone, Copy)]
enum Script {
    /// Answers the LOGIN7 with login failure 18456.
    RejectLogin,
    /// Demands encryption in PRELOGIN and hangs up on the clear-text LOGIN7, like a SQL Server
    /// with forced encryption.
    RequireEncryption,
    /// Accepts the login and answers the health-check statements.
    Serve(Behaviour),
}

#[derive(Clone, Copy)]
struct Behaviour {
    /// `state_desc` of master.
    master_state: &'static str,
    /// Answer `CREATE DATABASE` with error 1801 (another prober created it first).
    database_exists_race: bool,
    /// Answer the upsert with this error.
    upsert_error: Option<(u32, &'static str)>,
}

const HEALTHY: Behaviour = Behaviour {
    master_state: "ONLINE",
    database_exists_race: false,
    upsert_error: None,
};

/// What the fake saw.
struct Seen {
    login: Vec<u8>,
    statements: Vec<String>,
}

/// Serves one connection following `script`.
async fn fake_sql_server(script: Script) -> (u16, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let (kind, _) = read_message(&mut sock).await.expect("prelogin");
        assert_eq!(kind, PRELOGIN, "the client starts with PRELOGIN");
        let encryption = match script {
            Script::RequireEncryption => ENCRYPT_REQ,
            _ => ENCRYPT_NOT_SUP,
        };
        write_message(&mut sock, TABULAR_RESULT, &prelogin_response(encryption))
            .await
            .expect("prelogin response");
        let (kind, login) = read_message(&mut sock).await.expect("login7");
        assert_eq!(kind, LOGIN7, "the client logs in next");
        let mut statements = Vec::new();
        match script {
            // Dropping the socket closes the connection.
            Script::RequireEncryption => {}
            Script::RejectLogin => {
                let response = error_response(18456, "Login failed for user 'sa'.");
                write_message(&mut sock, TABULAR_RESULT, &response)
                    .await
                    .expect("login response");
            }
            Script::Serve(behaviour) => {
                write_message(&mut sock, TABULAR_RESULT, &login_ack())
                    .await
                    .expect("login ack");
                let mut heartbeat: Option<String> = None;
                // Until the client closes the connection.
                while let Ok((kind, payload)) = read_message(&mut sock).await {
                    assert_eq!(kind, SQL_BATCH, "only SQL batches are sent");
                    let sql = batch_text(&payload);
                    let response = if sql == MSSQL_READ_QUERY {
                        nvarchar_result(
                            &["product_version", "state_desc"],
                            &[Some("16.0.4135.4"), Some(behaviour.master_state)],
                        )
                    } else if sql == MSSQL_WRITE_SETUP[0] && behaviour.database_exists_race {
                        error_response(1801, "Database 'kubedb_system' already exists.")
                    } else if MSSQL_WRITE_SETUP.contains(&sql.as_str()) {
                        done(false, None)
                    } else if let Some(value) = upserted_value(&sql) {
                        match behaviour.upsert_error {
                            Some((code, message)) => error_response(code, message),
                            None => {
                                heartbeat = Some(value);
                                done(false, Some(1))
                            }
                        }
                    } else if sql == MSSQL_HEARTBEAT_READ_BACK {
                        nvarchar_result(&["prop_value"], &[heartbeat.as_deref()])
                    } else {
                        error_response(102, "Incorrect syntax.")
                    };
                    statements.push(sql);
                    write_message(&mut sock, TABULAR_RESULT, &response)
                        .await
                        .expect("batch response");
                }
            }
        }
        Seen { login, statements }
    });
    (port, task)
}

fn target(port: u16) -> SqlTarget {
    let mut t = SqlTarget::new(Engine::SqlServer, "127.0.0.1", port, "sa", PASSWORD);
    t.timeout = Duration::from_secs(10);
    t
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn rejected_login_is_an_authentication_failure() {
    let (port, server) = fake_sql_server(Script::RejectLogin).await;
    let report = check_sql(&target(port)).await;
    let login = server.await.expect("fake server").login;

    assert!(!report.accepting_connection, "{report:?}");
    assert_eq!(report.read_ok, None);
    assert_eq!(report.failure, Some(FailureKind::AuthenticationFailed));
    assert_eq!(
        report.message,
        format!(
            "SQL Server at 127.0.0.1:{port} is not accepting connections: authentication failed: \
             SQL Server error 18456: Login failed for user 'sa'."
        )
    );
    // The LOGIN7 carried the configured login and application name.
    assert!(contains(&login, &utf16("sa")));
    assert!(contains(&login, &utf16("kubedb-provisioner-health")));
}

#[tokio::test]
async fn forced_encryption_is_explained() {
    let (port, server) = fake_sql_server(Script::RequireEncryption).await;
    let report = check_sql(&target(port)).await;
    server.await.expect("fake server");

    assert!(!report.accepting_connection, "{report:?}");
    assert_eq!(
        report.failure,
        Some(FailureKind::ConnectionClosed),
        "{report:?}"
    );
    assert!(
        report.message.contains("spec.tls.clientTLS: true"),
        "{}",
        report.message
    );
    assert!(!report.message.contains(PASSWORD));
}

async fn serve(
    behaviour: Behaviour,
    write_check: bool,
) -> (provisioner::health::HealthReport, u16, Seen) {
    let (port, server) = fake_sql_server(Script::Serve(behaviour)).await;
    let mut t = target(port);
    t.write_check = write_check;
    let report = check_sql(&t).await;
    let seen = server.await.expect("fake server");
    (report, port, seen)
}

#[tokio::test]
async fn healthy_server_passes_read_and_write_checks() {
    let (report, port, seen) = serve(HEALTHY, true).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.write_ok, Some(true));
    assert_eq!(
        report.message,
        format!(
            "SQL Server at 127.0.0.1:{port} is accepting connections; read and write checks \
             passed (server 16.0.4135.4)"
        )
    );
    let value = upserted_value(&seen.statements[3]).expect("an upsert");
    assert!(value.starts_with("kubedb-health-"), "{value}");
    assert_eq!(
        seen.statements,
        [
            MSSQL_READ_QUERY.to_owned(),
            MSSQL_WRITE_SETUP[0].to_owned(),
            MSSQL_WRITE_SETUP[1].to_owned(),
            mssql_upsert_statement(&value),
            MSSQL_HEARTBEAT_READ_BACK.to_owned(),
        ]
    );
}

#[tokio::test]
async fn a_concurrently_created_database_is_not_a_failure() {
    let behaviour = Behaviour {
        database_exists_race: true,
        ..HEALTHY
    };
    let (report, _, seen) = serve(behaviour, true).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(seen.statements.len(), 5, "{:?}", seen.statements);
}

#[tokio::test]
async fn write_check_disabled_sends_only_the_read_query() {
    let (report, _, seen) = serve(HEALTHY, false).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.write_ok, None);
    assert_eq!(seen.statements, [MSSQL_READ_QUERY]);
}

#[tokio::test]
async fn recovering_master_fails_the_read_check() {
    let behaviour = Behaviour {
        master_state: "RECOVERING",
        ..HEALTHY
    };
    let (report, port, seen) = serve(behaviour, true).await;
    assert!(report.accepting_connection);
    assert_eq!(report.read_ok, Some(false));
    assert_eq!(report.write_ok, None);
    assert_eq!(report.failure, Some(FailureKind::ServerUnavailable));
    assert_eq!(
        report.message,
        format!(
            "SQL Server at 127.0.0.1:{port} accepted the connection but the read check failed: \
             server unavailable: database master is RECOVERING, not ONLINE"
        )
    );
    assert_eq!(
        seen.statements,
        [MSSQL_READ_QUERY],
        "no write after a failed read"
    );
}

#[tokio::test]
async fn read_only_database_fails_the_write_check() {
    let behaviour = Behaviour {
        upsert_error: Some((
            3906,
            "Failed to update database \"kubedb_system\" because the database is read-only.",
        )),
        ..HEALTHY
    };
    let (report, _, seen) = serve(behaviour, true).await;
    assert!(report.accepting_connection);
    assert_eq!(report.read_ok, Some(true));
    assert_eq!(report.write_ok, Some(false));
    assert_eq!(report.failure, Some(FailureKind::Query));
    assert!(
        report.message.ends_with(
            "passed the read check but the write check failed: query failed: SQL Server error \
             3906: Failed to update database \"kubedb_system\" because the database is read-only."
        ),
        "{}",
        report.message
    );
    assert_eq!(
        seen.statements.len(),
        4,
        "no read-back after a failed upsert"
    );
}
