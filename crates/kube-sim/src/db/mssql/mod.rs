//! Simulated SQL Server instances for availability-group pods.
//!
//! One [`Instance`] per pod of an MSSQLServer with an availability group, kept as long as the
//! pod's data volume (its PVC's uid) lives: a re-created pod on the same volume is a restarted
//! instance (its AG copy comes back RESOLVING), a new volume is an empty instance. [`World`]
//! holds every instance and carries out the [`sql::Statement`]s the pods' agents send, with the
//! refusals SQL Server documents; [`World::settle`] plays the part of the replicas' mirroring
//! connections (configuration pushed from the primary, automatic seeding, synchronization).
//! [`server`] serves each instance over TDS on `<pod IP>:1433`.
//!
//! What is assumed where Microsoft's documentation is silent, and said again in docs/testing.md:
//! a forced failover adds one to the new primary's sequence number and suspends its databases,
//! and those of each secondary that connects to it, until `SET HADR RESUME`; a restarted instance comes back RESOLVING; a secondary synchronizes
//! only while the primary lists it, its endpoint URL names its own pod, both endpoints are
//! started and its data volume is not marked stalled (the fault annotation
//! [`server::STALLED_ANNOTATION`] on the PVC). Error numbers are those of SQL Server where the
//! documentation gives one, otherwise plausible; the agent depends on none of them.

pub mod server;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};

use sql::{Query, ReplicaClause, Statement};

/// `sys.dm_hadr_availability_replica_states.role`: RESOLVING.
pub const ROLE_RESOLVING: i64 = 0;
/// PRIMARY.
pub const ROLE_PRIMARY: i64 = 1;
/// SECONDARY.
pub const ROLE_SECONDARY: i64 = 2;
/// `synchronization_state`: NOT SYNCHRONIZING.
pub const NOT_SYNCHRONIZING: i64 = 0;
/// SYNCHRONIZED.
pub const SYNCHRONIZED: i64 = 2;

/// An error SQL Server would return: number, severity and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: u32,
    pub class: u8,
    pub message: String,
}

fn refuse<T>(code: u32, message: impl Into<String>) -> Result<T, SqlError> {
    Err(SqlError {
        code,
        class: 16,
        message: message.into(),
    })
}

/// A result cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    BigInt(i64),
    Text(String),
}

/// What a batch returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A statement ran.
    Done,
    /// A result set: column names and rows.
    Rows(Vec<String>, Vec<Vec<Value>>),
}

/// Which instance: namespace and pod name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    pub namespace: String,
    pub pod: String,
}

/// The mirroring endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub port: u64,
    pub started: bool,
}

/// A database outside any AG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalDb {
    pub recovery_full: bool,
    pub backed_up: bool,
}

/// One database in the local copy of the AG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbReplica {
    pub sync: i64,
    pub failover_ready: bool,
    pub suspended: bool,
    pub lsn: u128,
}

/// The local copy of an availability group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgCopy {
    pub name: String,
    pub cluster_type: String,
    pub role: i64,
    pub offline: bool,
    pub sequence: i64,
    /// The replica that was primary when this copy was last brought up to date.
    pub primary: String,
    pub required: u32,
    /// Replica name → its endpoint URL.
    pub replicas: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DbReplica>,
    /// `GRANT CREATE ANY DATABASE` ran here (automatic seeding may create databases).
    pub granted: bool,
}

/// One SQL Server instance (its data volume's state, and whether it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `@@SERVERNAME`: the pod's host name.
    pub server_name: String,
    /// The `sa` password, fixed at the first start of an empty volume (later values of
    /// `MSSQL_SA_PASSWORD` are ignored, as SQL Server ignores them).
    pub sa_password: String,
    /// `MSSQL_ENABLE_HADR=1` at the last start.
    pub hadr: bool,
    pub master_key: bool,
    pub logins: BTreeSet<String>,
    /// User → login.
    pub users: BTreeMap<String, String>,
    pub certificates: BTreeSet<String>,
    pub endpoint: Option<Endpoint>,
    /// (endpoint, login) pairs granted CONNECT.
    pub grants: BTreeSet<(String, String)>,
    pub databases: BTreeMap<String, LocalDb>,
    pub ag: Option<AgCopy>,
    /// The SQL Server process runs (its pod is running and not terminating).
    pub up: bool,
    /// Files the SQL Server container can read (its mounted secrets' keys).
    pub files: BTreeSet<String>,
    /// Fault: this replica's data never catches up (it stays NOT SYNCHRONIZING).
    pub stalled: bool,
}

impl Instance {
    /// An empty volume's first start.
    pub fn new(server_name: &str, sa_password: &str, hadr: bool) -> Self {
        Self {
            server_name: server_name.to_owned(),
            sa_password: sa_password.to_owned(),
            hadr,
            master_key: false,
            logins: BTreeSet::from(["sa".to_owned()]),
            users: BTreeMap::new(),
            certificates: BTreeSet::new(),
            endpoint: None,
            grants: BTreeSet::new(),
            databases: BTreeMap::new(),
            ag: None,
            up: true,
            files: BTreeSet::new(),
            stalled: false,
        }
    }

    /// The process starts again on the same volume: the AG copy is RESOLVING until told its role.
    pub fn restart(&mut self, hadr: bool) {
        self.up = true;
        self.hadr = hadr;
        if let Some(ag) = &mut self.ag {
            ag.role = ROLE_RESOLVING;
            for d in ag.databases.values_mut() {
                d.sync = NOT_SYNCHRONIZING;
            }
        }
    }

    /// Whether `user`/`password` may log in.
    pub fn login_ok(&self, user: &str, password: &str) -> bool {
        user.eq_ignore_ascii_case("sa") && password == self.sa_password
    }
}

/// Every simulated instance.
#[derive(Debug, Default)]
pub struct World {
    pub instances: BTreeMap<InstanceId, Instance>,
    /// Successful `CREATE AVAILABILITY GROUP`s per (namespace, AG name).
    pub ags_created: BTreeMap<(String, String), usize>,
}

fn missing<T>(what: &str, name: &str) -> Result<T, SqlError> {
    refuse(
        15151,
        format!(
            "Cannot find the {what} '{name}', because it does not exist or you do not have permission."
        ),
    )
}

fn flag(b: bool) -> Value {
    Value::Int(i64::from(b))
}

impl World {
    /// Runs `statement` on instance `id`, then lets the replicas settle.
    pub fn execute(&mut self, id: &InstanceId, statement: Statement) -> Result<Answer, SqlError> {
        let result = self.run(id, statement);
        self.settle(&id.namespace);
        result
    }

    fn me(&mut self, id: &InstanceId) -> Result<&mut Instance, SqlError> {
        match self.instances.get_mut(id) {
            Some(i) if i.up => Ok(i),
            _ => refuse(0, "the instance is not running"),
        }
    }

    /// The primary of AG `ag` in `namespace`: up, PRIMARY, highest sequence number.
    pub fn primary(&self, namespace: &str, ag: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .filter(|(id, i)| id.namespace == namespace && i.up)
            .filter_map(|(id, i)| i.ag.as_ref().map(|a| (id, a)))
            .filter(|(_, a)| a.name == ag && a.role == ROLE_PRIMARY && !a.offline)
            .max_by_key(|(_, a)| a.sequence)
            .map(|(id, _)| id.clone())
    }

    fn run(&mut self, id: &InstanceId, statement: Statement) -> Result<Answer, SqlError> {
        match statement {
            Statement::Query(q) => self.query(id, q),
            Statement::CreateMasterKey { .. } => {
                let me = self.me(id)?;
                if me.master_key {
                    return refuse(
                        15578,
                        "There is already a master key in the database. Please drop it before performing this statement.",
                    );
                }
                me.master_key = true;
                Ok(Answer::Done)
            }
            Statement::CreateLogin { login, .. } => {
                let me = self.me(id)?;
                if !me.logins.insert(login.clone()) {
                    return refuse(
                        15025,
                        format!("The server principal '{login}' already exists."),
                    );
                }
                Ok(Answer::Done)
            }
            Statement::CreateUser { user, login } => {
                let me = self.me(id)?;
                if me.users.contains_key(&user) {
                    return refuse(
                        15023,
                        format!(
                            "User, group, or role '{user}' already exists in the current database."
                        ),
                    );
                }
                if !me.logins.contains(&login) {
                    return refuse(
                        15007,
                        format!("'{login}' is not a valid login or you do not have permission."),
                    );
                }
                me.users.insert(user, login);
                Ok(Answer::Done)
            }
            Statement::CreateCertificate {
                name,
                owner,
                file,
                key_file,
                ..
            } => {
                let me = self.me(id)?;
                if me.certificates.contains(&name) {
                    return refuse(
                        15232,
                        format!(
                            "A certificate with name '{name}' already exists or this certificate already has been added to the database."
                        ),
                    );
                }
                if !me.master_key {
                    return refuse(
                        15581,
                        "Please create a master key in the database or open the master key in the session before performing this operation.",
                    );
                }
                if !me.users.contains_key(&owner) {
                    return missing("user", &owner);
                }
                for f in std::iter::once(&file).chain(key_file.as_ref()) {
                    if !me.files.contains(f) {
                        return refuse(
                            15208,
                            format!(
                                "The certificate, asymmetric key, or private key file is not valid or does not exist; or you do not have permissions for it. ({f})"
                            ),
                        );
                    }
                }
                me.certificates.insert(name);
                Ok(Answer::Done)
            }
            Statement::CreateEndpoint {
                name,
                port,
                certificate,
            } => {
                let me = self.me(id)?;
                if me.endpoint.is_some() {
                    return refuse(
                        7862,
                        "An endpoint of the requested type already exists.  Only one endpoint of this type is supported.  Use ALTER ENDPOINT or DROP the existing endpoint and execute the CREATE ENDPOINT command.",
                    );
                }
                if !me.certificates.contains(&certificate) {
                    return missing("certificate", &certificate);
                }
                me.endpoint = Some(Endpoint {
                    name,
                    port,
                    started: false,
                });
                Ok(Answer::Done)
            }
            Statement::StartEndpoint { name } => {
                let me = self.me(id)?;
                match &mut me.endpoint {
                    Some(e) if e.name == name => {
                        e.started = true;
                        Ok(Answer::Done)
                    }
                    _ => missing("endpoint", &name),
                }
            }
            Statement::GrantConnect { endpoint, login } => {
                let me = self.me(id)?;
                if me.endpoint.as_ref().is_none_or(|e| e.name != endpoint) {
                    return missing("endpoint", &endpoint);
                }
                if !me.logins.contains(&login) {
                    return missing("login", &login);
                }
                me.grants.insert((endpoint, login));
                Ok(Answer::Done)
            }
            Statement::CreateAg {
                ag,
                cluster_type,
                replica,
            } => self.create_ag(id, ag, cluster_type, replica),
            Statement::AddReplica { ag, replica } => {
                let me = self.me(id)?;
                let copy = primary_copy(me, &ag)?;
                check_failover_mode(&copy.cluster_type, &replica)?;
                if copy.replicas.contains_key(&replica.name) {
                    return refuse(
                        35212,
                        format!(
                            "The availability replica '{}' is already part of availability group '{ag}'.",
                            replica.name
                        ),
                    );
                }
                copy.replicas.insert(replica.name, replica.endpoint_url);
                copy.sequence += 1;
                Ok(Answer::Done)
            }
            Statement::Join { ag, cluster_type } => {
                let namespace = id.namespace.clone();
                let primary = self.primary(&namespace, &ag);
                let config = primary
                    .as_ref()
                    .and_then(|p| self.instances.get(p))
                    .and_then(|p| p.ag.clone())
                    .filter(|c| c.replicas.contains_key(&id.pod));
                let me = self.me(id)?;
                if !me.hadr {
                    return hadr_disabled();
                }
                if me.ag.is_some() {
                    return refuse(
                        41106,
                        format!(
                            "Cannot join availability group '{ag}': the local replica has already joined."
                        ),
                    );
                }
                let Some(config) = config else {
                    return refuse(
                        41158,
                        format!(
                            "Failed to join local availability replica to availability group '{ag}'. The operation encountered SQL Server error 41106: no reachable primary replica lists this instance."
                        ),
                    );
                };
                if config.cluster_type != cluster_type {
                    return refuse(
                        41199,
                        format!(
                            "The specified CLUSTER_TYPE ({cluster_type}) does not match the availability group's ({}).",
                            config.cluster_type
                        ),
                    );
                }
                me.ag = Some(AgCopy {
                    role: ROLE_SECONDARY,
                    offline: false,
                    databases: BTreeMap::new(),
                    granted: false,
                    ..config
                });
                Ok(Answer::Done)
            }
            Statement::GrantCreateAnyDatabase { ag } => {
                let me = self.me(id)?;
                my_copy(me, &ag)?.granted = true;
                Ok(Answer::Done)
            }
            Statement::ForceFailover { ag } => {
                let me = self.me(id)?;
                let copy = my_copy(me, &ag)?;
                if copy.role == ROLE_PRIMARY && !copy.offline {
                    return refuse(
                        41142,
                        format!(
                            "The availability replica for availability group '{ag}' on this instance of SQL Server is already the primary replica."
                        ),
                    );
                }
                copy.role = ROLE_PRIMARY;
                copy.offline = false;
                copy.sequence += 1;
                copy.primary = id.pod.clone();
                for d in copy.databases.values_mut() {
                    d.suspended = true;
                }
                Ok(Answer::Done)
            }
            Statement::SetRoleSecondary { ag } => {
                let me = self.me(id)?;
                let copy = my_copy(me, &ag)?;
                if copy.cluster_type != "EXTERNAL" {
                    return refuse(
                        47104,
                        "SET (ROLE = SECONDARY) is valid only for CLUSTER_TYPE = EXTERNAL.",
                    );
                }
                if copy.role == ROLE_PRIMARY {
                    for d in copy.databases.values_mut() {
                        d.suspended = true;
                        d.sync = NOT_SYNCHRONIZING;
                    }
                }
                copy.role = ROLE_SECONDARY;
                copy.offline = false;
                Ok(Answer::Done)
            }
            Statement::Offline { ag } => {
                let me = self.me(id)?;
                let copy = my_copy(me, &ag)?;
                copy.offline = true;
                copy.role = ROLE_RESOLVING;
                Ok(Answer::Done)
            }
            Statement::SetRequiredSynchronizedSecondaries { ag, count } => {
                let me = self.me(id)?;
                let copy = primary_copy(me, &ag)?;
                if count as usize > copy.replicas.len().saturating_sub(1) {
                    return refuse(
                        41183,
                        format!(
                            "REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = {count} exceeds the number of secondary replicas of availability group '{ag}'."
                        ),
                    );
                }
                copy.required = u32::try_from(count).unwrap_or(u32::MAX);
                copy.sequence += 1;
                Ok(Answer::Done)
            }
            Statement::AddDatabase { ag, database } => {
                let me = self.me(id)?;
                let Some(local) = me.databases.get(&database).cloned() else {
                    return no_database(&database);
                };
                let copy = primary_copy(me, &ag)?;
                if copy.databases.contains_key(&database) {
                    return refuse(
                        35224,
                        format!(
                            "Database '{database}' is already joined to availability group '{ag}'."
                        ),
                    );
                }
                if !local.recovery_full {
                    return refuse(
                        1475,
                        format!(
                            "Database \"{database}\" might contain bulk logged changes that have not been backed up. Take a log backup on the principal database or primary database. (It is not in the FULL recovery model.)"
                        ),
                    );
                }
                if !local.backed_up {
                    return refuse(
                        35250,
                        format!(
                            "Database '{database}' cannot be added to availability group '{ag}': it has never been backed up."
                        ),
                    );
                }
                copy.databases.insert(
                    database,
                    DbReplica {
                        sync: SYNCHRONIZED,
                        failover_ready: true,
                        suspended: false,
                        lsn: 1,
                    },
                );
                copy.sequence += 1;
                Ok(Answer::Done)
            }
            Statement::ResumeDatabase { database } => {
                let me = self.me(id)?;
                let Some(d) = me.ag.as_mut().and_then(|a| a.databases.get_mut(&database)) else {
                    return refuse(
                        35242,
                        format!(
                            "Cannot complete this ALTER DATABASE SET HADR operation on database '{database}'. The database is not joined to an availability group."
                        ),
                    );
                };
                d.suspended = false;
                Ok(Answer::Done)
            }
            Statement::CreateDatabaseIfMissing { database } => {
                let me = self.me(id)?;
                let in_ag = me
                    .ag
                    .as_ref()
                    .is_some_and(|a| a.databases.contains_key(&database));
                if !in_ag {
                    me.databases.entry(database).or_default();
                }
                Ok(Answer::Done)
            }
            Statement::SetRecoveryFull { database } => {
                standalone_database(self.me(id)?, &database, |d| d.recovery_full = true)
            }
            Statement::Backup { database, disk } => {
                let me = self.me(id)?;
                if disk != "/dev/null" && !disk.starts_with("/var/opt/mssql/") {
                    return refuse(
                        3201,
                        format!(
                            "Cannot open backup device '{disk}'. Operating system error 13(Permission denied)."
                        ),
                    );
                }
                standalone_database(me, &database, |d| d.backed_up = true)
            }
        }
    }

    fn create_ag(
        &mut self,
        id: &InstanceId,
        ag: String,
        cluster_type: String,
        replica: ReplicaClause,
    ) -> Result<Answer, SqlError> {
        let me = self.me(id)?;
        if !me.hadr {
            return hadr_disabled();
        }
        if me.ag.is_some() {
            return refuse(
                41042,
                format!("The availability group name '{ag}' is already in use on this instance."),
            );
        }
        if replica.name != me.server_name {
            return refuse(
                35237,
                format!(
                    "The local server instance '{}' is not named in the REPLICA ON clause ('{}').",
                    me.server_name, replica.name
                ),
            );
        }
        if me.endpoint.is_none() {
            return refuse(
                35221,
                "Could not process the operation. The database mirroring endpoint of this instance does not exist.",
            );
        }
        check_failover_mode(&cluster_type, &replica)?;
        me.ag = Some(AgCopy {
            name: ag.clone(),
            cluster_type,
            role: ROLE_PRIMARY,
            offline: false,
            sequence: 1,
            primary: replica.name.clone(),
            required: 0,
            replicas: BTreeMap::from([(replica.name, replica.endpoint_url)]),
            databases: BTreeMap::new(),
            granted: false,
        });
        *self
            .ags_created
            .entry((id.namespace.clone(), ag))
            .or_default() += 1;
        Ok(Answer::Done)
    }

    fn query(&mut self, id: &InstanceId, q: Query) -> Result<Answer, SqlError> {
        let me = self.me(id)?;
        let rows = |columns: Vec<String>, f: &dyn Fn(&str) -> Value| {
            let row = columns.iter().map(|c| f(c)).collect();
            Answer::Rows(columns, vec![row])
        };
        Ok(match q {
            Query::Setup {
                login,
                user,
                certificate,
                endpoint,
                columns,
            } => {
                let has = |set: &BTreeSet<String>, n: &Option<String>| {
                    n.as_ref().is_some_and(|n| set.contains(n))
                };
                let endpoint_named = me
                    .endpoint
                    .as_ref()
                    .filter(|e| endpoint.as_ref() == Some(&e.name));
                rows(columns, &|c| match c {
                    "server_name" => Value::Text(me.server_name.clone()),
                    "hadr_enabled" => flag(me.hadr),
                    "master_key" => flag(me.master_key),
                    "login" => flag(has(&me.logins, &login)),
                    "user" => flag(user.as_ref().is_some_and(|u| me.users.contains_key(u))),
                    "certificate" => flag(has(&me.certificates, &certificate)),
                    "endpoint" => flag(endpoint_named.is_some()),
                    "endpoint_started" => flag(endpoint_named.is_some_and(|e| e.started)),
                    "connect_granted" => flag(
                        endpoint_named.is_some()
                            && login.as_ref().is_some_and(|l| {
                                me.grants
                                    .contains(&(endpoint.clone().unwrap_or_default(), l.clone()))
                            }),
                    ),
                    _ => Value::Null,
                })
            }
            Query::Ag { ag, columns } => match me.ag.as_ref().filter(|a| a.name == ag) {
                None => Answer::Rows(columns, Vec::new()),
                Some(a) => rows(columns, &|c| match c {
                    "sequence_number" => Value::BigInt(a.sequence),
                    "required_synchronized_secondaries" => Value::Int(i64::from(a.required)),
                    "role" => Value::Int(a.role),
                    "operational_state" => Value::Int(if a.offline { 255 } else { 2 }),
                    _ => Value::Null,
                }),
            },
            Query::Replicas { ag } => {
                let names = me
                    .ag
                    .as_ref()
                    .filter(|a| a.name == ag)
                    .map(|a| a.replicas.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                Answer::Rows(
                    vec!["replica_server_name".into()],
                    names.into_iter().map(|n| vec![Value::Text(n)]).collect(),
                )
            }
            Query::Databases { ag, columns } => {
                let Some(a) = me.ag.as_ref().filter(|a| a.name == ag) else {
                    return Ok(Answer::Rows(columns, Vec::new()));
                };
                let split = 1_000_000_000_000_000_u128;
                let out = a
                    .databases
                    .iter()
                    .map(|(name, d)| {
                        let sync = if a.role == ROLE_PRIMARY && !d.suspended {
                            SYNCHRONIZED
                        } else {
                            d.sync
                        };
                        columns
                            .iter()
                            .map(|c| match c.as_str() {
                                "database_name" => Value::Text(name.clone()),
                                "synchronization_state" => Value::Int(sync),
                                "is_failover_ready" => flag(d.failover_ready),
                                "is_suspended" => flag(d.suspended),
                                "database_state" => Value::Int(0),
                                "lsn_high" => {
                                    Value::BigInt(i64::try_from(d.lsn / split).unwrap_or(0))
                                }
                                "lsn_low" => {
                                    Value::BigInt(i64::try_from(d.lsn % split).unwrap_or(0))
                                }
                                _ => Value::Null,
                            })
                            .collect()
                    })
                    .collect();
                Answer::Rows(columns, out)
            }
        })
    }

    /// Plays the mirroring connections of every AG in `namespace`: a connected secondary takes
    /// the primary's configuration and databases (seeded when it was granted CREATE ANY
    /// DATABASE) and is SYNCHRONIZED; every other secondary is NOT SYNCHRONIZING.
    pub fn settle(&mut self, namespace: &str) {
        let ags: BTreeSet<String> = self
            .instances
            .iter()
            .filter(|(id, _)| id.namespace == namespace)
            .filter_map(|(_, i)| i.ag.as_ref().map(|a| a.name.clone()))
            .collect();
        for ag in ags {
            let primary = self.primary(namespace, &ag);
            let source = primary.as_ref().and_then(|p| {
                let i = &self.instances[p];
                Some((
                    i.ag.clone()?,
                    i.endpoint.as_ref().is_some_and(|e| e.started),
                ))
            });
            for (id, instance) in &mut self.instances {
                if id.namespace != namespace || Some(id) == primary.as_ref() {
                    continue;
                }
                let endpoint_started = instance.endpoint.as_ref().is_some_and(|e| e.started);
                let endpoint_port = instance.endpoint.as_ref().map(|e| e.port);
                let stalled = instance.stalled;
                let up = instance.up;
                let Some(copy) = instance.ag.as_mut().filter(|a| a.name == ag) else {
                    continue;
                };
                let connected = match &source {
                    Some((config, primary_endpoint)) => {
                        up && !stalled
                            && *primary_endpoint
                            && endpoint_started
                            && copy.role == ROLE_SECONDARY
                            && config.sequence >= copy.sequence
                            && config
                                .replicas
                                .get(&id.pod)
                                .is_some_and(|url| url_reaches(url, &id.pod, endpoint_port))
                    }
                    None => false,
                };
                match (&source, connected) {
                    (Some((config, _)), true) => {
                        // After a failover the secondaries' databases are suspended until
                        // resumed (Microsoft: "Perform a forced manual failover").
                        if copy.primary != config.primary {
                            for d in copy.databases.values_mut() {
                                d.suspended = true;
                            }
                            copy.primary = config.primary.clone();
                        }
                        copy.sequence = config.sequence;
                        copy.required = config.required;
                        copy.replicas = config.replicas.clone();
                        for (db, pd) in &config.databases {
                            match copy.databases.get_mut(db) {
                                Some(d) if d.suspended => d.sync = NOT_SYNCHRONIZING,
                                Some(d) => {
                                    d.sync = SYNCHRONIZED;
                                    d.failover_ready = true;
                                    d.lsn = pd.lsn;
                                }
                                None if copy.granted => {
                                    copy.databases.insert(
                                        db.clone(),
                                        DbReplica {
                                            sync: SYNCHRONIZED,
                                            failover_ready: true,
                                            suspended: false,
                                            lsn: pd.lsn,
                                        },
                                    );
                                }
                                None => {}
                            }
                        }
                    }
                    _ => {
                        for d in copy.databases.values_mut() {
                            d.sync = NOT_SYNCHRONIZING;
                        }
                    }
                }
            }
        }
    }

    /// What `GET /sim/sql-servers` shows: every instance's state (no secrets) and how many
    /// times each AG was created.
    pub fn summary(&self) -> serde_json::Value {
        let instances: Vec<serde_json::Value> = self
            .instances
            .iter()
            .map(|(id, i)| {
                serde_json::json!({
                    "namespace": id.namespace,
                    "pod": id.pod,
                    "up": i.up,
                    "stalled": i.stalled,
                    "setUp": i.master_key && i.endpoint.as_ref().is_some_and(|e| e.started),
                    "ag": i.ag.as_ref().map(|a| serde_json::json!({
                        "name": a.name,
                        "role": match a.role {
                            ROLE_PRIMARY => "PRIMARY",
                            ROLE_SECONDARY => "SECONDARY",
                            _ => "RESOLVING",
                        },
                        "sequenceNumber": a.sequence,
                        "requiredSynchronizedSecondaries": a.required,
                        "replicas": a.replicas.keys().collect::<Vec<_>>(),
                        "databases": a.databases.iter().map(|(n, d)| serde_json::json!({
                            "name": n,
                            "synchronized": d.sync == SYNCHRONIZED || (a.role == ROLE_PRIMARY && !d.suspended),
                            "suspended": d.suspended,
                            "lsn": d.lsn.to_string(),
                        })).collect::<Vec<_>>(),
                    })),
                })
            })
            .collect();
        let created: Vec<serde_json::Value> = self
            .ags_created
            .iter()
            .map(|((ns, ag), n)| serde_json::json!({"namespace": ns, "ag": ag, "created": n}))
            .collect();
        serde_json::json!({"instances": instances, "availabilityGroupsCreated": created})
    }

    /// Simulated client traffic: one committed transaction in every database of every primary
    /// that can commit (not suspended, and with its required synchronized secondaries).
    pub fn write_everywhere(&mut self) {
        let namespaces: BTreeSet<String> = self
            .instances
            .keys()
            .map(|id| id.namespace.clone())
            .collect();
        for namespace in namespaces {
            let ags: BTreeSet<String> = self
                .instances
                .iter()
                .filter(|(id, _)| id.namespace == namespace)
                .filter_map(|(_, i)| i.ag.as_ref().map(|a| a.name.clone()))
                .collect();
            for ag in ags {
                let Some(primary) = self.primary(&namespace, &ag) else {
                    continue;
                };
                let synchronized = |db: &str| {
                    self.instances
                        .iter()
                        .filter(|(id, _)| id.namespace == namespace && *id != &primary)
                        .filter_map(|(_, i)| i.ag.as_ref())
                        .filter(|a| a.name == ag && a.role == ROLE_SECONDARY)
                        .filter(|a| a.databases.get(db).is_some_and(|d| d.sync == SYNCHRONIZED))
                        .count()
                };
                let Some(config) = self.instances[&primary].ag.clone() else {
                    continue;
                };
                let writable: Vec<String> = config
                    .databases
                    .iter()
                    .filter(|(db, d)| !d.suspended && synchronized(db) >= config.required as usize)
                    .map(|(db, _)| db.clone())
                    .collect();
                if let Some(copy) = self.instances.get_mut(&primary).and_then(|i| i.ag.as_mut()) {
                    for db in &writable {
                        if let Some(d) = copy.databases.get_mut(db) {
                            d.lsn += 1;
                        }
                    }
                }
            }
            self.settle(&namespace);
        }
    }
}

fn hadr_disabled<T>() -> Result<T, SqlError> {
    refuse(
        35220,
        "Could not process the operation. Always On Availability Groups has not been enabled on this instance of SQL Server (MSSQL_ENABLE_HADR).",
    )
}

/// Applies `change` to a database of `me` that is not in its availability group yet (once it
/// is, the statement has nothing left to do).
fn standalone_database(
    me: &mut Instance,
    database: &str,
    change: impl FnOnce(&mut LocalDb),
) -> Result<Answer, SqlError> {
    if me
        .ag
        .as_ref()
        .is_some_and(|a| a.databases.contains_key(database))
    {
        return Ok(Answer::Done);
    }
    match me.databases.get_mut(database) {
        Some(d) => {
            change(d);
            Ok(Answer::Done)
        }
        None => no_database(database),
    }
}

fn no_database<T>(database: &str) -> Result<T, SqlError> {
    refuse(
        911,
        format!(
            "Database '{database}' does not exist. Make sure that the name is entered correctly."
        ),
    )
}

fn my_copy<'a>(me: &'a mut Instance, ag: &str) -> Result<&'a mut AgCopy, SqlError> {
    match me.ag.as_mut() {
        Some(a) if a.name == ag => Ok(a),
        _ => missing("availability group", ag),
    }
}

fn primary_copy<'a>(me: &'a mut Instance, ag: &str) -> Result<&'a mut AgCopy, SqlError> {
    let copy = my_copy(me, ag)?;
    if copy.role != ROLE_PRIMARY || copy.offline {
        return refuse(
            41190,
            format!(
                "Availability group '{ag}' failed to process the operation: the local availability replica is not the primary replica."
            ),
        );
    }
    Ok(copy)
}

fn check_failover_mode(cluster_type: &str, replica: &ReplicaClause) -> Result<(), SqlError> {
    if (cluster_type == "EXTERNAL") != (replica.failover_mode == "EXTERNAL") {
        return refuse(
            47105,
            format!(
                "FAILOVER_MODE = {} is not valid for CLUSTER_TYPE = {cluster_type}: an EXTERNAL cluster type needs FAILOVER_MODE = EXTERNAL and only it.",
                replica.failover_mode
            ),
        );
    }
    Ok(())
}

/// Whether endpoint URL `url` (`TCP://host:port`) reaches pod `pod`'s endpoint: the host is the
/// pod's own DNS name (`<pod>.<service>...`) and the port its endpoint's.
pub fn url_reaches(url: &str, pod: &str, port: Option<u64>) -> bool {
    let Some(rest) = url
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("tcp://"))
        .map(|_| &url[6..])
    else {
        return false;
    };
    let Some((host, p)) = rest.rsplit_once(':') else {
        return false;
    };
    let first = host.split('.').next().unwrap_or_default();
    first == pod && host.contains('.') && p.parse::<u64>().ok() == port && port.is_some()
}

#[cfg(test)]
mod tests;
