//! Every T-SQL statement and query the agent sends, as functions returning the text.
//!
//! Identifiers are quoted with [`ident`] (`[name]`, `]` doubled) and values with [`literal`]
//! (`N'value'`, `'` doubled), so no input can end a name or a string early. Each function names
//! the page of Microsoft's SQL Server documentation (MicrosoftDocs/sql-docs) whose syntax it
//! follows; the golden tests at the bottom pin the exact text. Nothing here was run against a
//! real SQL Server.
//!
//! Queries select integer columns wherever the DMVs offer a code next to a description (`role`,
//! not `role_desc`; `synchronization_state`, not `synchronization_state_desc`): codes do not
//! depend on the server's language or collation, compare without string matching, and are the
//! column types the TDS responders used in tests can produce. Flags come back as `int` (bits cast),
//! sequence numbers as `bigint`, and `last_hardened_lsn` (`numeric(25,0)`, up to 25 digits) as two
//! `bigint` halves that compare in order. Only names (databases, replicas, the server) are strings.

use api::mssql::SecondaryAccessMode;

/// `[name]` with `]` doubled: a delimited identifier (Microsoft: "Database identifiers").
pub fn ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `N'value'` with `'` doubled: a Unicode string literal (Microsoft: "Constants (Transact-SQL)").
pub fn literal(value: &str) -> String {
    format!("N'{}'", value.replace('\'', "''"))
}

/// Names of the objects the agent creates on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupNames {
    /// The endpoint login (`dbm_login`, the user of the `<db>-dbm-login` secret).
    pub login: String,
    /// The database user in `master` for that login, which owns the certificate.
    pub user: String,
    /// The endpoint certificate.
    pub certificate: String,
    /// The database-mirroring endpoint.
    pub endpoint: String,
}

impl Default for SetupNames {
    fn default() -> Self {
        Self {
            login: "dbm_login".into(),
            user: "dbm_user".into(),
            certificate: "dbm_certificate".into(),
            endpoint: "Hadr_endpoint".into(),
        }
    }
}

/// Where the endpoint certificate and its private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateFiles {
    /// One PKCS #12 file (SQL Server 2022 and later).
    Pfx {
        /// Path of the `.pfx`/`.p12` file, readable by the mssql user.
        path: String,
        /// Its password.
        password: String,
    },
    /// A DER certificate and a PVK private key (every version with certificate endpoints).
    CerPvk {
        /// Path of the `.cer` file.
        certificate: String,
        /// Path of the `.pvk` file.
        private_key: String,
        /// Password of the private key.
        password: String,
    },
}

/// One replica's clause of `CREATE AVAILABILITY GROUP` / `ADD REPLICA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    /// SQL Server instance name (`@@SERVERNAME`, the pod name).
    pub name: String,
    /// `tcp://<host>:<port>` of its mirroring endpoint.
    pub endpoint_url: String,
    /// Read access on secondaries.
    pub secondary_access: SecondaryAccessMode,
}

impl ReplicaSpec {
    fn clause(&self) -> String {
        format!(
            "{} WITH (ENDPOINT_URL = {}, AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, \
             FAILOVER_MODE = EXTERNAL, SEEDING_MODE = AUTOMATIC, {})",
            literal(&self.name),
            literal(&self.endpoint_url),
            self.secondary_access.secondary_role_sql()
        )
    }
}

// ---- instance setup -------------------------------------------------------------------------

/// `CREATE MASTER KEY ENCRYPTION BY PASSWORD = ...` in `master`.
/// Microsoft: "CREATE MASTER KEY (Transact-SQL)"; used as in "Configure SQL Server Always On
/// availability group for high availability on Linux" (prerequisites include).
pub fn create_master_key(password: &str) -> String {
    format!(
        "CREATE MASTER KEY ENCRYPTION BY PASSWORD = {}",
        literal(password)
    )
}

/// `CREATE LOGIN ... WITH PASSWORD = ...`: the login the endpoint certificate is mapped to.
/// Microsoft: "CREATE LOGIN (Transact-SQL)"; the login/user/certificate pattern is "Use
/// certificates for a database mirroring endpoint (Transact-SQL)" (inbound connections).
pub fn create_login(login: &str, password: &str) -> String {
    format!(
        "CREATE LOGIN {} WITH PASSWORD = {}",
        ident(login),
        literal(password)
    )
}

/// `CREATE USER ... FOR LOGIN ...` in `master`.
/// Microsoft: "CREATE USER (Transact-SQL)"; pattern as in [`create_login`].
pub fn create_user(user: &str, login: &str) -> String {
    format!("CREATE USER {} FOR LOGIN {}", ident(user), ident(login))
}

/// `CREATE CERTIFICATE ... AUTHORIZATION ... FROM FILE ... WITH [FORMAT = 'PFX',] PRIVATE KEY (...)`:
/// the one endpoint certificate every replica shares, imported from files.
/// Microsoft: "CREATE CERTIFICATE (Transact-SQL)" (`<existing_keys>`: `FILE = 'path_to_file'
/// [WITH [FORMAT = 'PFX',] PRIVATE KEY (<private_key_options>)]`, PFX from SQL Server 2022).
pub fn create_certificate(certificate: &str, owner: &str, files: &CertificateFiles) -> String {
    let head = format!(
        "CREATE CERTIFICATE {} AUTHORIZATION {} FROM FILE = ",
        ident(certificate),
        ident(owner)
    );
    match files {
        CertificateFiles::Pfx { path, password } => format!(
            "{head}{} WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = {})",
            literal(path),
            literal(password)
        ),
        CertificateFiles::CerPvk {
            certificate,
            private_key,
            password,
        } => format!(
            "{head}{} WITH PRIVATE KEY (FILE = {}, DECRYPTION BY PASSWORD = {})",
            literal(certificate),
            literal(private_key),
            literal(password)
        ),
    }
}

/// `CREATE ENDPOINT ... FOR DATABASE_MIRRORING (ROLE = ALL, AUTHENTICATION = CERTIFICATE ...,
/// ENCRYPTION = REQUIRED ALGORITHM AES)`: certificate is the only authentication on Linux.
/// Microsoft: "CREATE ENDPOINT (Transact-SQL)"; values as in the Linux AG prerequisites include
/// ("Create the database mirroring endpoints on all replicas").
pub fn create_endpoint(endpoint: &str, port: u16, certificate: &str) -> String {
    format!(
        "CREATE ENDPOINT {} AS TCP (LISTENER_PORT = {port}) FOR DATABASE_MIRRORING \
         (ROLE = ALL, AUTHENTICATION = CERTIFICATE {}, ENCRYPTION = REQUIRED ALGORITHM AES)",
        ident(endpoint),
        ident(certificate)
    )
}

/// `ALTER ENDPOINT ... STATE = STARTED`.
/// Microsoft: "ALTER ENDPOINT (Transact-SQL)"; as in the Linux AG prerequisites include.
pub fn start_endpoint(endpoint: &str) -> String {
    format!("ALTER ENDPOINT {} STATE = STARTED", ident(endpoint))
}

/// `GRANT CONNECT ON ENDPOINT::... TO ...`.
/// Microsoft: "GRANT Endpoint Permissions (Transact-SQL)"; pattern as in [`create_login`].
pub fn grant_connect_on_endpoint(endpoint: &str, login: &str) -> String {
    format!(
        "GRANT CONNECT ON ENDPOINT::{} TO {}",
        ident(endpoint),
        ident(login)
    )
}

// ---- availability group ---------------------------------------------------------------------

/// `CREATE AVAILABILITY GROUP ... WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON ...` with this
/// replica only (the others are added as they come, [`add_replica`]).
/// Microsoft: "CREATE AVAILABILITY GROUP (Transact-SQL)"; the EXTERNAL form is "Configure SQL
/// Server availability group with custom high availability logic on Linux".
pub fn create_availability_group(ag: &str, replica: &ReplicaSpec) -> String {
    format!(
        "CREATE AVAILABILITY GROUP {} WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON {}",
        ident(ag),
        replica.clause()
    )
}

/// `ALTER AVAILABILITY GROUP ... ADD REPLICA ON ...` on the primary; `FAILOVER_MODE` must be
/// EXTERNAL to match the cluster type.
/// Microsoft: "ALTER AVAILABILITY GROUP (Transact-SQL)" (`ADD REPLICA ON`).
pub fn add_replica(ag: &str, replica: &ReplicaSpec) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} ADD REPLICA ON {}",
        ident(ag),
        replica.clause()
    )
}

/// `ALTER AVAILABILITY GROUP ... JOIN WITH (CLUSTER_TYPE = EXTERNAL)` on a secondary.
/// Microsoft: "Configure SQL Server availability group with custom high availability logic on
/// Linux" ("Join secondary SQL Server instances to the AG").
pub fn join(ag: &str) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
        ident(ag)
    )
}

/// `ALTER AVAILABILITY GROUP ... GRANT CREATE ANY DATABASE`: lets automatic seeding create the
/// databases. Microsoft: same page as [`join`]; "ALTER AVAILABILITY GROUP (Transact-SQL)".
pub fn grant_create_any_database(ag: &str) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} GRANT CREATE ANY DATABASE",
        ident(ag)
    )
}

/// `ALTER AVAILABILITY GROUP ... FORCE_FAILOVER_ALLOW_DATA_LOSS` on the replica to promote.
/// Microsoft: same page as [`join`] ("Fail over the primary replica"); "Perform a forced manual
/// failover of an Always On availability group".
pub fn force_failover(ag: &str) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} FORCE_FAILOVER_ALLOW_DATA_LOSS",
        ident(ag)
    )
}

/// `ALTER AVAILABILITY GROUP ... SET (ROLE = SECONDARY)`: demotes a primary, or points a replica
/// at the new primary. Microsoft: same page as [`join`] ("Manual failover without data loss").
pub fn set_role_secondary(ag: &str) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} SET (ROLE = SECONDARY)",
        ident(ag)
    )
}

/// `ALTER AVAILABILITY GROUP ... OFFLINE`: the fallback when `SET (ROLE = SECONDARY)` fails.
/// Microsoft: same page as [`join`]; "ALTER AVAILABILITY GROUP (Transact-SQL)" (`OFFLINE`).
pub fn offline(ag: &str) -> String {
    format!("ALTER AVAILABILITY GROUP {} OFFLINE", ident(ag))
}

/// `ALTER AVAILABILITY GROUP ... SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = n)`.
/// Microsoft: "ALTER AVAILABILITY GROUP (Transact-SQL)"; the value rule is in "Pacemaker for
/// availability groups and failover cluster instances on Linux" (resource agent section).
pub fn set_required_synchronized_secondaries(ag: &str, count: u32) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = {count})",
        ident(ag)
    )
}

/// `ALTER DATABASE ... SET HADR RESUME`: resumes data movement after a failover.
/// Microsoft: same page as [`join`]; "ALTER DATABASE SET HADR (Transact-SQL)".
pub fn resume_database(database: &str) -> String {
    format!("ALTER DATABASE {} SET HADR RESUME", ident(database))
}

/// `CREATE DATABASE ...` unless it exists. Microsoft: "CREATE DATABASE"; "DB_ID".
pub fn create_database_if_missing(database: &str) -> String {
    format!(
        "IF DB_ID({}) IS NULL CREATE DATABASE {}",
        literal(database),
        ident(database)
    )
}

/// `ALTER DATABASE ... SET RECOVERY FULL`: required before joining an AG.
/// Microsoft: "Configure SQL Server availability group ... on Linux" ("Add a database").
pub fn set_recovery_full(database: &str) -> String {
    format!("ALTER DATABASE {} SET RECOVERY FULL", ident(database))
}

/// `BACKUP DATABASE ... TO DISK = N'/dev/null'`: the full backup a database needs before it can
/// join. Microsoft's example writes a file under `/var/opt/mssql/data`; the agent discards the
/// backup instead, since automatic seeding does not read it (a deviation, noted in
/// docs/agent.md). Microsoft: "BACKUP (Transact-SQL)".
pub fn backup_database_to_null(database: &str) -> String {
    format!("BACKUP DATABASE {} TO DISK = N'/dev/null'", ident(database))
}

/// `ALTER AVAILABILITY GROUP ... ADD DATABASE ...` on the primary.
/// Microsoft: "Configure SQL Server availability group ... on Linux" ("Add a database").
pub fn add_database(ag: &str, database: &str) -> String {
    format!(
        "ALTER AVAILABILITY GROUP {} ADD DATABASE {}",
        ident(ag),
        ident(database)
    )
}

// ---- queries ---------------------------------------------------------------------------------

/// One row: `server_name` (`@@SERVERNAME`, nvarchar) and int flags `hadr_enabled`,
/// `master_key`, `login`, `user`, `certificate`, `endpoint`, `endpoint_started`,
/// `connect_granted`. Microsoft: "SERVERPROPERTY" (`IsHadrEnabled`), "sys.symmetric_keys" (the
/// master key is `##MS_DatabaseMasterKey##`), "sys.server_principals", "sys.database_principals",
/// "sys.certificates", "sys.database_mirroring_endpoints" (`state` 0 = STARTED),
/// "sys.server_permissions" (class 105 = endpoint).
pub fn setup_query(names: &SetupNames) -> String {
    format!(
        "SELECT CAST(@@SERVERNAME AS nvarchar(128)) AS server_name, \
         CAST(ISNULL(SERVERPROPERTY('IsHadrEnabled'), 0) AS int) AS hadr_enabled, \
         CASE WHEN EXISTS (SELECT 1 FROM master.sys.symmetric_keys WHERE name = N'##MS_DatabaseMasterKey##') THEN 1 ELSE 0 END AS master_key, \
         CASE WHEN EXISTS (SELECT 1 FROM sys.server_principals WHERE name = {login}) THEN 1 ELSE 0 END AS login, \
         CASE WHEN EXISTS (SELECT 1 FROM master.sys.database_principals WHERE name = {user}) THEN 1 ELSE 0 END AS [user], \
         CASE WHEN EXISTS (SELECT 1 FROM master.sys.certificates WHERE name = {certificate}) THEN 1 ELSE 0 END AS certificate, \
         CASE WHEN EXISTS (SELECT 1 FROM sys.database_mirroring_endpoints WHERE name = {endpoint}) THEN 1 ELSE 0 END AS endpoint, \
         CASE WHEN EXISTS (SELECT 1 FROM sys.database_mirroring_endpoints WHERE name = {endpoint} AND state = 0) THEN 1 ELSE 0 END AS endpoint_started, \
         CASE WHEN EXISTS (SELECT 1 FROM sys.server_permissions AS p \
         JOIN sys.database_mirroring_endpoints AS e ON p.class = 105 AND p.major_id = e.endpoint_id \
         JOIN sys.server_principals AS l ON l.principal_id = p.grantee_principal_id \
         WHERE e.name = {endpoint} AND l.name = {login} AND p.permission_name = N'CONNECT' AND p.state IN ('G', 'W')) \
         THEN 1 ELSE 0 END AS connect_granted",
        login = literal(&names.login),
        user = literal(&names.user),
        certificate = literal(&names.certificate),
        endpoint = literal(&names.endpoint),
    )
}

/// Zero rows when this instance has no AG of that name, else one row of `sequence_number`
/// (bigint), `required_synchronized_secondaries` (int), the local replica's `role` (int; NULL,
/// when the DMV has no local row, reads as 0 = RESOLVING) and `operational_state` (int; NULL
/// reads as 255 = unknown). Microsoft: "sys.availability_groups",
/// "sys.dm_hadr_availability_replica_states".
pub fn ag_query(ag: &str) -> String {
    format!(
        "SELECT CAST(g.sequence_number AS bigint) AS sequence_number, \
         CAST(g.required_synchronized_secondaries_to_commit AS int) AS required_synchronized_secondaries, \
         CAST(ISNULL(rs.role, 0) AS int) AS role, \
         CAST(ISNULL(rs.operational_state, 255) AS int) AS operational_state \
         FROM sys.availability_groups AS g \
         LEFT JOIN sys.dm_hadr_availability_replica_states AS rs ON rs.group_id = g.group_id AND rs.is_local = 1 \
         WHERE g.name = {}",
        literal(ag)
    )
}

/// `replica_server_name` (nvarchar) of every replica in the local copy of the AG
/// configuration, sorted. Microsoft: "sys.availability_replicas".
pub fn replicas_query(ag: &str) -> String {
    format!(
        "SELECT r.replica_server_name FROM sys.availability_replicas AS r \
         JOIN sys.availability_groups AS g ON g.group_id = r.group_id \
         WHERE g.name = {} ORDER BY r.replica_server_name",
        literal(ag)
    )
}

/// One row per local availability database: `database_name` (nvarchar), then int
/// `synchronization_state`, `is_failover_ready`, `is_suspended`, `database_state`, and
/// `last_hardened_lsn` as `lsn_high` / `lsn_low` (bigint; `lsn = high * 10^15 + low`, both NULL
/// when the LSN is). Microsoft: "sys.dm_hadr_database_replica_states",
/// "sys.dm_hadr_database_replica_cluster_states".
pub fn databases_query(ag: &str) -> String {
    format!(
        "SELECT DB_NAME(s.database_id) AS database_name, \
         CAST(s.synchronization_state AS int) AS synchronization_state, \
         CAST(ISNULL(c.is_failover_ready, 0) AS int) AS is_failover_ready, \
         CAST(s.is_suspended AS int) AS is_suspended, \
         CAST(s.database_state AS int) AS database_state, \
         CAST(FLOOR(s.last_hardened_lsn / 1000000000000000) AS bigint) AS lsn_high, \
         CAST(s.last_hardened_lsn % 1000000000000000 AS bigint) AS lsn_low \
         FROM sys.dm_hadr_database_replica_states AS s \
         JOIN sys.availability_groups AS g ON g.group_id = s.group_id \
         LEFT JOIN sys.dm_hadr_database_replica_cluster_states AS c \
         ON c.replica_id = s.replica_id AND c.group_database_id = s.group_database_id \
         WHERE s.is_local = 1 AND g.name = {} ORDER BY database_name",
        literal(ag)
    )
}

/// The divisor splitting `last_hardened_lsn` in [`databases_query`].
pub const LSN_SPLIT: u128 = 1_000_000_000_000_000;

/// Joins the two halves of [`databases_query`] back into one LSN.
pub fn join_lsn(high: Option<i64>, low: Option<i64>) -> Option<u128> {
    let high = u128::try_from(high?).ok()?;
    let low = u128::try_from(low?).ok()?;
    Some(high * LSN_SPLIT + low)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> ReplicaSpec {
        ReplicaSpec {
            name: "ag-0".into(),
            endpoint_url: "tcp://ag-0.ag-pods.demo.svc:5022".into(),
            secondary_access: SecondaryAccessMode::Passive,
        }
    }

    #[test]
    fn identifiers_and_literals_cannot_be_broken_out_of() {
        assert_eq!(ident("ag"), "[ag]");
        assert_eq!(ident("a]b"), "[a]]b]");
        assert_eq!(ident("]]"), "[]]]]]");
        assert_eq!(
            ident("x]; DROP DATABASE y; --"),
            "[x]]; DROP DATABASE y; --]"
        );
        assert_eq!(literal("pw"), "N'pw'");
        assert_eq!(literal("it's"), "N'it''s'");
        assert_eq!(literal("'; SHUTDOWN; --"), "N'''; SHUTDOWN; --'");
        assert_eq!(literal(""), "N''");
    }

    #[test]
    fn instance_setup_golden() {
        let n = SetupNames::default();
        let rows: [(String, &str); 8] = [
            (
                create_master_key("Mk'1"),
                "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'Mk''1'",
            ),
            (
                create_login(&n.login, "Lg'2"),
                "CREATE LOGIN [dbm_login] WITH PASSWORD = N'Lg''2'",
            ),
            (
                create_user(&n.user, &n.login),
                "CREATE USER [dbm_user] FOR LOGIN [dbm_login]",
            ),
            (
                create_certificate(
                    &n.certificate,
                    &n.user,
                    &CertificateFiles::Pfx {
                        path: "/var/opt/mssql/endpoint-cert/keystore.p12".into(),
                        password: "p'w".into(),
                    },
                ),
                "CREATE CERTIFICATE [dbm_certificate] AUTHORIZATION [dbm_user] \
                 FROM FILE = N'/var/opt/mssql/endpoint-cert/keystore.p12' \
                 WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = N'p''w')",
            ),
            (
                create_certificate(
                    &n.certificate,
                    &n.user,
                    &CertificateFiles::CerPvk {
                        certificate: "/var/opt/mssql/data/dbm_certificate.cer".into(),
                        private_key: "/var/opt/mssql/data/dbm_certificate.pvk".into(),
                        password: "pw".into(),
                    },
                ),
                "CREATE CERTIFICATE [dbm_certificate] AUTHORIZATION [dbm_user] \
                 FROM FILE = N'/var/opt/mssql/data/dbm_certificate.cer' \
                 WITH PRIVATE KEY (FILE = N'/var/opt/mssql/data/dbm_certificate.pvk', \
                 DECRYPTION BY PASSWORD = N'pw')",
            ),
            (
                create_endpoint(&n.endpoint, 5022, &n.certificate),
                "CREATE ENDPOINT [Hadr_endpoint] AS TCP (LISTENER_PORT = 5022) \
                 FOR DATABASE_MIRRORING (ROLE = ALL, AUTHENTICATION = CERTIFICATE [dbm_certificate], \
                 ENCRYPTION = REQUIRED ALGORITHM AES)",
            ),
            (
                start_endpoint(&n.endpoint),
                "ALTER ENDPOINT [Hadr_endpoint] STATE = STARTED",
            ),
            (
                grant_connect_on_endpoint(&n.endpoint, &n.login),
                "GRANT CONNECT ON ENDPOINT::[Hadr_endpoint] TO [dbm_login]",
            ),
        ];
        for (got, want) in rows {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn availability_group_golden() {
        let mut all = replica();
        all.name = "ag-1".into();
        all.endpoint_url = "tcp://ag-1.ag-pods.demo.svc:5022".into();
        all.secondary_access = SecondaryAccessMode::All;
        let rows: [(String, &str); 12] = [
            (
                create_availability_group("agdemo", &replica()),
                "CREATE AVAILABILITY GROUP [agdemo] WITH (CLUSTER_TYPE = EXTERNAL) \
                 FOR REPLICA ON N'ag-0' WITH (ENDPOINT_URL = N'tcp://ag-0.ag-pods.demo.svc:5022', \
                 AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL, \
                 SEEDING_MODE = AUTOMATIC, SECONDARY_ROLE (ALLOW_CONNECTIONS = NO))",
            ),
            (
                add_replica("agdemo", &all),
                "ALTER AVAILABILITY GROUP [agdemo] ADD REPLICA ON N'ag-1' \
                 WITH (ENDPOINT_URL = N'tcp://ag-1.ag-pods.demo.svc:5022', \
                 AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL, \
                 SEEDING_MODE = AUTOMATIC, SECONDARY_ROLE (ALLOW_CONNECTIONS = ALL))",
            ),
            (
                join("agdemo"),
                "ALTER AVAILABILITY GROUP [agdemo] JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
            ),
            (
                grant_create_any_database("agdemo"),
                "ALTER AVAILABILITY GROUP [agdemo] GRANT CREATE ANY DATABASE",
            ),
            (
                force_failover("agdemo"),
                "ALTER AVAILABILITY GROUP [agdemo] FORCE_FAILOVER_ALLOW_DATA_LOSS",
            ),
            (
                set_role_secondary("agdemo"),
                "ALTER AVAILABILITY GROUP [agdemo] SET (ROLE = SECONDARY)",
            ),
            (
                offline("agdemo"),
                "ALTER AVAILABILITY GROUP [agdemo] OFFLINE",
            ),
            (
                set_required_synchronized_secondaries("agdemo", 1),
                "ALTER AVAILABILITY GROUP [agdemo] SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = 1)",
            ),
            (
                resume_database("sales"),
                "ALTER DATABASE [sales] SET HADR RESUME",
            ),
            (
                create_database_if_missing("o'k]"),
                "IF DB_ID(N'o''k]') IS NULL CREATE DATABASE [o'k]]]",
            ),
            (
                set_recovery_full("sales"),
                "ALTER DATABASE [sales] SET RECOVERY FULL",
            ),
            (
                add_database("agdemo", "sales"),
                "ALTER AVAILABILITY GROUP [agdemo] ADD DATABASE [sales]",
            ),
        ];
        for (got, want) in rows {
            assert_eq!(got, want);
        }
        assert_eq!(
            backup_database_to_null("sales"),
            "BACKUP DATABASE [sales] TO DISK = N'/dev/null'"
        );
    }

    #[test]
    fn queries_golden() {
        assert_eq!(
            ag_query("agdemo"),
            "SELECT CAST(g.sequence_number AS bigint) AS sequence_number, \
             CAST(g.required_synchronized_secondaries_to_commit AS int) AS required_synchronized_secondaries, \
             CAST(ISNULL(rs.role, 0) AS int) AS role, \
             CAST(ISNULL(rs.operational_state, 255) AS int) AS operational_state \
             FROM sys.availability_groups AS g \
             LEFT JOIN sys.dm_hadr_availability_replica_states AS rs ON rs.group_id = g.group_id AND rs.is_local = 1 \
             WHERE g.name = N'agdemo'"
        );
        assert_eq!(
            replicas_query("ag'x"),
            "SELECT r.replica_server_name FROM sys.availability_replicas AS r \
             JOIN sys.availability_groups AS g ON g.group_id = r.group_id \
             WHERE g.name = N'ag''x' ORDER BY r.replica_server_name"
        );
        assert_eq!(
            databases_query("agdemo"),
            "SELECT DB_NAME(s.database_id) AS database_name, \
             CAST(s.synchronization_state AS int) AS synchronization_state, \
             CAST(ISNULL(c.is_failover_ready, 0) AS int) AS is_failover_ready, \
             CAST(s.is_suspended AS int) AS is_suspended, \
             CAST(s.database_state AS int) AS database_state, \
             CAST(FLOOR(s.last_hardened_lsn / 1000000000000000) AS bigint) AS lsn_high, \
             CAST(s.last_hardened_lsn % 1000000000000000 AS bigint) AS lsn_low \
             FROM sys.dm_hadr_database_replica_states AS s \
             JOIN sys.availability_groups AS g ON g.group_id = s.group_id \
             LEFT JOIN sys.dm_hadr_database_replica_cluster_states AS c \
             ON c.replica_id = s.replica_id AND c.group_database_id = s.group_database_id \
             WHERE s.is_local = 1 AND g.name = N'agdemo' ORDER BY database_name"
        );
        let setup = setup_query(&SetupNames::default());
        assert!(setup.starts_with(
            "SELECT CAST(@@SERVERNAME AS nvarchar(128)) AS server_name, \
             CAST(ISNULL(SERVERPROPERTY('IsHadrEnabled'), 0) AS int) AS hadr_enabled, "
        ));
        for needle in [
            "FROM master.sys.symmetric_keys WHERE name = N'##MS_DatabaseMasterKey##'",
            "FROM sys.server_principals WHERE name = N'dbm_login'",
            "FROM master.sys.database_principals WHERE name = N'dbm_user'",
            "FROM master.sys.certificates WHERE name = N'dbm_certificate'",
            "WHERE name = N'Hadr_endpoint' AND state = 0",
            "p.class = 105",
            "AS connect_granted",
        ] {
            assert!(setup.contains(needle), "{needle} missing from {setup}");
        }
    }

    #[test]
    fn every_query_selects_only_the_columns_the_backend_reads() {
        // The backend reads columns by position; this pins the order.
        let columns = |sql: &str| -> Vec<String> {
            let select = sql.split(" FROM sys.").next().unwrap_or_default();
            select
                .split(" AS ")
                .skip(1)
                .filter_map(|part| part.split([',', ' ']).next().map(str::to_owned))
                .filter(|name| !name.starts_with("int") && !name.starts_with("bigint"))
                .collect()
        };
        assert_eq!(
            columns(&ag_query("a")),
            [
                "sequence_number",
                "required_synchronized_secondaries",
                "role",
                "operational_state"
            ]
        );
        assert_eq!(
            columns(&databases_query("a")),
            [
                "database_name",
                "synchronization_state",
                "is_failover_ready",
                "is_suspended",
                "database_state",
                "lsn_high",
                "lsn_low"
            ]
        );
    }

    #[test]
    fn lsn_halves_join_in_order() {
        assert_eq!(join_lsn(Some(0), Some(0)), Some(0));
        assert_eq!(
            join_lsn(Some(34), Some(1_234_500_001)),
            Some(34_000_001_234_500_001)
        );
        // The largest numeric(25,0): 10^25 - 1.
        assert_eq!(
            join_lsn(Some(9_999_999_999), Some(999_999_999_999_999)),
            Some(10u128.pow(25) - 1)
        );
        assert_eq!(join_lsn(None, Some(1)), None);
        assert_eq!(join_lsn(Some(-1), Some(1)), None);
        assert!(join_lsn(Some(2), Some(0)) > join_lsn(Some(1), Some(999_999_999_999_999)));
    }
}
