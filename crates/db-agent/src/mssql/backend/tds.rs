//! [`Backend`] over TDS to the local SQL Server (tiberius), as `sa` on `127.0.0.1:1433`.
//!
//! No TLS: the workspace builds tiberius without a TLS backend, because tiberius' rustls path
//! pulls in aws-lc-rs next to the workspace's ring provider. The connection never leaves the pod
//! (loopback), so the login's password does not cross the network; `EncryptionLevel::NotSupported`
//! is set explicitly. A server configured with `network.forceencryption = 1` will refuse the
//! login, and the agent then reports SQL Server as unreachable.

use std::time::Duration;

use tiberius::{AuthMethod, Client, ColumnData, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{AgConfig, Backend, BackendError, Row, Value, parse_ag, parse_setup};
use crate::mssql::decide::{InstanceSetup, LocalState};
use crate::mssql::tsql::{self, ReplicaSpec};

/// Where and as whom to log in.
#[derive(Clone)]
pub struct TdsTarget {
    /// Host (`127.0.0.1` in a pod).
    pub host: String,
    /// Port (1433).
    pub port: u16,
    /// Login (`sa`).
    pub username: String,
    /// Its password.
    pub password: String,
    /// Bound on connecting and on each query.
    pub timeout: Duration,
    /// Bound on each statement (DDL can take longer than a query, but the loop waits for it:
    /// keep it well inside the renew deadline, or a busy primary fences itself).
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for TdsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TdsTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

type TdsClient = Client<Compat<TcpStream>>;

/// The production backend. Keeps one connection and opens a new one after a failure.
pub struct TdsBackend {
    target: TdsTarget,
    config: AgConfig,
    client: Option<TdsClient>,
    warned_server_name: bool,
}

impl TdsBackend {
    /// A backend for `config`'s AG on `target`. Connects lazily.
    pub fn new(target: TdsTarget, config: AgConfig) -> Self {
        Self {
            target,
            config,
            client: None,
            warned_server_name: false,
        }
    }

    fn tiberius_config(&self) -> Config {
        let mut config = Config::new();
        config.host(&self.target.host);
        config.port(self.target.port);
        config.authentication(AuthMethod::sql_server(
            &self.target.username,
            &self.target.password,
        ));
        config.encryption(EncryptionLevel::NotSupported);
        config.application_name("kubedb-db-agent");
        config.database("master");
        config
    }

    async fn connect(&self) -> Result<TdsClient, BackendError> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        Client::connect(self.tiberius_config(), tcp.compat_write())
            .await
            .map_err(|e| match classify(e) {
                // A refused login leaves the agent unable to see anything, and says why.
                BackendError::Refused { code, message } => {
                    BackendError::LoginRefused { code, message }
                }
                other => other,
            })
    }

    /// Runs one batch within `timeout` and returns the rows of each result set.
    async fn batch(&mut self, sql: &str, timeout: Duration) -> Result<Vec<Vec<Row>>, BackendError> {
        if self.client.is_none() {
            let client = tokio::time::timeout(self.target.timeout, self.connect())
                .await
                .map_err(|_| BackendError::Unreachable("timed out connecting".into()))??;
            self.client = Some(client);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(BackendError::Unreachable("no connection".into()));
        };
        let result = tokio::time::timeout(timeout, async {
            let stream = client.simple_query(sql).await?;
            stream.into_results().await
        })
        .await;
        match result {
            Ok(Ok(results)) => results
                .into_iter()
                .map(|rows| rows.iter().map(convert_row).collect())
                .collect(),
            Ok(Err(err)) => {
                let err = classify(err);
                if !matches!(err, BackendError::Refused { .. }) {
                    self.client = None;
                }
                Err(err)
            }
            Err(_) => {
                // The connection is in an unknown state after an abandoned batch.
                self.client = None;
                Err(BackendError::Unreachable(format!(
                    "no answer within {timeout:?}"
                )))
            }
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Row>, BackendError> {
        let timeout = self.target.timeout;
        Ok(self
            .batch(sql, timeout)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), BackendError> {
        tracing::info!(statement = %redact(sql), "executing");
        let timeout = self.target.statement_timeout;
        self.batch(sql, timeout).await.map(|_| ())
    }

    async fn resume_all(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let mut first = None;
        for db in databases {
            if let Err(err) = self.execute(&tsql::resume_database(db)).await {
                tracing::warn!(database = %db, error = %err, "resume failed");
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Statements carrying secrets are logged without them.
fn redact(sql: &str) -> String {
    match sql.find("PASSWORD") {
        Some(at) => format!("{} PASSWORD ... (redacted)", &sql[..at].trim_end()),
        None => sql.to_owned(),
    }
}

fn classify(err: tiberius::error::Error) -> BackendError {
    use tiberius::error::Error;
    match err {
        Error::Server(token) => BackendError::Refused {
            code: token.code(),
            message: token.message().to_owned(),
        },
        Error::Io { message, .. } => BackendError::Unreachable(message),
        Error::Tls(message) => BackendError::Unreachable(format!("TLS: {message}")),
        other => BackendError::Protocol(other.to_string()),
    }
}

fn convert_row(row: &tiberius::Row) -> Result<Row, BackendError> {
    row.cells()
        .map(|(column, data)| match data {
            ColumnData::U8(v) => Ok(v.map_or(Value::Null, |v| Value::Int(i64::from(v)))),
            ColumnData::I16(v) => Ok(v.map_or(Value::Null, |v| Value::Int(i64::from(v)))),
            ColumnData::I32(v) => Ok(v.map_or(Value::Null, |v| Value::Int(i64::from(v)))),
            ColumnData::I64(v) => Ok(v.map_or(Value::Null, Value::Int)),
            ColumnData::Bit(v) => Ok(v.map_or(Value::Null, |v| Value::Int(i64::from(v)))),
            ColumnData::String(v) => Ok(v
                .as_ref()
                .map_or(Value::Null, |s| Value::Str(s.to_string()))),
            other => Err(BackendError::Protocol(format!(
                "column {} has an unexpected type ({other:?})",
                column.name()
            ))),
        })
        .collect()
}

impl Backend for TdsBackend {
    async fn observe(&mut self) -> Result<LocalState, BackendError> {
        let setup_rows = self.query(&tsql::setup_query(&self.config.names)).await?;
        let (server_name, setup) = parse_setup(&setup_rows)?;
        if !self.warned_server_name && server_name.as_deref() != Some(&self.config.replica.name) {
            self.warned_server_name = true;
            tracing::warn!(
                server_name = server_name.as_deref().unwrap_or("NULL"),
                replica = %self.config.replica.name,
                "@@SERVERNAME differs from the pod name; the AG names replicas by pod name"
            );
        }
        let ag_rows = self.query(&tsql::ag_query(&self.config.ag)).await?;
        if ag_rows.is_empty() {
            return Ok(LocalState { setup, ag: None });
        }
        let replicas = self.query(&tsql::replicas_query(&self.config.ag)).await?;
        let databases = self.query(&tsql::databases_query(&self.config.ag)).await?;
        Ok(LocalState {
            setup,
            ag: parse_ag(&ag_rows, &replicas, &databases)?,
        })
    }

    async fn setup_instance(&mut self, have: InstanceSetup) -> Result<(), BackendError> {
        let names = self.config.names.clone();
        let secrets = self.config.secrets.clone();
        if !have.master_key {
            self.execute(&tsql::create_master_key(&secrets.master_key_password))
                .await?;
        }
        if !have.login {
            self.execute(&tsql::create_login(&names.login, &secrets.login_password))
                .await?;
        }
        if !have.user {
            self.execute(&tsql::create_user(&names.user, &names.login))
                .await?;
        }
        if !have.certificate {
            self.execute(&tsql::create_certificate(
                &names.certificate,
                &names.user,
                &secrets.certificate,
            ))
            .await?;
        }
        if !have.endpoint {
            self.execute(&tsql::create_endpoint(
                &names.endpoint,
                self.config.endpoint_port,
                &names.certificate,
            ))
            .await?;
        }
        if !have.endpoint_started {
            self.execute(&tsql::start_endpoint(&names.endpoint)).await?;
        }
        if !have.connect_granted {
            self.execute(&tsql::grant_connect_on_endpoint(
                &names.endpoint,
                &names.login,
            ))
            .await?;
        }
        Ok(())
    }

    async fn create_ag(&mut self) -> Result<(), BackendError> {
        let sql = tsql::create_availability_group(&self.config.ag, &self.config.replica);
        self.execute(&sql).await
    }

    async fn add_replica(&mut self, replica: &ReplicaSpec) -> Result<(), BackendError> {
        let sql = tsql::add_replica(&self.config.ag, replica);
        self.execute(&sql).await
    }

    async fn join_ag(&mut self) -> Result<(), BackendError> {
        let sql = tsql::join(&self.config.ag);
        self.execute(&sql).await
    }

    async fn grant_create_any_database(&mut self) -> Result<(), BackendError> {
        let sql = tsql::grant_create_any_database(&self.config.ag);
        self.execute(&sql).await
    }

    async fn promote(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let sql = tsql::force_failover(&self.config.ag);
        self.execute(&sql).await?;
        self.resume_all(databases).await
    }

    async fn demote(&mut self) -> Result<(), BackendError> {
        let sql = tsql::set_role_secondary(&self.config.ag);
        match self.execute(&sql).await {
            Err(BackendError::Refused { code, message }) => {
                tracing::warn!(code, %message, "SET (ROLE = SECONDARY) refused; taking the AG offline");
                let sql = tsql::offline(&self.config.ag);
                self.execute(&sql).await
            }
            other => other,
        }
    }

    async fn follow_new_primary(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let sql = tsql::set_role_secondary(&self.config.ag);
        if let Err(err) = self.execute(&sql).await {
            match err {
                BackendError::Refused { .. } => {
                    tracing::info!(error = %err, "SET (ROLE = SECONDARY) refused; resuming anyway");
                }
                other => return Err(other),
            }
        }
        self.resume_all(databases).await
    }

    async fn resume_databases(&mut self, databases: &[String]) -> Result<(), BackendError> {
        self.resume_all(databases).await
    }

    async fn set_required_synchronized_secondaries(
        &mut self,
        count: u32,
    ) -> Result<(), BackendError> {
        let sql = tsql::set_required_synchronized_secondaries(&self.config.ag, count);
        self.execute(&sql).await
    }

    async fn add_database(&mut self, database: &str) -> Result<(), BackendError> {
        self.execute(&tsql::create_database_if_missing(database))
            .await?;
        self.execute(&tsql::set_recovery_full(database)).await?;
        self.execute(&tsql::backup_database_to_null(database))
            .await?;
        let sql = tsql::add_database(&self.config.ag, database);
        self.execute(&sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_logs_and_debug_output() {
        assert_eq!(
            redact(&tsql::create_master_key("s3cret")),
            "CREATE MASTER KEY ENCRYPTION BY PASSWORD ... (redacted)"
        );
        assert_eq!(
            redact(&tsql::join("ag")),
            "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)"
        );
        let target = TdsTarget {
            host: "127.0.0.1".into(),
            port: 1433,
            username: "sa".into(),
            password: "s3cret".into(),
            timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(4),
        };
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
