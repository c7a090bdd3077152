//! SQL health checks (`--health-check=sql`).
//!
//! One probe connects to the database through its primary service with the credentials of the
//! auth secret and runs, in order:
//!
//! 1. **connect** (login included): failure means the database is not accepting connections
//!    (`AcceptingConnection` False);
//! 2. **read check** (`DatabaseReadAccess`): SQL Server reads the state of `master` from
//!    `sys.databases` and requires `ONLINE`; SingleStore runs `SELECT 1`, identifies the server
//!    and, for a SingleStore cluster (aggregator/leaf topology), requires every aggregator and
//!    leaf in `SHOW AGGREGATORS` / `SHOW LEAVES` to be online;
//! 3. **write check** (`DatabaseWriteAccess`, unless `spec.healthChecker.disableWriteCheck`):
//!    upserts a heartbeat row into the table `kubedb_system.kv` (key `health_check`, value a
//!    fresh token), creating the database and table when missing, then reads the row back and
//!    compares the value. The statements are idempotent and safe to run concurrently.
//!
//! The whole probe is bounded by `timeoutSeconds`; a stage that runs out of time fails with
//! [`FailureKind::Timeout`]. Messages never contain the password.
//!
//! [`FailureTracker`] applies `failureThreshold` across probes.
//!
//! Transport security: SingleStore connections can use TLS (rustls with the ring provider) with
//! a CA bundle ([`SqlTls::Verified`]). SQL Server connections do not support TLS in this build:
//! tiberius' TLS backends need the aws-lc-rs or OpenSSL crypto libraries, which the workspace
//! keeps out (ring only). With the default `clientTLS: false` SQL Server accepts clients that do
//! not encrypt; a SQL Server that forces encryption is reported as a clear failure. Note that such
//! an unencrypted TDS login carries the `sa` password in clear text over the cluster network
//! (pod to service); deployments that cannot accept that should use
//! `--health-check=pod-readiness` for SQL Server.

mod failure;
mod mssql;
mod singlestore;
mod tracker;

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::common::HealthCheckSpec;
use tokio::time::Instant;

pub use failure::{
    Failure, FailureKind, classify_io, classify_mssql_server_error, classify_mysql_server_error,
    redact,
};
pub use mssql::{
    MSSQL_HEARTBEAT_READ_BACK, MSSQL_READ_QUERY, MSSQL_WRITE_SETUP, MssqlReadRow,
    evaluate_mssql_read, mssql_upsert_statement,
};
pub use singlestore::{
    MYSQL_FLAVOR_QUERY, MYSQL_HEARTBEAT_READ_BACK, MYSQL_PING_QUERY, MYSQL_WRITE_SETUP, NodeRole,
    NodeStatus, SHOW_AGGREGATORS, SHOW_LEAVES, ServerFlavor, evaluate_nodes,
    mysql_upsert_statement, parse_nodes, should_check_topology,
};
pub use tracker::{FailureTracker, Verdict};

/// Database created by the write check.
pub const SYSTEM_DATABASE: &str = "kubedb_system";
/// Table of the write check (`prop_key` primary key, `prop_value`).
pub const HEARTBEAT_TABLE: &str = "kv";
/// Key of the heartbeat row.
pub const HEARTBEAT_KEY: &str = "health_check";

/// The database engine behind a [`SqlTarget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Microsoft SQL Server (TDS, via tiberius).
    SqlServer,
    /// SingleStore (MySQL wire protocol, via mysql_async).
    SingleStore {
        /// True for the aggregator/leaf topology: the read check then also requires every
        /// aggregator and leaf to be online, when the server identifies as SingleStore.
        cluster: bool,
    },
}

impl Engine {
    /// Human-readable engine name used in messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Engine::SqlServer => "SQL Server",
            Engine::SingleStore { .. } => "SingleStore",
        }
    }
}

/// Transport security of the health-check connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SqlTls {
    /// Plain TCP.
    #[default]
    Disabled,
    /// TLS, verifying the server certificate against `ca_pem` (PEM, one or more certificates)
    /// and the target host name. Supported for SingleStore only (see the module docs).
    Verified {
        /// The CA bundle, e.g. `ca.crt` of the server certificate secret.
        ca_pem: Vec<u8>,
    },
}

/// Effective probe settings from `spec.healthChecker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between probes.
    pub period: Duration,
    /// Bound of one probe.
    pub timeout: Duration,
    /// Consecutive failures before the database counts as not ready (at least 1).
    pub failure_threshold: u32,
    /// Whether the write check runs.
    pub write_check: bool,
}

impl ProbeSettings {
    /// Reads the settings, applying the CRD defaults (10 s, 10 s, 1) and clamping values below 1
    /// to 1 (a zero or negative period or threshold would make no sense).
    pub fn from_spec(spec: &HealthCheckSpec) -> Self {
        let positive = |v: i32| u32::try_from(v).unwrap_or(0).max(1);
        Self {
            period: Duration::from_secs(u64::from(positive(spec.period_seconds()))),
            timeout: Duration::from_secs(u64::from(positive(spec.timeout_seconds()))),
            failure_threshold: positive(spec.failure_threshold()),
            write_check: !spec.disable_write_check(),
        }
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self::from_spec(&HealthCheckSpec::default())
    }
}

/// Where and how to probe.
#[derive(Clone, PartialEq, Eq)]
pub struct SqlTarget {
    /// Engine and topology.
    pub engine: Engine,
    /// Host name or IP, usually the primary service `<db>.<namespace>.svc`.
    pub host: String,
    /// TCP port (1433 for SQL Server, 3306 for SingleStore).
    pub port: u16,
    /// Login name (`sa` or `root`).
    pub username: String,
    /// Password; never logged or put in messages.
    pub password: String,
    /// Bound of the whole probe.
    pub timeout: Duration,
    /// Whether the write check runs.
    pub write_check: bool,
    /// Database to open at login (SQL Server: the login's default when `None`; SingleStore:
    /// none).
    pub database: Option<String>,
    /// Transport security.
    pub tls: SqlTls,
}

impl SqlTarget {
    /// A target with the default timeout (10 s), the write check on, no database and no TLS.
    pub fn new(
        engine: Engine,
        host: impl Into<String>,
        port: u16,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        let defaults = ProbeSettings::default();
        Self {
            engine,
            host: host.into(),
            port,
            username: username.into(),
            password: password.into(),
            timeout: defaults.timeout,
            write_check: defaults.write_check,
            database: None,
            tls: SqlTls::Disabled,
        }
    }

    /// Applies the timeout and write-check switch of `settings`.
    pub fn with_settings(mut self, settings: &ProbeSettings) -> Self {
        self.timeout = settings.timeout;
        self.write_check = settings.write_check;
        self
    }

    /// `host:port`, bracketing IPv6 literals.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for SqlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTarget")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("write_check", &self.write_check)
            .field("database", &self.database)
            .field(
                "tls",
                &match self.tls {
                    SqlTls::Disabled => "disabled",
                    SqlTls::Verified { .. } => "verified",
                },
            )
            .finish()
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Connect and login succeeded.
    pub accepting_connection: bool,
    /// Read check result; `None` when it did not run (no connection).
    pub read_ok: Option<bool>,
    /// Write check result; `None` when disabled or not reached (no connection, read failed).
    pub write_ok: Option<bool>,
    /// Category of the first failure, if any.
    pub failure: Option<FailureKind>,
    /// One sentence for conditions and events; never contains the password.
    pub message: String,
}

impl HealthReport {
    /// Connected, the read check passed, and the write check passed or did not run.
    pub fn is_healthy(&self) -> bool {
        self.accepting_connection && self.read_ok == Some(true) && self.write_ok != Some(false)
    }
}

/// How far a probe got; turned into a [`HealthReport`] by [`HealthReport::from_outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Connect or login failed.
    ConnectFailed(Failure),
    /// Connected; the read check failed (the write check was not attempted).
    ReadFailed(Failure),
    /// Connected and read; the write check failed.
    WriteFailed(Failure),
    /// Every check that ran passed.
    Passed {
        /// Whether the write check ran.
        write_checked: bool,
        /// Extra facts for the message (server version, topology summary).
        detail: String,
    },
}

impl HealthReport {
    /// Builds the report for `outcome` of a probe of `engine` at `endpoint`, redacting
    /// `password` from the message.
    pub fn from_outcome(
        engine: Engine,
        endpoint: &str,
        password: &str,
        outcome: ProbeOutcome,
    ) -> Self {
        let name = engine.display_name();
        let (accepting_connection, read_ok, write_ok, failure, message) = match outcome {
            ProbeOutcome::ConnectFailed(f) => (
                false,
                None,
                None,
                Some(f.kind),
                format!("{name} at {endpoint} is not accepting connections: {f}"),
            ),
            ProbeOutcome::ReadFailed(f) => (
                true,
                Some(false),
                None,
                Some(f.kind),
                format!(
                    "{name} at {endpoint} accepted the connection but the read check failed: {f}"
                ),
            ),
            ProbeOutcome::WriteFailed(f) => (
                true,
                Some(true),
                Some(false),
                Some(f.kind),
                format!(
                    "{name} at {endpoint} passed the read check but the write check failed: {f}"
                ),
            ),
            ProbeOutcome::Passed {
                write_checked,
                detail,
            } => {
                let checks = if write_checked {
                    "read and write checks passed"
                } else {
                    "read check passed (write check disabled)"
                };
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                };
                (
                    true,
                    Some(true),
                    write_checked.then_some(true),
                    None,
                    format!("{name} at {endpoint} is accepting connections; {checks}{detail}"),
                )
            }
        };
        Self {
            accepting_connection,
            read_ok,
            write_ok,
            failure,
            message: redact(&message, password),
        }
    }
}

/// Runs one probe against `target`, bounded by `target.timeout`.
pub async fn check_sql(target: &SqlTarget) -> HealthReport {
    let deadline = Instant::now() + target.timeout;
    let outcome = match target.engine {
        Engine::SqlServer => mssql::probe(target, deadline).await,
        Engine::SingleStore { .. } => singlestore::probe(target, deadline).await,
    };
    let report =
        HealthReport::from_outcome(target.engine, &target.endpoint(), &target.password, outcome);
    tracing::debug!(
        endpoint = %target.endpoint(),
        healthy = report.is_healthy(),
        message = %report.message,
        "SQL health check finished"
    );
    report
}

/// A token that identifies one write check: the probe's wall-clock time in nanoseconds since the
/// Unix epoch, prefixed so the row's origin is obvious to a human reading the table.
pub fn heartbeat_value(now: SystemTime) -> String {
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("kubedb-health-{nanos}")
}

/// Compares the heartbeat read back after the upsert with the value written.
pub fn verify_heartbeat(written: &str, read_back: Option<&str>) -> Result<(), Failure> {
    match read_back {
        Some(v) if v == written => Ok(()),
        Some(v) => Err(Failure::new(
            FailureKind::UnexpectedResult,
            format!(
                "the heartbeat row in {SYSTEM_DATABASE}.{HEARTBEAT_TABLE} holds {v:?} after writing {written:?}"
            ),
        )),
        None => Err(Failure::new(
            FailureKind::UnexpectedResult,
            format!(
                "the heartbeat row {HEARTBEAT_KEY:?} is missing from {SYSTEM_DATABASE}.{HEARTBEAT_TABLE} after the upsert"
            ),
        )),
    }
}

/// Runs `fut` until `deadline`; on expiry fails with [`FailureKind::Timeout`] naming `stage`
/// and the probe's `budget`.
pub(crate) async fn stage<T>(
    deadline: Instant,
    budget: Duration,
    stage: &str,
    fut: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(result) => result,
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            format!("{stage} did not finish within the {budget:?} health-check timeout"),
        )),
    }
}

/// Quotes `value` as a SQL string literal, doubling single quotes; with `escape_backslash`
/// (MySQL protocol servers) backslashes are doubled too.
pub(crate) fn sql_string_literal(value: &str, escape_backslash: bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if escape_backslash => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_settings_defaults_and_clamping() {
        assert_eq!(
            ProbeSettings::default(),
            ProbeSettings {
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(10),
                failure_threshold: 1,
                write_check: true,
            }
        );
        let spec = HealthCheckSpec {
            period_seconds: Some(30),
            timeout_seconds: Some(0),
            failure_threshold: Some(-2),
            disable_write_check: Some(true),
        };
        assert_eq!(
            ProbeSettings::from_spec(&spec),
            ProbeSettings {
                period: Duration::from_secs(30),
                timeout: Duration::from_secs(1),
                failure_threshold: 1,
                write_check: false,
            }
        );
        let spec = HealthCheckSpec {
            failure_threshold: Some(3),
            ..HealthCheckSpec::default()
        };
        assert_eq!(ProbeSettings::from_spec(&spec).failure_threshold, 3);
    }

    fn target() -> SqlTarget {
        SqlTarget::new(Engine::SqlServer, "db.demo.svc", 1433, "sa", "Pa55w0rd!x")
    }

    #[test]
    fn target_debug_hides_the_password() {
        let debug = format!("{:?}", target());
        assert!(!debug.contains("Pa55w0rd!x"), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert!(debug.contains("db.demo.svc"));
    }

    #[test]
    fn target_settings_and_endpoint() {
        let settings = ProbeSettings {
            period: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            failure_threshold: 2,
            write_check: false,
        };
        let t = target().with_settings(&settings);
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert!(!t.write_check);
        assert_eq!(t.endpoint(), "db.demo.svc:1433");
        let mut v6 = target();
        v6.host = "::1".into();
        assert_eq!(v6.endpoint(), "[::1]:1433");
    }

    #[test]
    fn reports_from_outcomes() {
        let engine = Engine::SingleStore { cluster: false };
        let cases = [
            (
                ProbeOutcome::ConnectFailed(Failure::new(
                    FailureKind::ConnectionRefused,
                    "Connection refused (os error 111)",
                )),
                (false, None, None, Some(FailureKind::ConnectionRefused)),
                "SingleStore at h:3306 is not accepting connections: connection refused: Connection refused (os error 111)",
            ),
            (
                ProbeOutcome::ReadFailed(Failure::new(FailureKind::Query, "error 1146: no table")),
                (true, Some(false), None, Some(FailureKind::Query)),
                "SingleStore at h:3306 accepted the connection but the read check failed: query failed: error 1146: no table",
            ),
            (
                ProbeOutcome::WriteFailed(Failure::new(
                    FailureKind::ServerUnavailable,
                    "error 1290: read-only",
                )),
                (
                    true,
                    Some(true),
                    Some(false),
                    Some(FailureKind::ServerUnavailable),
                ),
                "SingleStore at h:3306 passed the read check but the write check failed: server unavailable: error 1290: read-only",
            ),
            (
                ProbeOutcome::Passed {
                    write_checked: true,
                    detail: "server 8.9.1".into(),
                },
                (true, Some(true), Some(true), None),
                "SingleStore at h:3306 is accepting connections; read and write checks passed (server 8.9.1)",
            ),
            (
                ProbeOutcome::Passed {
                    write_checked: false,
                    detail: String::new(),
                },
                (true, Some(true), None, None),
                "SingleStore at h:3306 is accepting connections; read check passed (write check disabled)",
            ),
        ];
        for (outcome, (accepting, read, write, failure), message) in cases {
            let r = HealthReport::from_outcome(engine, "h:3306", "secret", outcome);
            assert_eq!(r.accepting_connection, accepting, "{message}");
            assert_eq!(r.read_ok, read, "{message}");
            assert_eq!(r.write_ok, write, "{message}");
            assert_eq!(r.failure, failure, "{message}");
            assert_eq!(r.message, message);
            assert_eq!(r.is_healthy(), failure.is_none());
        }
    }

    #[test]
    fn report_messages_never_carry_the_password() {
        let r = HealthReport::from_outcome(
            Engine::SqlServer,
            "h:1433",
            "hunter22",
            ProbeOutcome::ConnectFailed(Failure::new(
                FailureKind::AuthenticationFailed,
                "bad password hunter22",
            )),
        );
        assert!(!r.message.contains("hunter22"), "{}", r.message);
        assert!(r.message.contains("<redacted>"));
    }

    #[test]
    fn heartbeat_values_and_verification() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(heartbeat_value(t), "kubedb-health-1700000000123456789");
        assert_eq!(verify_heartbeat("a", Some("a")), Ok(()));
        let stale = verify_heartbeat("b", Some("a")).unwrap_err();
        assert_eq!(stale.kind, FailureKind::UnexpectedResult);
        assert!(stale.detail.contains("\"a\"") && stale.detail.contains("\"b\""));
        let missing = verify_heartbeat("b", None).unwrap_err();
        assert!(missing.detail.contains("missing from kubedb_system.kv"));
    }

    #[test]
    fn string_literals_are_escaped() {
        assert_eq!(sql_string_literal("plain", true), "'plain'");
        assert_eq!(sql_string_literal("o'hara", false), "'o''hara'");
        assert_eq!(sql_string_literal(r"a\b", true), r"'a\\b'");
        assert_eq!(sql_string_literal(r"a\b", false), r"'a\b'");
    }

    #[tokio::test]
    async fn stage_times_out_with_a_clear_message() {
        let budget = Duration::from_millis(20);
        let result: Result<(), Failure> = stage(
            Instant::now() + budget,
            budget,
            "connecting",
            std::future::pending(),
        )
        .await;
        let f = result.unwrap_err();
        assert_eq!(f.kind, FailureKind::Timeout);
        assert_eq!(
            f.detail,
            "connecting did not finish within the 20ms health-check timeout"
        );
    }
}
