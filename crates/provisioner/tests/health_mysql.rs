//! The MySQL-protocol SQL health check against a real MariaDB server, used as a wire-protocol
//! stand-in for SingleStore (SingleStore-only statements are unit-tested in the module).
//!
//! Needs `mariadbd` and `mariadb-install-db` from Debian's `mariadb-server` package (installed by
//! `.ci/run`). The server runs on a free loopback port with a data directory under the system
//! temp directory and is killed when the test ends, also on panic.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use provisioner::health::{Engine, FailureKind, SqlTarget, SqlTls, check_sql};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const ROOT_PASSWORD: &str = "Pr0be-S3cret-pw";
const READER_PASSWORD: &str = "Re4der-S3cret-pw";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds a program on PATH or in the sbin directories Debian installs servers into.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn require_program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` was not found: this test needs a real MariaDB server. Install Debian's \
             mariadb-server package (`apt-get install -y mariadb-server`; .ci/run does this)"
        )
    })
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, all PEM.
struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn new_ca() -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("self-sign the CA").pem();
    (params, key, pem)
}

fn test_pki() -> TestPki {
    let (ca_params, ca_key, ca_pem) = new_ca();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("sign the server certificate");
    TestPki {
        ca_pem,
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

/// A MariaDB server owned by the test; killed and its directory removed on drop.
struct MariaDb {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl MariaDb {
    /// Starts a server that offers TLS with `pki`'s server certificate (plain TCP still works).
    fn start(pki: &TestPki) -> Self {
        let mariadbd = require_program("mariadbd");
        let install_db = require_program("mariadb-install-db");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("health-mysql-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the MariaDB test directory");
        // The guard owns the directory from here on, so a failed start cleans up too.
        let mut server = MariaDb {
            child: None,
            dir,
            port: free_port(),
        };
        let root = running_as_root();

        let mut install = Command::new(install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", server.data_dir().display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if root {
            install.arg("--user=root");
        }
        let out = install.output().expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let tls_files = [
            ("ca.pem", &pki.ca_pem),
            ("server-cert.pem", &pki.server_cert_pem),
            ("server-key.pem", &pki.server_key_pem),
        ];
        for (name, pem) in tls_files {
            std::fs::write(server.dir.join(name), pem).expect("write a TLS file");
        }

        let mut daemon = Command::new(mariadbd);
        daemon
            .arg("--no-defaults")
            .arg(format!("--datadir={}", server.data_dir().display()))
            .arg(format!("--socket={}", server.socket().display()))
            .arg(format!("--port={}", server.port))
            .arg("--bind-address=127.0.0.1")
            // Match TCP clients by IP, so 'root'@'127.0.0.1' (with a password) is the account a
            // loopback probe logs in as, not the password-less 'root'@'localhost'.
            .arg("--skip-name-resolve")
            .arg(format!(
                "--pid-file={}",
                server.dir.join("mariadbd.pid").display()
            ))
            .arg(format!("--log-error={}", server.error_log().display()))
            .arg("--skip-log-bin")
            .arg("--innodb-buffer-pool-size=16M")
            .arg(format!("--ssl-ca={}", server.dir.join("ca.pem").display()))
            .arg(format!(
                "--ssl-cert={}",
                server.dir.join("server-cert.pem").display()
            ))
            .arg(format!(
                "--ssl-key={}",
                server.dir.join("server-key.pem").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if root {
            // mariadbd refuses to run as root unless told to.
            daemon.arg("--user=root");
        }
        server.child = Some(daemon.spawn().expect("spawn mariadbd"));
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mariadbd.sock")
    }

    fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A root connection over the Unix socket (root@localhost has no password).
    async fn admin(&self) -> Conn {
        let opts = OptsBuilder::default()
            .socket(Some(self.socket().display().to_string()))
            .user(Some("root"));
        Conn::new(opts)
            .await
            .expect("admin connection over the socket")
    }

    /// Polls until the server accepts an admin connection, failing with the error log if the
    /// process exits or `STARTUP_TIMEOUT` passes.
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "mariadbd exited with {status} during startup:\n{}",
                    self.log_tail()
                );
            }
            if self.socket().exists() {
                let opts = OptsBuilder::default()
                    .socket(Some(self.socket().display().to_string()))
                    .user(Some("root"));
                if let Ok(conn) = Conn::new(opts).await {
                    let _ = conn.disconnect().await;
                    return;
                }
            }
            assert!(
                started.elapsed() < STARTUP_TIMEOUT,
                "mariadbd did not accept connections within {STARTUP_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
