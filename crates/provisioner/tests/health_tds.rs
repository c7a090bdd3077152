//! The SQL Server probe against a scripted TDS peer on loopback: no SQL Server can run here, so
//! this fake speaks enough TDS 7.4 (PRELOGIN, LOGIN7, SQL batches answered with COLMETADATA, ROW,
//! ERROR and DONE tokens) to drive the real tiberius client through login, the read check and the
//! write check, and records the statements it receives.

use std::time::Duration;

use provisioner::health::{
    Engine, FailureKind, MSSQL_HEARTBEAT_READ_BACK, MSSQL_READ_QUERY, MSSQL_WRITE_SETUP, SqlTarget,
    check_sql, mssql_upsert_statement,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const TABULAR_RESULT: u8 = 0x04;
const SQL_BATCH: u8 = 0x01;
const ENCRYPT_NOT_SUP: u8 = 0x02;
const ENCRYPT_REQ: u8 = 0x03;
const PASSWORD: &str = "Sa-S3cret-pw";

/// Reads one TDS message (all packets up to end-of-message) and returns its type and payload.
async fn read_message(sock: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; 8];
        sock.read_exact(&mut header).await?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut body = vec![0u8; length.saturating_sub(8)];
        sock.read_exact(&mut body).await?;
        payload.extend_from_slice(&body);
        if header[1] & 0x01 == 0x01 {
            return Ok((header[0], payload));
        }
    }
}

async fn write_message(sock: &mut TcpStream, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(payload.len() + 8).expect("small message");
    let mut packet = vec![kind, 0x01];
    packet.extend_from_slice(&length.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 1, 0]);
    packet.extend_from_slice(payload);
    sock.write_all(&packet).await
}

/// A PRELOGIN response with VERSION (SQL Server 2022) and the given ENCRYPTION value.
fn prelogin_response(encryption: u8) -> Vec<u8> {
    let mut p = Vec::new();
    // Option table: VERSION at 11 (6 bytes), ENCRYPTION at 17 (1 byte), terminator.
    p.extend_from_slice(&[0x00, 0, 11, 0, 6]);
    p.extend_from_slice(&[0x01, 0, 17, 0, 1]);
    p.push(0xFF);
    p.extend_from_slice(&0x1000_0FA0_u32.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    p.push(encryption);
    p
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// An ERROR token with `code` and `message`.
fn error_token(code: u32, message: &str) -> Vec<u8> {
    let server = "mssql-0";
    let mut body = Vec::new();
    body.extend_from_slice(&code.to_le_bytes());
    body.push(1); // state
    body.push(14); // class
    body.extend_from_slice(
        &u16::try_from(message.encode_utf16().count())
            .unwrap()
            .to_le_bytes(),
    );
    body.extend_from_slice(&utf16(message));
    body.push(u8::try_from(server.encode_utf16().count()).unwrap());
    body.extend_from_slice(&utf16(server));
    body.push(0); // no procedure
    body.extend_from_slice(&1u32.to_le_bytes()); // line number
    let mut p = vec![0xAA];
    p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_le_bytes());
    p.extend_from_slice(&body);
    p
}

/// A final DONE token; `error` sets the error bit, `rows` the row count (with DONE_COUNT).
fn done_token(error: bool, rows: Option<u64>) -> Vec<u8> {
    let mut status = 0u16;
    if error {
        status |= 0x0002;
    }
    if rows.is_some() {
        status |= 0x0010;
    }
    let mut p = vec![0xFD];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes()); // current command
    p.extend_from_slice(&rows.unwrap_or(0).to_le_bytes());
    p
}

fn error_response(code: u32, message: &str) -> Vec<u8> {
    let mut p = error_token(code, message);
    p.extend(done_token(true, None));
    p
}

/// LOGINACK (TDS 7.4, SQL Server 2022) and DONE.
fn login_ack_response() -> Vec<u8> {
    let prog = "Microsoft SQL Server";
    let mut body = vec![1u8]; // interface: SQL
    body.extend_from_slice(&0x7400_0004_u32.to_be_bytes());
    body.push(u8::try_from(prog.encode_utf16().count()).unwrap());
    body.extend_from_slice(&utf16(prog));
    body.extend_from_slice(&0x1000_0FA0_u32.to_le_bytes());
    let mut p = vec![0xAD];
    p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_le_bytes());
    p.extend_from_slice(&body);
    p.extend(done_token(false, None));
    p
}

/// A result set of NVARCHAR(128) columns with one row, then DONE.
fn nvarchar_result(columns: &[&str], row: &[Option<&str>]) -> Vec<u8> {
    let mut p = vec![0x81]; // COLMETADATA
    p.extend_from_slice(&u16::try_from(columns.len()).unwrap().to_le_bytes());
    for name in columns {
        p.extend_from_slice(&0u32.to_le_bytes()); // user type
        p.extend_from_slice(&0x0001u16.to_le_bytes()); // flags: nullable
        p.push(0xE7); // NVARCHAR
        p.extend_from_slice(&256u16.to_le_bytes()); // max length in bytes
        p.extend_from_slice(&[0x09, 0x04, 0xD0, 0x00, 0x34]); // collation
        p.push(u8::try_from(name.encode_utf16().count()).unwrap());
        p.extend_from_slice(&utf16(name));
    }
    p.push(0xD1); // ROW
    for value in row {
        match value {
            Some(v) => {
                let bytes = utf16(v);
                p.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_le_bytes());
                p.extend_from_slice(&bytes);
            }
            None => p.extend_from_slice(&0xFFFFu16.to_le_bytes()),
        }
    }
    p.extend(done_token(false, Some(1)));
    p
}

/// The SQL text of a SQL batch payload (ALL_HEADERS skipped).
fn batch_text(payload: &[u8]) -> String {
    let headers = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    let units: Vec<u16> = payload[headers..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("UTF-16 batch")
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
                write_message(&mut sock, TABULAR_RESULT, &login_ack_response())
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
                        done_token(false, None)
                    } else if let Some(value) = upserted_value(&sql) {
                        match behaviour.upsert_error {
                            Some((code, message)) => error_response(code, message),
                            None => {
                                heartbeat = Some(value);
                                done_token(false, Some(1))
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
