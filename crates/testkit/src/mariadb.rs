//! A MariaDB server owned by a test, as a real MySQL-protocol peer: the provisioner's SQL health
//! check and the db-agent's SingleStore backend are tested against it (authentication, TLS,
//! error codes), SingleStore-only statements elsewhere.
//!
//! Needs `mariadbd` and `mariadb-install-db` from Debian's `mariadb-server` package (installed by
//! `.ci/run`). The server runs on a free loopback port with a data directory under the system
//! temp directory and is killed when its guard is dropped, also on panic.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::{Conn, OptsBuilder};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// How long the server may take to accept connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds a program on PATH or in the sbin directories Debian installs servers into.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

pub fn require_program(name: &str) -> PathBuf {
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
pub struct TestPki {
    /// The CA certificate.
    pub ca_pem: String,
    /// The server certificate (SAN 127.0.0.1).
    pub server_cert_pem: String,
    /// Its key.
    pub server_key_pem: String,
}

/// A fresh self-signed CA: its parameters, key and PEM.
pub fn new_ca() -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("self-sign the CA").pem();
    (params, key, pem)
}

/// A fresh CA and a server certificate for 127.0.0.1 signed by it.
pub fn test_pki() -> TestPki {
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
pub struct MariaDb {
    child: Option<Child>,
    dir: PathBuf,
    /// Its loopback TCP port.
    pub port: u16,
}

impl MariaDb {
    /// Starts a server that offers TLS with `pki`'s server certificate (plain TCP still works).
    pub fn start(pki: &TestPki) -> Self {
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
    pub async fn admin(&self) -> Conn {
        let opts = OptsBuilder::default()
            .socket(Some(self.socket().display().to_string()))
            .user(Some("root"));
        Conn::new(opts)
            .await
            .expect("admin connection over the socket")
    }

    /// Polls until the server accepts an admin connection, failing with the error log if the
    /// process exits or `STARTUP_TIMEOUT` passes.
    pub async fn wait_ready(&mut self) {
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

    /// Kills the server (its port then refuses connections).
    pub fn stop(&mut self) {
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
