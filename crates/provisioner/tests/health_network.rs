//! Network failure modes of the SQL health check for both engines, against loopback sockets:
//! a port nothing listens on (refused) and a listener that accepts but never answers (timeout).

use std::time::{Duration, Instant};

use provisioner::health::{Engine, FailureKind, SqlTarget, check_sql};
use tokio::net::TcpListener;

const ENGINES: [Engine; 2] = [Engine::SqlServer, Engine::SingleStore { cluster: false }];

/// A loopback port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Accepts connections and holds them open without ever sending a byte.
async fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

#[tokio::test]
async fn refused_connections_are_reported_as_not_accepting() {
    let port = closed_port().await;
    for engine in ENGINES {
        let target = SqlTarget::new(engine, "127.0.0.1", port, "sa", "Secr3t-pw");
        let report = check_sql(&target).await;
        assert!(!report.accepting_connection, "{report:?}");
        assert_eq!(report.read_ok, None);
        assert_eq!(report.write_ok, None);
        assert_eq!(
            report.failure,
            Some(FailureKind::ConnectionRefused),
            "{report:?}"
        );
        let expected = format!(
            "{} at 127.0.0.1:{port} is not accepting connections: connection refused",
            engine.display_name()
        );
        assert!(report.message.starts_with(&expected), "{}", report.message);
    }
}

#[tokio::test]
async fn silent_servers_time_out_within_the_budget() {
    let port = black_hole().await;
    for engine in ENGINES {
        let mut target = SqlTarget::new(engine, "127.0.0.1", port, "sa", "Secr3t-pw");
        target.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let report = check_sql(&target).await;
        let elapsed = started.elapsed();
        assert!(!report.accepting_connection, "{report:?}");
        assert_eq!(report.failure, Some(FailureKind::Timeout), "{report:?}");
        assert!(
            report.message.ends_with(
                "timed out: connecting and logging in did not finish within the 300ms health-check timeout"
            ),
            "{}",
            report.message
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "the probe must respect its timeout, took {elapsed:?}"
        );
    }
}
