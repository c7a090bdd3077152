//! What the agent asks of its SQL Server: one observation ([`Backend::observe`]) and one method
//! per action of [`crate::mssql::decide`]. Two implementations: [`tds::TdsBackend`] over TDS on
//! loopback (tiberius), and, for tests only, [`fake`] (an in-memory model of an availability
//! group that refuses what SQL Server refuses).
//!
//! Results are read through [`Value`] rows so that the parsing here is pure and tested without a
//! server; the TDS layer only converts tiberius' cells.

use std::future::Future;

use thiserror::Error;

use crate::mssql::decide::{AgState, DatabaseState, InstanceSetup, LocalState, Role, SyncState};
use crate::mssql::tsql::{CertificateFiles, ReplicaSpec, SetupNames, join_lsn};

pub mod tds;

#[cfg(any(test, feature = "testing"))]
pub mod fake;

/// What a backend needs to know about its instance and AG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgConfig {
    /// The availability group's name.
    pub ag: String,
    /// This replica (name, endpoint URL, secondary access).
    pub replica: ReplicaSpec,
    /// Names of the per-instance objects.
    pub names: SetupNames,
    /// Port of the mirroring endpoint.
    pub endpoint_port: u16,
    /// Secrets for the instance set-up.
    pub secrets: SetupSecrets,
}

/// The secret inputs of the instance set-up.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupSecrets {
    /// Password of the database master key (`<db>-master-key`).
    pub master_key_password: String,
    /// Password of the endpoint login (`<db>-dbm-login`).
    pub login_password: String,
    /// The endpoint certificate files.
    pub certificate: CertificateFiles,
}

impl std::fmt::Debug for SetupSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupSecrets { .. }")
    }
}

/// Why a backend call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// No connection (refused, timed out, dropped during login).
    #[error("cannot reach SQL Server: {0}")]
    Unreachable(String),
    /// SQL Server refused the agent's login: it runs, but the agent sees nothing of it. Most
    /// often the password in the auth secret is not the one SQL Server has.
    #[error("SQL Server refused the login (error {code}): {message}")]
    LoginRefused {
        /// Error number (18456: login failed).
        code: u32,
        /// Message text.
        message: String,
    },
    /// SQL Server answered with an error.
    #[error("SQL Server error {code}: {message}")]
    Refused {
        /// Error number.
        code: u32,
        /// Message text.
        message: String,
    },
    /// An answer of an unexpected shape.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// One cell of a result row, as far as the agent's queries need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer type (tinyint, smallint, int, bigint, bit).
    Int(i64),
    /// A character type.
    Str(String),
}

/// A result row.
pub type Row = Vec<Value>;

/// The agent's view of its own SQL Server. Every method is one step of an action and is safe to
/// repeat after a failure: the next observation shows what happened.
pub trait Backend: Send {
    /// Reads set-up state, and the AG with its replicas and databases.
    fn observe(&mut self) -> impl Future<Output = Result<LocalState, BackendError>> + Send;
    /// Creates the parts of the set-up `have` lacks, in dependency order.
    fn setup_instance(
        &mut self,
        have: InstanceSetup,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `CREATE AVAILABILITY GROUP` with this replica.
    fn create_ag(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `ADD REPLICA` (on the primary).
    fn add_replica(
        &mut self,
        replica: &ReplicaSpec,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `JOIN`.
    fn join_ag(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `GRANT CREATE ANY DATABASE`.
    fn grant_create_any_database(
        &mut self,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `FORCE_FAILOVER_ALLOW_DATA_LOSS`, then `SET HADR RESUME` for `databases`.
    fn promote(
        &mut self,
        databases: &[String],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `SET (ROLE = SECONDARY)`; when SQL Server refuses it, `OFFLINE`.
    fn demote(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `SET (ROLE = SECONDARY)`, then `SET HADR RESUME` for `databases`.
    fn follow_new_primary(
        &mut self,
        databases: &[String],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `SET HADR RESUME` for `databases`.
    fn resume_databases(
        &mut self,
        databases: &[String],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// `REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT`.
    fn set_required_synchronized_secondaries(
        &mut self,
        count: u32,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Creates (if missing), prepares and adds a database.
    fn add_database(
        &mut self,
        database: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

fn int(row: &Row, index: usize, what: &str) -> Result<Option<i64>, BackendError> {
    match row.get(index) {
        Some(Value::Int(v)) => Ok(Some(*v)),
        Some(Value::Null) => Ok(None),
        Some(Value::Str(_)) => Err(BackendError::Protocol(format!(
            "column {index} ({what}) is a string, expected an integer"
        ))),
        None => Err(BackendError::Protocol(format!(
            "column {index} ({what}) missing"
        ))),
    }
}

fn flag(row: &Row, index: usize, what: &str) -> Result<bool, BackendError> {
    Ok(int(row, index, what)?.unwrap_or(0) != 0)
}

fn text(row: &Row, index: usize, what: &str) -> Result<Option<String>, BackendError> {
    match row.get(index) {
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        Some(Value::Int(_)) => Err(BackendError::Protocol(format!(
            "column {index} ({what}) is an integer, expected a string"
        ))),
        None => Err(BackendError::Protocol(format!(
            "column {index} ({what}) missing"
        ))),
    }
}

/// The row of [`crate::mssql::tsql::setup_query`]: the server name and the set-up flags.
pub fn parse_setup(rows: &[Row]) -> Result<(Option<String>, InstanceSetup), BackendError> {
    let [row] = rows else {
        return Err(BackendError::Protocol(format!(
            "set-up query returned {} rows, expected 1",
            rows.len()
        )));
    };
    Ok((
        text(row, 0, "server_name")?,
        InstanceSetup {
            hadr_enabled: flag(row, 1, "hadr_enabled")?,
            master_key: flag(row, 2, "master_key")?,
            login: flag(row, 3, "login")?,
            user: flag(row, 4, "user")?,
            certificate: flag(row, 5, "certificate")?,
            endpoint: flag(row, 6, "endpoint")?,
            endpoint_started: flag(row, 7, "endpoint_started")?,
            connect_granted: flag(row, 8, "connect_granted")?,
        },
    ))
}

/// `operational_state` ONLINE.
const OPERATIONAL_ONLINE: i64 = 2;
/// `database_state` ONLINE.
const DATABASE_ONLINE: i64 = 0;

/// The rows of [`crate::mssql::tsql::ag_query`], [`crate::mssql::tsql::replicas_query`] and
/// [`crate::mssql::tsql::databases_query`]; `None` when the instance has no such AG.
pub fn parse_ag(
    ag_rows: &[Row],
    replica_rows: &[Row],
    database_rows: &[Row],
) -> Result<Option<AgState>, BackendError> {
    let row = match ag_rows {
        [] => return Ok(None),
        [row] => row,
        more => {
            return Err(BackendError::Protocol(format!(
                "AG query returned {} rows, expected at most 1",
                more.len()
            )));
        }
    };
    let role_code = int(row, 2, "role")?.unwrap_or(0);
    let role = Role::from_code(role_code)
        .ok_or_else(|| BackendError::Protocol(format!("unknown replica role {role_code}")))?;
    let required = int(row, 1, "required_synchronized_secondaries")?.unwrap_or(0);
    let mut replicas = Vec::with_capacity(replica_rows.len());
    for r in replica_rows {
        if let Some(name) = text(r, 0, "replica_server_name")? {
            replicas.push(name);
        }
    }
    let mut databases = Vec::with_capacity(database_rows.len());
    for d in database_rows {
        let Some(name) = text(d, 0, "database_name")? else {
            continue; // DB_NAME is NULL for a database being dropped.
        };
        let sync_code = int(d, 1, "synchronization_state")?.unwrap_or(0);
        databases.push(DatabaseState {
            name,
            sync: SyncState::from_code(sync_code).ok_or_else(|| {
                BackendError::Protocol(format!("unknown synchronization state {sync_code}"))
            })?,
            failover_ready: flag(d, 2, "is_failover_ready")?,
            suspended: flag(d, 3, "is_suspended")?,
            online: int(d, 4, "database_state")? == Some(DATABASE_ONLINE),
            hardened_lsn: join_lsn(int(d, 5, "lsn_high")?, int(d, 6, "lsn_low")?),
        });
    }
    Ok(Some(AgState {
        role,
        online: int(row, 3, "operational_state")? == Some(OPERATIONAL_ONLINE),
        sequence_number: int(row, 0, "sequence_number")?.unwrap_or(0),
        required_synchronized_secondaries: u32::try_from(required).unwrap_or(0),
        replicas,
        databases,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Value::{Int, Null, Str};

    #[test]
    fn setup_row() {
        let row = vec![
            Str("ag-0".into()),
            Int(1),
            Int(1),
            Int(0),
            Int(0),
            Int(1),
            Int(1),
            Int(0),
            Int(0),
        ];
        let (name, setup) = parse_setup(&[row]).unwrap();
        assert_eq!(name.as_deref(), Some("ag-0"));
        assert!(setup.hadr_enabled && setup.master_key && setup.certificate && setup.endpoint);
        assert!(!setup.login && !setup.user && !setup.endpoint_started && !setup.connect_granted);
        assert!(!setup.complete());
        assert!(parse_setup(&[]).is_err());
        let short = vec![Str("x".into()), Int(1)];
        assert!(matches!(
            parse_setup(&[short]),
            Err(BackendError::Protocol(_))
        ));
    }

    #[test]
    fn no_ag_row_means_no_ag() {
        assert_eq!(parse_ag(&[], &[], &[]).unwrap(), None);
    }

    #[test]
    fn ag_rows() {
        let ag = vec![vec![Int(12), Int(1), Int(2), Int(2)]];
        let replicas = vec![vec![Str("ag-0".into())], vec![Str("ag-1".into())]];
        let dbs = vec![
            vec![
                Str("sales".into()),
                Int(2),
                Int(1),
                Int(0),
                Int(0),
                Int(34),
                Int(1_234_500_001),
            ],
            vec![Null, Int(0), Int(0), Int(0), Int(6), Null, Null],
            vec![Str("hr".into()), Int(0), Int(0), Int(1), Int(1), Null, Null],
        ];
        let state = parse_ag(&ag, &replicas, &dbs).unwrap().unwrap();
        assert_eq!(state.role, Role::Secondary);
        assert!(state.online);
        assert_eq!(state.sequence_number, 12);
        assert_eq!(state.required_synchronized_secondaries, 1);
        assert_eq!(state.replicas, ["ag-0", "ag-1"]);
        assert_eq!(state.databases.len(), 2, "the unnamed row is skipped");
        let sales = &state.databases[0];
        assert_eq!(sales.sync, SyncState::Synchronized);
        assert!(sales.failover_ready && sales.online && !sales.suspended);
        assert_eq!(sales.hardened_lsn, Some(34_000_001_234_500_001));
        let hr = &state.databases[1];
        assert_eq!(hr.sync, SyncState::NotSynchronizing);
        assert!(hr.suspended && !hr.online && !hr.failover_ready);
        assert_eq!(hr.hardened_lsn, None);
    }

    #[test]
    fn null_role_reads_as_resolving_and_odd_codes_are_errors() {
        let resolving = parse_ag(&[vec![Int(1), Int(0), Null, Null]], &[], &[])
            .unwrap()
            .unwrap();
        assert_eq!(resolving.role, Role::Resolving);
        assert!(!resolving.online);
        assert!(parse_ag(&[vec![Int(1), Int(0), Int(7), Int(2)]], &[], &[]).is_err());
        let bad_sync = vec![vec![
            Str("d".into()),
            Int(9),
            Int(0),
            Int(0),
            Int(0),
            Null,
            Null,
        ]];
        assert!(parse_ag(&[vec![Int(1), Int(0), Int(1), Int(2)]], &[], &bad_sync).is_err());
        assert!(parse_ag(&[vec![Str("1".into()), Int(0), Int(1), Int(2)]], &[], &[]).is_err());
    }
}
