//! The SQL Server probe's login path against a scripted TDS peer on loopback: no SQL Server can
//! run here, so this fake answers PRELOGIN and LOGIN7 the way SQL Server does for a rejected
//! login and for a server that forces encryption. The read and write checks stay unit-tested.

use std::time::Duration;

use provisioner::health::{Engine, FailureKind, SqlTarget, check_sql};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const TABULAR_RESULT: u8 = 0x04;
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

/// An ERROR token for login failure 18456 followed by a DONE token with the error bit.
fn login_failed_response(user: &str) -> Vec<u8> {
    let message = format!("Login failed for user '{user}'.");
    let server = "mssql-0";
    let mut body = Vec::new();
    body.extend_from_slice(&18456u32.to_le_bytes());
    body.push(1); // state
    body.push(14); // class
    body.extend_from_slice(
        &u16::try_from(message.encode_utf16().count())
            .unwrap()
            .to_le_bytes(),
    );
    body.extend_from_slice(&utf16(&message));
    body.push(u8::try_from(server.encode_utf16().count()).unwrap());
    body.extend_from_slice(&utf16(server));
    body.push(0); // no procedure
    body.extend_from_slice(&1u32.to_le_bytes()); // line number
    let mut p = vec![0xAA];
    p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_le_bytes());
    p.extend_from_slice(&body);
    p.push(0xFD); // DONE
    p.extend_from_slice(&0x0002u16.to_le_bytes()); // status: error
    p.extend_from_slice(&0u16.to_le_bytes()); // current command
    p.extend_from_slice(&0u64.to_le_bytes()); // row count
    p
}

/// What the fake does after the PRELOGIN exchange.
#[derive(Clone, Copy)]
enum Script {
    /// Answers the LOGIN7 with login failure 18456.
    RejectLogin,
    /// Demands encryption in PRELOGIN and hangs up on the clear-text LOGIN7, like a SQL Server
    /// with forced encryption.
    RequireEncryption,
}

/// Serves one connection; returns the LOGIN7 payload the client sent.
async fn fake_sql_server(script: Script) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let (kind, _) = read_message(&mut sock).await.expect("prelogin");
        assert_eq!(kind, PRELOGIN, "the client starts with PRELOGIN");
        let encryption = match script {
            Script::RejectLogin => ENCRYPT_NOT_SUP,
            Script::RequireEncryption => ENCRYPT_REQ,
        };
        write_message(&mut sock, TABULAR_RESULT, &prelogin_response(encryption))
            .await
            .expect("prelogin response");
        let (kind, login) = read_message(&mut sock).await.expect("login7");
        assert_eq!(kind, LOGIN7, "the client logs in next");
        if let Script::RejectLogin = script {
            write_message(&mut sock, TABULAR_RESULT, &login_failed_response("sa"))
                .await
                .expect("login response");
        }
        // Dropping the socket closes the connection.
        login
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
    let login = server.await.expect("fake server");

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
