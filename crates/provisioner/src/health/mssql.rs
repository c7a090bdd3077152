//! SQL Server probe over TDS (tiberius).
//!
//! Read check: [`MSSQL_READ_QUERY`] returns the product version and the state of `master`; the
//! server is healthy for reads when `master` is `ONLINE` (not `RECOVERING`, `RECOVERY_PENDING`,
//! `SUSPECT`, `EMERGENCY` or `OFFLINE`).
//!
//! Write check: [`MSSQL_WRITE_SETUP`] creates `kubedb_system` and `kubedb_system.dbo.kv` when
//! missing (each in its own batch, so the table batch compiles after the database exists; an
//! "already exists" error from a concurrent prober counts as success), then
//! [`mssql_upsert_statement`] upserts the heartbeat row with `MERGE ... WITH (HOLDLOCK)` and
//! [`MSSQL_HEARTBEAT_READ_BACK`] reads it back. On an availability group the probe goes through
//! the primary service, so `kubedb_system` lives on the current primary (it is not part of the
//! availability group; after a failover the new primary creates its own).

use std::time::SystemTime;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{
    Failure, FailureKind, ProbeOutcome, SqlTarget, SqlTls, classify_io,
    classify_mssql_server_error, heartbeat_value, sql_string_literal, stage, verify_heartbeat,
};

/// Read check: product version and state of `master`.
pub const MSSQL_READ_QUERY: &str = "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version, \
     d.state_desc FROM sys.databases AS d WHERE d.name = N'master'";

/// Write-check setup, one batch each, idempotent.
pub const MSSQL_WRITE_SETUP: [&str; 2] = [
    "IF DB_ID(N'kubedb_system') IS NULL CREATE DATABASE [kubedb_system]",
    "IF OBJECT_ID(N'kubedb_system.dbo.kv', N'U') IS NULL \
     CREATE TABLE [kubedb_system].[dbo].[kv] (\
     [prop_key] nvarchar(128) NOT NULL PRIMARY KEY, \
     [prop_value] nvarchar(256) NOT NULL)",
];

/// Reads the heartbeat row back.
pub const MSSQL_HEARTBEAT_READ_BACK: &str =
    "SELECT [prop_value] FROM [kubedb_system].[dbo].[kv] WHERE [prop_key] = N'health_check'";

/// SQL Server errors meaning "the object already exists": 1801 (database), 2714 (table).
const ALREADY_EXISTS: [u32; 2] = [1801, 2714];

/// Upserts the heartbeat row with `value`.
pub fn mssql_upsert_statement(value: &str) -> String {
    let literal = format!("N{}", sql_string_literal(value, false));
    format!(
        "MERGE [kubedb_system].[dbo].[kv] WITH (HOLDLOCK) AS t \
         USING (SELECT N'health_check' AS prop_key, {literal} AS prop_value) AS s \
         ON t.[prop_key] = s.prop_key \
         WHEN MATCHED THEN UPDATE SET t.[prop_value] = s.prop_value \
         WHEN NOT MATCHED THEN INSERT ([prop_key], [prop_value]) VALUES (s.prop_key, s.prop_value);"
    )
}

/// The row returned by [`MSSQL_READ_QUERY`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MssqlReadRow {
    /// `SERVERPROPERTY('ProductVersion')`, e.g. `16.0.4135.4`.
    pub product_version: Option<String>,
    /// `sys.databases.state_desc` of `master`.
    pub master_state: Option<String>,
}

/// Judges the read-check row: `master` must be `ONLINE`. Returns a detail for the message.
pub fn evaluate_mssql_read(row: Option<&MssqlReadRow>) -> Result<String, Failure> {
    let Some(row) = row else {
        return Err(Failure::new(
            FailureKind::UnexpectedResult,
            "sys.databases returned no row for master",
        ));
    };
    match row.master_state.as_deref() {
        Some(state) if state.eq_ignore_ascii_case("ONLINE") => Ok(match &row.product_version {
            Some(v) => format!("server {v}"),
            None => String::new(),
        }),
        Some(state) => Err(Failure::new(
            FailureKind::ServerUnavailable,
            format!("database master is {state}, not ONLINE"),
        )),
        None => Err(Failure::new(
            FailureKind::UnexpectedResult,
            "sys.databases returned no state for master",
        )),
    }
}

/// Classifies a tiberius error. `during_login` adds a hint for connections the server drops in
/// the handshake, which is what a SQL Server that forces encryption does to a client without
/// TLS.
fn classify(err: &tiberius::error::Error, during_login: bool) -> Failure {
    use tiberius::error::Error;
    match err {
        Error::Server(token) => classify_mssql_server_error(token.code(), token.message()),
        Error::Io { kind, message } => {
            let mut failure = classify_io(*kind, message);
            if during_login && failure.kind == FailureKind::ConnectionClosed {
                failure.detail.push_str(
                    " (the server closed the connection during login; if it forces encryption \
                     (spec.tls.clientTLS: true), note that this build's SQL health check does not \
                     support TLS to SQL Server)",
                );
            }
            failure
        }
        Error::Tls(message) => Failure::new(FailureKind::Tls, message.clone()),
        Error::Routing { host, port } => Failure::new(
            FailureKind::Protocol,
            format!("the server redirected the login to {host}:{port}, which is not supported"),
        ),
        other => Failure::new(FailureKind::Protocol, other.to_string()),
    }
}

type TdsClient = Client<Compat<TcpStream>>;

fn config(target: &SqlTarget) -> Config {
    let mut config = Config::new();
    config.host(&target.host);
    config.port(target.port);
    config.authentication(AuthMethod::sql_server(&target.username, &target.password));
    config.encryption(EncryptionLevel::NotSupported);
    config.application_name("kubedb-provisioner-health");
    if let Some(database) = &target.database {
        config.database(database);
    }
    config
}

async fn connect(target: &SqlTarget) -> Result<TdsClient, Failure> {
    if let SqlTls::Verified { .. } = target.tls {
        return Err(Failure::new(
            FailureKind::Tls,
            "TLS to SQL Server is not supported by this build's SQL health check (tiberius' TLS \
             backends need aws-lc-rs or OpenSSL); use --health-check=pod-readiness",
        ));
    }
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| classify_io(e.kind(), &e.to_string()))?;
    // Best effort: a health probe sends tiny packets.
    let _ = tcp.set_nodelay(true);
    Client::connect(config(target), tcp.compat_write())
        .await
        .map_err(|e| classify(&e, true))
}

async fn first_row_strings(
    client: &mut TdsClient,
    query: &str,
    columns: usize,
) -> Result<Option<Vec<Option<String>>>, Failure> {
    let rows = client
        .simple_query(query)
        .await
        .map_err(|e| classify(&e, false))?
        .into_first_result()
        .await
        .map_err(|e| classify(&e, false))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut values = Vec::with_capacity(columns);
    for i in 0..columns {
        let value = row.try_get::<&str, _>(i).map_err(|e| classify(&e, false))?;
        values.push(value.map(str::to_owned));
    }
    Ok(Some(values))
}

async fn run_batch(client: &mut TdsClient, statement: &str) -> Result<(), tiberius::error::Error> {
    client.simple_query(statement).await?.into_results().await?;
    Ok(())
}

async fn read_check(client: &mut TdsClient) -> Result<String, Failure> {
    let row = first_row_strings(client, MSSQL_READ_QUERY, 2)
        .await?
        .map(|mut v| MssqlReadRow {
            master_state: v.pop().flatten(),
            product_version: v.pop().flatten(),
        });
    evaluate_mssql_read(row.as_ref())
}

async fn write_check(client: &mut TdsClient) -> Result<(), Failure> {
    for statement in MSSQL_WRITE_SETUP {
        if let Err(e) = run_batch(client, statement).await
            && !e.code().is_some_and(|c| ALREADY_EXISTS.contains(&c))
        {
            return Err(classify(&e, false));
        }
    }
    let value = heartbeat_value(SystemTime::now());
    run_batch(client, &mssql_upsert_statement(&value))
        .await
        .map_err(|e| classify(&e, false))?;
    let read_back = first_row_strings(client, MSSQL_HEARTBEAT_READ_BACK, 1)
        .await?
        .and_then(|mut v| v.pop().flatten());
    verify_heartbeat(&value, read_back.as_deref())
}

pub(super) async fn probe(target: &SqlTarget, deadline: Instant) -> ProbeOutcome {
    let budget = target.timeout;
    let mut client = match stage(
        deadline,
        budget,
        "connecting and logging in",
        connect(target),
    )
    .await
    {
        Ok(client) => client,
        Err(f) => return ProbeOutcome::ConnectFailed(f),
    };
    let outcome = match stage(deadline, budget, "the read check", read_check(&mut client)).await {
        Err(f) => ProbeOutcome::ReadFailed(f),
        Ok(detail) if !target.write_check => ProbeOutcome::Passed {
            write_checked: false,
            detail,
        },
        Ok(detail) => {
            match stage(
                deadline,
                budget,
                "the write check",
                write_check(&mut client),
            )
            .await
            {
                Ok(()) => ProbeOutcome::Passed {
                    write_checked: true,
                    detail,
                },
                Err(f) => ProbeOutcome::WriteFailed(f),
            }
        }
    };
    // Closing politely is best effort; the outcome is already known.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), client.close()).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_query_text() {
        assert_eq!(
            MSSQL_READ_QUERY,
            "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version, \
             d.state_desc FROM sys.databases AS d WHERE d.name = N'master'"
        );
    }

    #[test]
    fn write_statements_are_idempotent_and_target_kubedb_system() {
        assert!(MSSQL_WRITE_SETUP[0].starts_with("IF DB_ID(N'kubedb_system') IS NULL "));
        assert!(MSSQL_WRITE_SETUP[1].starts_with("IF OBJECT_ID(N'kubedb_system.dbo.kv', N'U') IS NULL CREATE TABLE [kubedb_system].[dbo].[kv] ("));
        assert!(MSSQL_WRITE_SETUP[1].contains("[prop_key] nvarchar(128) NOT NULL PRIMARY KEY"));
        assert_eq!(
            mssql_upsert_statement("kubedb-health-42"),
            "MERGE [kubedb_system].[dbo].[kv] WITH (HOLDLOCK) AS t \
             USING (SELECT N'health_check' AS prop_key, N'kubedb-health-42' AS prop_value) AS s \
             ON t.[prop_key] = s.prop_key \
             WHEN MATCHED THEN UPDATE SET t.[prop_value] = s.prop_value \
             WHEN NOT MATCHED THEN INSERT ([prop_key], [prop_value]) VALUES (s.prop_key, s.prop_value);"
        );
        assert!(mssql_upsert_statement("it's").contains("N'it''s' AS prop_value"));
        assert_eq!(
            MSSQL_HEARTBEAT_READ_BACK,
            "SELECT [prop_value] FROM [kubedb_system].[dbo].[kv] WHERE [prop_key] = N'health_check'"
        );
    }

    fn row(version: Option<&str>, state: Option<&str>) -> MssqlReadRow {
        MssqlReadRow {
            product_version: version.map(str::to_owned),
            master_state: state.map(str::to_owned),
        }
    }

    #[test]
    fn read_rows_are_judged() {
        assert_eq!(
            evaluate_mssql_read(Some(&row(Some("16.0.4135.4"), Some("ONLINE")))),
            Ok("server 16.0.4135.4".to_owned())
        );
        assert_eq!(
            evaluate_mssql_read(Some(&row(None, Some("online")))),
            Ok(String::new())
        );
        for state in [
            "RECOVERING",
            "RECOVERY_PENDING",
            "SUSPECT",
            "EMERGENCY",
            "OFFLINE",
        ] {
            let f = evaluate_mssql_read(Some(&row(Some("16.0"), Some(state)))).unwrap_err();
            assert_eq!(f.kind, FailureKind::ServerUnavailable, "{state}");
            assert_eq!(f.detail, format!("database master is {state}, not ONLINE"));
        }
        let f = evaluate_mssql_read(None).unwrap_err();
        assert_eq!(f.kind, FailureKind::UnexpectedResult);
        let f = evaluate_mssql_read(Some(&row(Some("16.0"), None))).unwrap_err();
        assert_eq!(f.detail, "sys.databases returned no state for master");
    }

    #[test]
    fn tiberius_errors_are_classified() {
        use tiberius::error::{Error, IoErrorKind};
        let refused = Error::Io {
            kind: IoErrorKind::ConnectionRefused,
            message: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            classify(&refused, true).kind,
            FailureKind::ConnectionRefused
        );

        let dropped = Error::Io {
            kind: IoErrorKind::UnexpectedEof,
            message: "early eof".into(),
        };
        let f = classify(&dropped, true);
        assert_eq!(f.kind, FailureKind::ConnectionClosed);
        assert!(f.detail.contains("clientTLS"), "{}", f.detail);
        assert!(!classify(&dropped, false).detail.contains("clientTLS"));

        let tls = Error::Tls("handshake failed".into());
        assert_eq!(classify(&tls, true).kind, FailureKind::Tls);

        let routing = Error::Routing {
            host: "other".into(),
            port: 1433,
        };
        assert_eq!(
            classify(&routing, true).detail,
            "the server redirected the login to other:1433, which is not supported"
        );
        let protocol = Error::Protocol("bad token".into());
        assert_eq!(classify(&protocol, false).kind, FailureKind::Protocol);
    }

    #[test]
    fn login_config_uses_sql_authentication_without_tls() {
        let mut target = SqlTarget::new(super::super::Engine::SqlServer, "db", 1433, "sa", "pw");
        target.database = Some("master".into());
        let config = config(&target);
        assert_eq!(config.get_addr(), "db:1433");
    }

    #[tokio::test]
    async fn tls_is_refused_before_connecting() {
        let mut target =
            SqlTarget::new(super::super::Engine::SqlServer, "db.invalid", 1, "sa", "pw");
        target.tls = SqlTls::Verified { ca_pem: Vec::new() };
        let Err(f) = connect(&target).await else {
            panic!("TLS must be refused");
        };
        assert_eq!(f.kind, FailureKind::Tls);
        assert!(f.detail.contains("pod-readiness"));
    }
}
