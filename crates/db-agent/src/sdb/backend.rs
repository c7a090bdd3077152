//! The agent's view of its own SingleStore node, over the MySQL protocol (mysql_async) on the
//! pod's own address. One connection, kept between rounds and opened again after any error.

use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use thiserror::Error;

use super::decide::{NodeKind, NodeState};
use super::sql::{self, Table};

/// Why a backend call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdbError {
    /// No connection.
    #[error("cannot reach SingleStore: {0}")]
    Unreachable(String),
    /// The node refused the agent's login.
    #[error("SingleStore refused the login (error {code}): {message}")]
    LoginRefused {
        /// Error number (1045).
        code: u16,
        /// Message text.
        message: String,
    },
    /// The node answered a statement with an error.
    #[error("SingleStore error {code}: {message}")]
    Refused {
        /// Error number.
        code: u16,
        /// Message text.
        message: String,
    },
    /// An answer of an unexpected shape.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// The agent's side of its node. Every method is safe to repeat after a failure.
pub trait SdbBackend: Send {
    /// Reads the node: version, cluster membership as it knows it, databases.
    fn observe(
        &mut self,
        kind: NodeKind,
    ) -> impl Future<Output = Result<NodeState, SdbError>> + Send;
    /// Runs one cluster statement (built by [`sql`]).
    fn execute(&mut self, statement: &str) -> impl Future<Output = Result<(), SdbError>> + Send;
}

/// Where and how to log in.
#[derive(Clone)]
pub struct Target {
    /// The node's address (the pod IP, from inside the pod).
    pub host: String,
    /// 3306.
    pub port: u16,
    /// `ROOT_USERNAME`.
    pub username: String,
    /// `ROOT_PASSWORD`.
    pub password: String,
    /// Bound on connecting and on each statement.
    pub timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The production backend.
pub struct MysqlBackend {
    target: Target,
    conn: Option<Conn>,
}

impl MysqlBackend {
    /// A backend that connects on first use.
    pub fn new(target: Target) -> Self {
        Self { target, conn: None }
    }

    async fn conn(&mut self) -> Result<&mut Conn, SdbError> {
        if self.conn.is_none() {
            let opts = OptsBuilder::default()
                .ip_or_hostname(self.target.host.clone())
                .tcp_port(self.target.port)
                .user(Some(self.target.username.clone()))
                .pass(Some(self.target.password.clone()))
                .prefer_socket(false)
                .stmt_cache_size(0_usize)
                // Known values: no query for them after the login.
                .max_allowed_packet(Some(16 * 1024 * 1024))
                .wait_timeout(Some(28_800));
            let conn = tokio::time::timeout(self.target.timeout, Conn::new(opts))
                .await
                .map_err(|_| {
                    SdbError::Unreachable(format!("no login within {:?}", self.target.timeout))
                })?
                .map_err(|e| classify(&e, true))?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| SdbError::Unreachable("no connection".into()))
    }

    async fn query(&mut self, statement: &str) -> Result<Table, SdbError> {
        let timeout = self.target.timeout;
        let result = async {
            let conn = self.conn().await?;
            let run = async {
                let mut result = conn.query_iter(statement).await?;
                let columns = result
                    .columns()
                    .map(|c| c.iter().map(|c| c.name_str().into_owned()).collect())
                    .unwrap_or_default();
                let rows: Vec<mysql_async::Row> = result.collect().await?;
                Ok::<_, mysql_async::Error>(Table {
                    columns,
                    rows: rows.into_iter().map(cells).collect(),
                })
            };
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| SdbError::Unreachable(format!("no answer within {timeout:?}")))?
                .map_err(|e| classify(&e, false))
        }
        .await;
        if matches!(
            result,
            Err(SdbError::Unreachable(_) | SdbError::Protocol(_))
        ) {
            // The connection's state is unknown: open a new one next time.
            self.conn = None;
        }
        result
    }
}

fn cells(row: mysql_async::Row) -> Vec<Option<String>> {
    row.unwrap()
        .into_iter()
        .map(|value| match value {
            mysql_async::Value::NULL => None,
            mysql_async::Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            mysql_async::Value::Int(i) => Some(i.to_string()),
            mysql_async::Value::UInt(u) => Some(u.to_string()),
            other => Some(other.as_sql(true)),
        })
        .collect()
}

fn classify(err: &mysql_async::Error, login: bool) -> SdbError {
    match err {
        // Refused at login: the agent sees nothing of its node. (An `ADD LEAF` with a wrong
        // password for the *target* node is 1045 too, but a refused statement.)
        mysql_async::Error::Server(e) if login => SdbError::LoginRefused {
            code: e.code,
            message: e.message.clone(),
        },
        mysql_async::Error::Server(e) => SdbError::Refused {
            code: e.code,
            message: e.message.clone(),
        },
        mysql_async::Error::Io(e) => SdbError::Unreachable(e.to_string()),
        mysql_async::Error::Driver(e) => SdbError::Unreachable(e.to_string()),
        other => SdbError::Protocol(other.to_string()),
    }
}

impl SdbBackend for MysqlBackend {
    async fn observe(&mut self, kind: NodeKind) -> Result<NodeState, SdbError> {
        let version = self.query(sql::VERSION_QUERY).await?;
        let version = version
            .rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .ok_or_else(|| SdbError::Protocol(format!("{} returned no row", sql::VERSION_QUERY)))?;
        let (aggregators, leaves) = match kind {
            NodeKind::Leaf => (Vec::new(), Vec::new()),
            NodeKind::Aggregator => {
                let aggregators = sql::parse_aggregators(&self.query(sql::SHOW_AGGREGATORS).await?)
                    .map_err(SdbError::Protocol)?;
                let leaves = if aggregators.is_empty() {
                    Vec::new()
                } else {
                    sql::parse_leaves(&self.query(sql::SHOW_LEAVES).await?)
                        .map_err(SdbError::Protocol)?
                };
                (aggregators, leaves)
            }
        };
        let databases = sql::parse_databases(&self.query(sql::SHOW_DATABASES_EXTENDED).await?)
            .map_err(SdbError::Protocol)?;
        Ok(NodeState {
            version,
            aggregators,
            leaves,
            databases,
        })
    }

    async fn execute(&mut self, statement: &str) -> Result<(), SdbError> {
        if sql::has_secret(statement) {
            tracing::info!(
                statement = statement.split(' ').take(2).collect::<Vec<_>>().join(" "),
                "running"
            );
        } else {
            tracing::info!(statement, "running");
        }
        self.query(statement).await.map(|_| ())
    }
}
