//! SingleStore probe over the MySQL wire protocol (mysql_async).
//!
//! Read check: [`MYSQL_PING_QUERY`] must return 1; [`MYSQL_FLAVOR_QUERY`] then tells a real
//! SingleStore server (which has the `memsql_version` variable) from any other MySQL-protocol
//! server. Only for [`Engine::SingleStore`] with `cluster: true` **and** a server that
//! identifies as SingleStore ([`should_check_topology`]) does the read check also run
//! [`SHOW_AGGREGATORS`] and [`SHOW_LEAVES`] and require every node to be online, a master
//! aggregator to exist and at least one leaf to be registered. A MySQL-compatible stand-in (the
//! MariaDB used by the integration test) never gets SingleStore-only statements.
//!
//! Write check: [`MYSQL_WRITE_SETUP`] (`CREATE DATABASE IF NOT EXISTS kubedb_system`, `CREATE
//! TABLE IF NOT EXISTS kubedb_system.kv`), then [`mysql_upsert_statement`] (`INSERT ... ON
//! DUPLICATE KEY UPDATE`) and [`MYSQL_HEARTBEAT_READ_BACK`].

use std::time::{Duration, SystemTime};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, IoError, OptsBuilder, Row, SslOpts, Value};
use tokio::time::Instant;

use super::{
    Engine, Failure, FailureKind, ProbeOutcome, SqlTarget, SqlTls, classify_io,
    classify_mysql_server_error, heartbeat_value, sql_string_literal, stage, verify_heartbeat,
};

/// Liveness of the SQL layer.
pub const MYSQL_PING_QUERY: &str = "SELECT 1";
/// Returns one row (`memsql_version`, version) on SingleStore and no row elsewhere.
pub const MYSQL_FLAVOR_QUERY: &str = "SHOW VARIABLES LIKE 'memsql_version'";
/// SingleStore only: the aggregators of the cluster.
pub const SHOW_AGGREGATORS: &str = "SHOW AGGREGATORS";
/// SingleStore only: the leaves of the cluster.
pub const SHOW_LEAVES: &str = "SHOW LEAVES";
/// Write-check setup, idempotent.
pub const MYSQL_WRITE_SETUP: [&str; 2] = [
    "CREATE DATABASE IF NOT EXISTS `kubedb_system`",
    "CREATE TABLE IF NOT EXISTS `kubedb_system`.`kv` (\
     `prop_key` VARCHAR(128) NOT NULL, \
     `prop_value` VARCHAR(256) NOT NULL, \
     PRIMARY KEY (`prop_key`))",
];
/// Reads the heartbeat row back.
pub const MYSQL_HEARTBEAT_READ_BACK: &str =
    "SELECT `prop_value` FROM `kubedb_system`.`kv` WHERE `prop_key` = 'health_check'";

/// Upserts the heartbeat row with `value`.
pub fn mysql_upsert_statement(value: &str) -> String {
    format!(
        "INSERT INTO `kubedb_system`.`kv` (`prop_key`, `prop_value`) VALUES ('health_check', {}) \
         ON DUPLICATE KEY UPDATE `prop_value` = VALUES(`prop_value`)",
        sql_string_literal(value, true)
    )
}

/// What kind of MySQL-protocol server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFlavor {
    /// SingleStore, with its `memsql_version`.
    SingleStore {
        /// e.g. `8.9.3`.
        version: String,
    },
    /// Any other MySQL-protocol server (MySQL, MariaDB).
    MySqlCompatible,
}

impl ServerFlavor {
    /// Identifies the server from the rows of [`MYSQL_FLAVOR_QUERY`] (`Variable_name`, `Value`).
    pub fn identify(rows: &[(String, String)]) -> Self {
        rows.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("memsql_version"))
            .map_or(ServerFlavor::MySqlCompatible, |(_, version)| {
                ServerFlavor::SingleStore {
                    version: version.clone(),
                }
            })
    }
}

/// Whether the SingleStore topology statements run: only for a SingleStore cluster target and
/// a server that identifies as SingleStore.
pub fn should_check_topology(engine: Engine, flavor: &ServerFlavor) -> bool {
    matches!(engine, Engine::SingleStore { cluster: true })
        && matches!(flavor, ServerFlavor::SingleStore { .. })
}

/// Aggregator or leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// A row of `SHOW AGGREGATORS`.
    Aggregator,
    /// A row of `SHOW LEAVES`.
    Leaf,
}

impl NodeRole {
    fn as_str(self) -> &'static str {
        match self {
            NodeRole::Aggregator => "aggregator",
            NodeRole::Leaf => "leaf",
        }
    }
}

/// One node of a SingleStore cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Aggregator or leaf.
    pub role: NodeRole,
    /// `Host`.
    pub host: String,
    /// `Port`.
    pub port: String,
    /// `State`, e.g. `online`, `offline`, `detached`, `attaching`, `recovering`.
    pub state: String,
    /// `Master_Aggregator` (aggregators only; `None` when the column is absent).
    pub master: Option<bool>,
}

impl NodeStatus {
    fn is_online(&self) -> bool {
        self.state.eq_ignore_ascii_case("online")
    }
}

/// Parses the text rows of `SHOW AGGREGATORS` / `SHOW LEAVES`, finding the columns `Host`,
/// `Port`, `State` (required) and `Master_Aggregator` (optional) by name, case-insensitively.
pub fn parse_nodes(
    role: NodeRole,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> Result<Vec<NodeStatus>, Failure> {
    let find = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let statement = match role {
        NodeRole::Aggregator => SHOW_AGGREGATORS,
        NodeRole::Leaf => SHOW_LEAVES,
    };
    let required = |name: &str| {
        find(name).ok_or_else(|| {
            Failure::new(
                FailureKind::UnexpectedResult,
                format!(
                    "{statement} returned no {name} column (columns: {})",
                    columns.join(", ")
                ),
            )
        })
    };
    let (host, port, state) = (required("Host")?, required("Port")?, required("State")?);
    let master = find("Master_Aggregator");
    let cell = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok(rows
        .iter()
        .map(|row| NodeStatus {
            role,
            host: cell(row, host),
            port: cell(row, port),
            state: cell(row, state),
            master: master.map(|i| matches!(cell(row, i).as_str(), "1" | "Yes" | "yes" | "true")),
        })
        .collect())
}

/// Judges the cluster topology: at least one aggregator and one leaf, a master aggregator (when
/// the column is reported), and every node online. Returns a summary for the message.
pub fn evaluate_nodes(
    aggregators: &[NodeStatus],
    leaves: &[NodeStatus],
) -> Result<String, Failure> {
    if aggregators.is_empty() {
        return Err(Failure::new(
            FailureKind::UnexpectedResult,
            "SHOW AGGREGATORS returned no aggregators",
        ));
    }
    if leaves.is_empty() {
        return Err(Failure::new(
            FailureKind::ServerUnavailable,
            "no leaves are registered with the cluster (SHOW LEAVES is empty)",
        ));
    }
    let reports_master = aggregators.iter().any(|a| a.master.is_some());
    if reports_master && !aggregators.iter().any(|a| a.master == Some(true)) {
        return Err(Failure::new(
            FailureKind::ServerUnavailable,
            "SHOW AGGREGATORS lists no master aggregator",
        ));
    }
    let unhealthy: Vec<String> = aggregators
        .iter()
        .chain(leaves)
        .filter(|n| !n.is_online())
        .map(|n| {
            let state = if n.state.is_empty() {
                "in no state"
            } else {
                &n.state
            };
            format!("{} {}:{} is {}", n.role.as_str(), n.host, n.port, state)
        })
        .collect();
    if !unhealthy.is_empty() {
        return Err(Failure::new(
            FailureKind::ServerUnavailable,
            unhealthy.join("; "),
        ));
    }
    Ok(format!(
        "{} aggregator(s) and {} leaf node(s) online",
        aggregators.len(),
        leaves.len()
    ))
}

/// Judges the result of [`MYSQL_PING_QUERY`].
fn evaluate_ping(value: Option<i64>) -> Result<(), Failure> {
    match value {
        Some(1) => Ok(()),
        other => Err(Failure::new(
            FailureKind::UnexpectedResult,
            format!("SELECT 1 returned {other:?}"),
        )),
    }
}

fn classify(err: &mysql_async::Error) -> Failure {
    use mysql_async::{DriverError, Error};
    match err {
        Error::Server(e) => classify_mysql_server_error(e.code, &e.message),
        // tokio-rustls reports handshake failures (e.g. an untrusted certificate) as I/O errors
        // wrapping the rustls error.
        Error::Io(IoError::Io(e)) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            Failure::new(FailureKind::Tls, e.to_string())
        }
        Error::Io(IoError::Io(e)) => classify_io(e.kind(), &e.to_string()),
        Error::Io(IoError::Tls(e)) => Failure::new(FailureKind::Tls, e.to_string()),
        Error::Driver(DriverError::ConnectionClosed) => Failure::new(
            FailureKind::ConnectionClosed,
            "the server closed the connection",
        ),
        Error::Driver(DriverError::NoClientSslFlagFromServer) => Failure::new(
            FailureKind::Tls,
            "TLS was requested but the server does not offer it",
        ),
        other => Failure::new(FailureKind::Protocol, other.to_string()),
    }
}

fn value_to_string(value: &Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn opts(target: &SqlTarget) -> OptsBuilder {
    let ssl = match &target.tls {
        SqlTls::Disabled => None,
        SqlTls::Verified { ca_pem } => Some(
            SslOpts::default()
                .with_root_certs(vec![ca_pem.clone().into()])
                .with_disable_built_in_roots(true),
        ),
    };
    OptsBuilder::default()
        .ip_or_hostname(target.host.clone())
        .tcp_port(target.port)
        .user(Some(target.username.clone()))
        .pass(Some(target.password.clone()))
        .db_name(target.database.clone())
        // Never switch to a local Unix socket: the probe must test the network path.
        .prefer_socket(false)
        .stmt_cache_size(0_usize)
        .ssl_opts(ssl)
}

async fn connect(target: &SqlTarget) -> Result<Conn, Failure> {
    Conn::new(opts(target)).await.map_err(|e| classify(&e))
}

async fn read_check(conn: &mut Conn, engine: Engine) -> Result<String, Failure> {
    let ping = conn
        .query_first::<i64, _>(MYSQL_PING_QUERY)
        .await
        .map_err(|e| classify(&e))?;
    evaluate_ping(ping)?;
    let flavor_rows = conn
        .query::<(String, String), _>(MYSQL_FLAVOR_QUERY)
        .await
        .map_err(|e| classify(&e))?;
    let flavor = ServerFlavor::identify(&flavor_rows);
    let (major, minor, patch) = conn.server_version();
    let server = match &flavor {
        ServerFlavor::SingleStore { version } => format!("SingleStore {version}"),
        ServerFlavor::MySqlCompatible => {
            format!("MySQL-protocol server {major}.{minor}.{patch}, not SingleStore")
        }
    };
    if should_check_topology(engine, &flavor) {
        let aggregators = node_rows(conn, NodeRole::Aggregator).await?;
        let leaves = node_rows(conn, NodeRole::Leaf).await?;
        let summary = evaluate_nodes(&aggregators, &leaves)?;
        Ok(format!("{server}; {summary}"))
    } else if matches!(engine, Engine::SingleStore { cluster: true }) {
        Ok(format!("{server}; topology checks skipped"))
    } else {
        Ok(server)
    }
}

async fn node_rows(conn: &mut Conn, role: NodeRole) -> Result<Vec<NodeStatus>, Failure> {
    let statement = match role {
        NodeRole::Aggregator => SHOW_AGGREGATORS,
        NodeRole::Leaf => SHOW_LEAVES,
    };
    let rows: Vec<Row> = conn.query(statement).await.map_err(|e| classify(&e))?;
    let columns: Vec<String> = rows
        .first()
        .map(|r| {
            r.columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let cells: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.as_ref(i).and_then(value_to_string))
                .collect()
        })
        .collect();
    if cells.is_empty() {
        // No rows: nothing to find columns in; evaluate_nodes reports the empty set.
        return Ok(Vec::new());
    }
    parse_nodes(role, &columns, &cells)
}

async fn write_check(conn: &mut Conn) -> Result<(), Failure> {
    for statement in MYSQL_WRITE_SETUP {
        conn.query_drop(statement).await.map_err(|e| classify(&e))?;
    }
    let value = heartbeat_value(SystemTime::now());
    conn.query_drop(mysql_upsert_statement(&value))
        .await
        .map_err(|e| classify(&e))?;
    let read_back = conn
        .query_first::<String, _>(MYSQL_HEARTBEAT_READ_BACK)
        .await
        .map_err(|e| classify(&e))?;
    verify_heartbeat(&value, read_back.as_deref())
}

pub(super) async fn probe(target: &SqlTarget, deadline: Instant) -> ProbeOutcome {
    let budget = target.timeout;
    let mut conn = match stage(
        deadline,
        budget,
        "connecting and logging in",
        connect(target),
    )
    .await
    {
        Ok(conn) => conn,
        Err(f) => return ProbeOutcome::ConnectFailed(f),
    };
    let read = stage(
        deadline,
        budget,
        "the read check",
        read_check(&mut conn, target.engine),
    );
    let outcome = match read.await {
        Err(f) => ProbeOutcome::ReadFailed(f),
        Ok(detail) if !target.write_check => ProbeOutcome::Passed {
            write_checked: false,
            detail,
        },
        Ok(detail) => {
            match stage(deadline, budget, "the write check", write_check(&mut conn)).await {
                Ok(()) => ProbeOutcome::Passed {
                    write_checked: true,
                    detail,
                },
                Err(f) => ProbeOutcome::WriteFailed(f),
            }
        }
    };
    // Closing politely is best effort; the outcome is already known.
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_texts() {
        assert_eq!(MYSQL_PING_QUERY, "SELECT 1");
        assert_eq!(MYSQL_FLAVOR_QUERY, "SHOW VARIABLES LIKE 'memsql_version'");
        assert_eq!(SHOW_AGGREGATORS, "SHOW AGGREGATORS");
        assert_eq!(SHOW_LEAVES, "SHOW LEAVES");
        assert_eq!(
            MYSQL_WRITE_SETUP,
            [
                "CREATE DATABASE IF NOT EXISTS `kubedb_system`",
                "CREATE TABLE IF NOT EXISTS `kubedb_system`.`kv` (`prop_key` VARCHAR(128) NOT NULL, \
                 `prop_value` VARCHAR(256) NOT NULL, PRIMARY KEY (`prop_key`))",
            ]
        );
        assert_eq!(
            mysql_upsert_statement("kubedb-health-7"),
            "INSERT INTO `kubedb_system`.`kv` (`prop_key`, `prop_value`) VALUES ('health_check', \
             'kubedb-health-7') ON DUPLICATE KEY UPDATE `prop_value` = VALUES(`prop_value`)"
        );
        assert!(mysql_upsert_statement(r"a'b\c").contains(r"VALUES ('health_check', 'a''b\\c')"));
        assert_eq!(
            MYSQL_HEARTBEAT_READ_BACK,
            "SELECT `prop_value` FROM `kubedb_system`.`kv` WHERE `prop_key` = 'health_check'"
        );
    }

    #[test]
    fn flavor_identification() {
        assert_eq!(ServerFlavor::identify(&[]), ServerFlavor::MySqlCompatible);
        assert_eq!(
            ServerFlavor::identify(&[("memsql_version".into(), "8.9.3".into())]),
            ServerFlavor::SingleStore {
                version: "8.9.3".into()
            }
        );
        assert_eq!(
            ServerFlavor::identify(&[("version".into(), "10.11.14-MariaDB".into())]),
            ServerFlavor::MySqlCompatible
        );
    }

    #[test]
    fn topology_checks_only_for_singlestore_clusters() {
        let s2 = ServerFlavor::SingleStore {
            version: "8.9.3".into(),
        };
        let maria = ServerFlavor::MySqlCompatible;
        let cases = [
            (Engine::SingleStore { cluster: true }, &s2, true),
            (Engine::SingleStore { cluster: true }, &maria, false),
            (Engine::SingleStore { cluster: false }, &s2, false),
            (Engine::SingleStore { cluster: false }, &maria, false),
            (Engine::SqlServer, &s2, false),
        ];
        for (engine, flavor, want) in cases {
            assert_eq!(
                should_check_topology(engine, flavor),
                want,
                "{engine:?} {flavor:?}"
            );
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn row(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|s| (*s != "NULL").then(|| (*s).to_owned()))
            .collect()
    }

    fn aggregators() -> Vec<NodeStatus> {
        let columns = strings(&[
            "Host",
            "Port",
            "State",
            "Opened_Connections",
            "Average_Roundtrip_Latency_ms",
            "Master_Aggregator",
            "NodeId",
        ]);
        let rows = [
            row(&[
                "db-aggregator-0.db-pods",
                "3306",
                "online",
                "2",
                "NULL",
                "1",
                "1",
            ]),
            row(&[
                "db-aggregator-1.db-pods",
                "3306",
                "online",
                "1",
                "0.3",
                "0",
                "4",
            ]),
        ];
        parse_nodes(NodeRole::Aggregator, &columns, &rows).unwrap()
    }

    fn leaves(states: &[&str]) -> Vec<NodeStatus> {
        let columns = strings(&[
            "Host",
            "Port",
            "Availability_Group",
            "Pair_Host",
            "Pair_Port",
            "State",
            "Opened_Connections",
            "Average_Roundtrip_Latency_ms",
            "NodeId",
            "Grace_Period_In_seconds",
        ]);
        let rows: Vec<_> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let host = format!("db-leaf-{i}.db-pods");
                row(&[
                    &host, "3306", "1", "NULL", "NULL", state, "1", "0.2", "3", "NULL",
                ])
            })
            .collect();
        parse_nodes(NodeRole::Leaf, &columns, &rows).unwrap()
    }

    #[test]
    fn parses_show_aggregators_and_leaves() {
        let aggs = aggregators();
        assert_eq!(
            aggs[0],
            NodeStatus {
                role: NodeRole::Aggregator,
                host: "db-aggregator-0.db-pods".into(),
                port: "3306".into(),
                state: "online".into(),
                master: Some(true),
            }
        );
        assert_eq!(aggs[1].master, Some(false));
        let l = leaves(&["online"]);
        assert_eq!(l[0].master, None);
        assert_eq!(l[0].host, "db-leaf-0.db-pods");
    }

    #[test]
    fn missing_columns_are_reported() {
        let f = parse_nodes(NodeRole::Leaf, &strings(&["Host", "Port"]), &[]).unwrap_err();
        assert_eq!(f.kind, FailureKind::UnexpectedResult);
        assert_eq!(
            f.detail,
            "SHOW LEAVES returned no State column (columns: Host, Port)"
        );
    }

    #[test]
    fn topology_evaluation() {
        assert_eq!(
            evaluate_nodes(&aggregators(), &leaves(&["online", "ONLINE"])),
            Ok("2 aggregator(s) and 2 leaf node(s) online".to_owned())
        );
        let f = evaluate_nodes(&aggregators(), &leaves(&["online", "offline", "detached"]))
            .unwrap_err();
        assert_eq!(f.kind, FailureKind::ServerUnavailable);
        assert_eq!(
            f.detail,
            "leaf db-leaf-1.db-pods:3306 is offline; leaf db-leaf-2.db-pods:3306 is detached"
        );
        let f = evaluate_nodes(&aggregators(), &[]).unwrap_err();
        assert!(f.detail.contains("no leaves"), "{}", f.detail);
        let f = evaluate_nodes(&[], &leaves(&["online"])).unwrap_err();
        assert_eq!(f.detail, "SHOW AGGREGATORS returned no aggregators");
        let mut no_master = aggregators();
        no_master[0].master = Some(false);
        let f = evaluate_nodes(&no_master, &leaves(&["online"])).unwrap_err();
        assert_eq!(f.detail, "SHOW AGGREGATORS lists no master aggregator");
        let mut offline_agg = aggregators();
        offline_agg[1].state = "offline".into();
        let f = evaluate_nodes(&offline_agg, &leaves(&["online"])).unwrap_err();
        assert_eq!(
            f.detail,
            "aggregator db-aggregator-1.db-pods:3306 is offline"
        );
    }

    #[test]
    fn ping_evaluation() {
        assert_eq!(evaluate_ping(Some(1)), Ok(()));
        assert_eq!(
            evaluate_ping(None).unwrap_err().detail,
            "SELECT 1 returned None"
        );
        assert_eq!(
            evaluate_ping(Some(2)).unwrap_err().kind,
            FailureKind::UnexpectedResult
        );
    }

    #[test]
    fn driver_errors_are_classified() {
        use mysql_async::{DriverError, Error, ServerError};
        let auth = Error::Server(ServerError {
            code: 1045,
            message: "Access denied for user 'root'@'localhost' (using password: YES)".into(),
            state: "28000".into(),
        });
        let f = classify(&auth);
        assert_eq!(f.kind, FailureKind::AuthenticationFailed);
        assert_eq!(
            f.detail,
            "error 1045: Access denied for user 'root'@'localhost' (using password: YES)"
        );
        let refused = Error::Io(IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(classify(&refused).kind, FailureKind::ConnectionRefused);
        let bad_cert = Error::Io(IoError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature),
        )));
        let f = classify(&bad_cert);
        assert_eq!(f.kind, FailureKind::Tls);
        assert_eq!(f.detail, "invalid peer certificate: BadSignature");
        let closed = Error::Driver(DriverError::ConnectionClosed);
        assert_eq!(classify(&closed).kind, FailureKind::ConnectionClosed);
        let no_tls = Error::Driver(DriverError::NoClientSslFlagFromServer);
        assert_eq!(classify(&no_tls).kind, FailureKind::Tls);
        let other = Error::Driver(DriverError::PacketOutOfOrder);
        assert_eq!(classify(&other).kind, FailureKind::Protocol);
    }

    #[test]
    fn values_render_as_text() {
        assert_eq!(value_to_string(&Value::NULL), None);
        assert_eq!(
            value_to_string(&Value::Bytes(b"online".to_vec())).as_deref(),
            Some("online")
        );
        assert_eq!(value_to_string(&Value::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(value_to_string(&Value::UInt(3306)).as_deref(), Some("3306"));
    }
}
