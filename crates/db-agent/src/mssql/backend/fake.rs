//! An in-memory model of SQL Server instances forming an availability group, for tests only
//! (compiled under `cfg(test)` or the `testing` feature, never in the shipped binary).
//!
//! [`FakeWorld`] holds every instance; [`FakeBackend`] is one instance's [`Backend`]. The model
//! refuses what the agent relies on SQL Server refusing:
//!
//! - `CREATE AVAILABILITY GROUP` on an instance that already has the AG, or before set-up;
//! - `ADD REPLICA`, `ADD DATABASE`, `REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT` anywhere but
//!   on the primary, and a replica already in the configuration;
//! - `JOIN` on an instance that has the AG, or when no reachable primary lists the instance;
//! - `FORCE_FAILOVER_ALLOW_DATA_LOSS` on an instance without the AG or on the primary;
//! - a required-secondaries count above `replicas − 1`.
//!
//! What it assumes where Microsoft's documentation is silent (and docs/agent.md repeats): a
//! forced failover adds one to the new primary's `sequence_number` and leaves every database
//! suspended until resumed; secondaries keep their last `is_failover_ready` when the primary
//! disappears; an instance that restarts comes back `RESOLVING`; automatic seeding copies a
//! database to a secondary once it has joined and was granted `CREATE ANY DATABASE`. Error
//! numbers are not modelled (every refusal has code 0).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{AgConfig, Backend, BackendError};
use crate::mssql::decide::{AgState, DatabaseState, InstanceSetup, LocalState, Role, SyncState};
use crate::mssql::tsql::ReplicaSpec;

/// One database on one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDb {
    /// Data movement state.
    pub sync: SyncState,
    /// `is_failover_ready`.
    pub failover_ready: bool,
    /// Suspended.
    pub suspended: bool,
    /// Hardened log.
    pub lsn: u128,
}

/// One instance's copy of the AG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAg {
    /// Local role.
    pub role: Role,
    /// Configuration sequence number.
    pub sequence_number: i64,
    /// REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT.
    pub required: u32,
    /// Replica names in the configuration.
    pub replicas: Vec<String>,
    /// Local databases.
    pub databases: BTreeMap<String, FakeDb>,
}

/// One SQL Server instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeInstance {
    /// Answers at all.
    pub up: bool,
    /// Set-up state.
    pub setup: InstanceSetup,
    /// `GRANT CREATE ANY DATABASE` ran.
    pub granted: bool,
    /// The AG, if this instance has it.
    pub ag: Option<FakeAg>,
    /// Every statement-level operation it carried out, in order (for assertions).
    pub log: Vec<String>,
}

impl FakeInstance {
    fn new() -> Self {
        Self {
            up: true,
            setup: InstanceSetup {
                hadr_enabled: true,
                ..InstanceSetup::default()
            },
            granted: false,
            ag: None,
            log: Vec::new(),
        }
    }
}

/// Every instance, shared by the backends of one test.
#[derive(Debug, Default)]
pub struct FakeWorld {
    /// Instances by name.
    pub instances: BTreeMap<String, FakeInstance>,
    /// How many times any instance ran `CREATE AVAILABILITY GROUP` successfully.
    pub ags_created: usize,
}

/// Handle on a shared [`FakeWorld`].
#[derive(Debug, Clone, Default)]
pub struct Fake(Arc<Mutex<FakeWorld>>);

fn refused(message: impl Into<String>) -> BackendError {
    BackendError::Refused {
        code: 0,
        message: message.into(),
    }
}

impl Fake {
    /// A world of `names`, each up, HADR enabled, nothing else set up.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let fake = Self::default();
        {
            let mut w = fake.world();
            for name in names {
                w.instances.insert(name.to_owned(), FakeInstance::new());
            }
        }
        fake
    }

    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, FakeWorld> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The backend of instance `name` for `config`.
    pub fn backend(&self, name: &str, config: AgConfig) -> FakeBackend {
        FakeBackend {
            world: self.clone(),
            name: name.to_owned(),
            config,
        }
    }

    /// Stops answering (process or pod gone).
    pub fn crash(&self, name: &str) {
        if let Some(i) = self.world().instances.get_mut(name) {
            i.up = false;
        }
        self.world().settle();
    }

    /// Answers again; a replica comes back RESOLVING.
    pub fn restart(&self, name: &str) {
        let mut w = self.world();
        if let Some(i) = w.instances.get_mut(name) {
            i.up = true;
            if let Some(ag) = &mut i.ag {
                ag.role = Role::Resolving;
            }
        }
        w.settle();
    }

    /// Comes back with an empty volume: no set-up, no AG, no databases.
    pub fn wipe(&self, name: &str) {
        let mut w = self.world();
        w.instances.insert(name.to_owned(), FakeInstance::new());
        w.settle();
    }

    /// A committed write to `db` on the primary: its log and that of every synchronized
    /// secondary advance.
    pub fn write(&self, db: &str) -> Result<(), BackendError> {
        let mut w = self.world();
        let Some(primary) = w.primary() else {
            return Err(refused("no primary"));
        };
        let lsn = {
            let ag = w.instances[&primary]
                .ag
                .as_ref()
                .ok_or_else(|| refused("no AG"))?;
            let d = ag.databases.get(db).ok_or_else(|| refused("no database"))?;
            if d.suspended {
                return Err(refused("database suspended"));
            }
            d.lsn + 1
        };
        for (name, instance) in &mut w.instances {
            let Some(ag) = instance.ag.as_mut() else {
                continue;
            };
            let following = instance.up
                && (name == &primary || ag.role == Role::Secondary)
                && ag.replicas.contains(&primary);
            if let Some(d) = ag.databases.get_mut(db)
                && following
                && !d.suspended
            {
                d.lsn = lsn;
            }
        }
        Ok(())
    }
}

impl FakeWorld {
    /// The instance that is up and primary with the highest sequence number.
    pub fn primary(&self) -> Option<String> {
        self.instances
            .iter()
            .filter(|(_, i)| i.up)
            .filter_map(|(n, i)| i.ag.as_ref().map(|ag| (n, ag)))
            .filter(|(_, ag)| ag.role == Role::Primary)
            .max_by_key(|(_, ag)| ag.sequence_number)
            .map(|(n, _)| n.clone())
    }

    /// Instances that are up and report PRIMARY.
    pub fn primaries(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter(|(_, i)| i.up && i.ag.as_ref().is_some_and(|ag| ag.role == Role::Primary))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Pushes the primary's configuration and databases to the secondaries connected to it,
    /// and marks everyone else not synchronizing.
    fn settle(&mut self) {
        let primary = self.primary();
        let config = primary.as_ref().and_then(|p| self.instances[p].ag.clone());
        for (name, instance) in &mut self.instances {
            if Some(name) == primary.as_ref() {
                continue;
            }
            let granted = instance.granted;
            let Some(ag) = instance.ag.as_mut() else {
                continue;
            };
            let connected = instance.up
                && ag.role == Role::Secondary
                && config.as_ref().is_some_and(|c| {
                    c.replicas.contains(name) && c.sequence_number >= ag.sequence_number
                })
                && !ag.databases.values().any(|d| d.suspended);
            match (&config, connected) {
                (Some(c), true) => {
                    ag.sequence_number = c.sequence_number;
                    ag.required = c.required;
                    ag.replicas = c.replicas.clone();
                    for (db, pd) in &c.databases {
                        if !granted && !ag.databases.contains_key(db) {
                            continue;
                        }
                        ag.databases.insert(
                            db.clone(),
                            FakeDb {
                                sync: SyncState::Synchronized,
                                failover_ready: true,
                                suspended: false,
                                lsn: pd.lsn,
                            },
                        );
                    }
                }
                _ => {
                    for d in ag.databases.values_mut() {
                        d.sync = SyncState::NotSynchronizing;
                    }
                }
            }
        }
    }
}

/// One instance's backend.
pub struct FakeBackend {
    world: Fake,
    name: String,
    config: AgConfig,
}

impl FakeBackend {
    fn with<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut FakeWorld, &str) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut w = self.world.world();
        let instance = w
            .instances
            .get(&self.name)
            .ok_or_else(|| BackendError::Unreachable("no such instance".into()))?;
        if !instance.up {
            return Err(BackendError::Unreachable("instance down".into()));
        }
        let result = f(&mut w, &self.name);
        if let Some(i) = w.instances.get_mut(&self.name) {
            let outcome = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("refused: {e}"),
            };
            i.log.push(format!("{op}: {outcome}"));
        }
        w.settle();
        result
    }
}

fn me<'a>(w: &'a mut FakeWorld, name: &str) -> &'a mut FakeInstance {
    w.instances
        .get_mut(name)
        .expect("checked by FakeBackend::with")
}

fn my_ag<'a>(w: &'a mut FakeWorld, name: &str) -> Result<&'a mut FakeAg, BackendError> {
    me(w, name)
        .ag
        .as_mut()
        .ok_or_else(|| refused("the availability group does not exist on this instance"))
}

fn primary_ag<'a>(w: &'a mut FakeWorld, name: &str) -> Result<&'a mut FakeAg, BackendError> {
    let ag = my_ag(w, name)?;
    if ag.role != Role::Primary {
        return Err(refused("this operation needs the primary replica"));
    }
    Ok(ag)
}

impl Backend for FakeBackend {
    async fn observe(&mut self) -> Result<LocalState, BackendError> {
        let w = self.world.world();
        let instance = w
            .instances
            .get(&self.name)
            .filter(|i| i.up)
            .ok_or_else(|| BackendError::Unreachable("instance down".into()))?;
        Ok(LocalState {
            setup: instance.setup,
            ag: instance.ag.as_ref().map(|ag| AgState {
                role: ag.role,
                online: true,
                sequence_number: ag.sequence_number,
                required_synchronized_secondaries: ag.required,
                replicas: ag.replicas.clone(),
                databases: ag
                    .databases
                    .iter()
                    .map(|(name, d)| DatabaseState {
                        name: name.clone(),
                        sync: if ag.role == Role::Primary && !d.suspended {
                            SyncState::Synchronized
                        } else {
                            d.sync
                        },
                        failover_ready: d.failover_ready,
                        suspended: d.suspended,
                        online: true,
                        hardened_lsn: Some(d.lsn),
                    })
                    .collect(),
            }),
        })
    }

    async fn setup_instance(&mut self, _have: InstanceSetup) -> Result<(), BackendError> {
        self.with("setup_instance", |w, name| {
            let i = me(w, name);
            if !i.setup.hadr_enabled {
                return Err(refused("HADR is not enabled"));
            }
            i.setup = InstanceSetup::DONE;
            Ok(())
        })
    }

    async fn create_ag(&mut self) -> Result<(), BackendError> {
        let replica = self.config.replica.name.clone();
        self.with("create_ag", |w, name| {
            let i = me(w, name);
            if !i.setup.all() {
                return Err(refused("instance set-up incomplete"));
            }
            if i.ag.is_some() {
                return Err(refused("an availability group of that name already exists"));
            }
            i.ag = Some(FakeAg {
                role: Role::Primary,
                sequence_number: 1,
                required: 0,
                replicas: vec![replica],
                databases: BTreeMap::new(),
            });
            w.ags_created += 1;
            Ok(())
        })
    }

    async fn add_replica(&mut self, replica: &ReplicaSpec) -> Result<(), BackendError> {
        let new = replica.name.clone();
        self.with("add_replica", |w, name| {
            let ag = primary_ag(w, name)?;
            if ag.replicas.contains(&new) {
                return Err(refused("the replica is already in the availability group"));
            }
            ag.replicas.push(new);
            ag.replicas.sort();
            ag.sequence_number += 1;
            Ok(())
        })
    }

    async fn join_ag(&mut self) -> Result<(), BackendError> {
        self.with("join_ag", |w, name| {
            if me(w, name).ag.is_some() {
                return Err(refused("already joined"));
            }
            let config = w
                .primary()
                .and_then(|p| w.instances[&p].ag.clone())
                .filter(|ag| ag.replicas.iter().any(|r| r == name))
                .ok_or_else(|| refused("no primary lists this replica"))?;
            me(w, name).ag = Some(FakeAg {
                role: Role::Secondary,
                sequence_number: config.sequence_number,
                required: config.required,
                replicas: config.replicas,
                databases: BTreeMap::new(),
            });
            Ok(())
        })
    }

    async fn grant_create_any_database(&mut self) -> Result<(), BackendError> {
        self.with("grant_create_any_database", |w, name| {
            my_ag(w, name)?;
            me(w, name).granted = true;
            Ok(())
        })
    }

    async fn promote(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let databases = databases.to_vec();
        self.with("promote", |w, name| {
            let ag = my_ag(w, name)?;
            if ag.role == Role::Primary {
                return Err(refused("already the primary replica"));
            }
            ag.role = Role::Primary;
            ag.sequence_number += 1;
            for (db, d) in &mut ag.databases {
                d.suspended = !databases.contains(db);
            }
            Ok(())
        })
    }

    async fn demote(&mut self) -> Result<(), BackendError> {
        self.with("demote", |w, name| {
            let ag = my_ag(w, name)?;
            ag.role = Role::Secondary;
            for d in ag.databases.values_mut() {
                d.suspended = true;
                d.sync = SyncState::NotSynchronizing;
            }
            Ok(())
        })
    }

    async fn follow_new_primary(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let databases = databases.to_vec();
        self.with("follow_new_primary", |w, name| {
            let primary = w
                .primary()
                .filter(|p| p != name)
                .ok_or_else(|| refused("no primary to follow"))?;
            let config = w.instances[&primary]
                .ag
                .clone()
                .unwrap_or_else(|| unreachable!());
            if !config.replicas.iter().any(|r| r == name) {
                return Err(refused("the primary does not list this replica"));
            }
            let ag = my_ag(w, name)?;
            ag.role = Role::Secondary;
            for (db, d) in &mut ag.databases {
                if databases.contains(db) {
                    d.suspended = false;
                }
            }
            // Log the old primary had hardened beyond the new one is rolled back on resume.
            ag.sequence_number = ag.sequence_number.min(config.sequence_number);
            Ok(())
        })
    }

    async fn resume_databases(&mut self, databases: &[String]) -> Result<(), BackendError> {
        let databases = databases.to_vec();
        self.with("resume_databases", |w, name| {
            let ag = my_ag(w, name)?;
            for (db, d) in &mut ag.databases {
                if databases.contains(db) {
                    d.suspended = false;
                }
            }
            Ok(())
        })
    }

    async fn set_required_synchronized_secondaries(
        &mut self,
        count: u32,
    ) -> Result<(), BackendError> {
        self.with("set_required_synchronized_secondaries", |w, name| {
            let ag = primary_ag(w, name)?;
            if usize::try_from(count).unwrap_or(usize::MAX) > ag.replicas.len().saturating_sub(1) {
                return Err(refused("more required secondaries than secondaries"));
            }
            ag.required = count;
            ag.sequence_number += 1;
            Ok(())
        })
    }

    async fn add_database(&mut self, database: &str) -> Result<(), BackendError> {
        let database = database.to_owned();
        self.with("add_database", |w, name| {
            let ag = primary_ag(w, name)?;
            if ag.databases.contains_key(&database) {
                return Err(refused("the database is already in the availability group"));
            }
            ag.databases.insert(
                database,
                FakeDb {
                    sync: SyncState::Synchronized,
                    failover_ready: true,
                    suspended: false,
                    lsn: 1,
                },
            );
            ag.sequence_number += 1;
            Ok(())
        })
    }
}

/// The configuration of one fake replica of AG `ag`: default names, endpoint port 5022 and
/// placeholder passwords (the fake checks none of them).
pub fn placeholder_config(replica: ReplicaSpec) -> AgConfig {
    AgConfig {
        ag: "ag".into(),
        replica,
        names: crate::mssql::tsql::SetupNames::default(),
        endpoint_port: 5022,
        secrets: super::SetupSecrets {
            master_key_password: "m".into(),
            login_password: "l".into(),
            certificate: crate::mssql::tsql::CertificateFiles::Pfx {
                path: "/keystore.p12".into(),
                password: "p".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::mssql::SecondaryAccessMode;

    fn config(name: &str) -> AgConfig {
        placeholder_config(spec(name))
    }

    fn spec(name: &str) -> ReplicaSpec {
        ReplicaSpec {
            name: name.into(),
            endpoint_url: format!("tcp://{name}:5022"),
            secondary_access: SecondaryAccessMode::Passive,
        }
    }

    fn is_refused<T: std::fmt::Debug>(r: Result<T, BackendError>) -> bool {
        matches!(r, Err(BackendError::Refused { .. }))
    }

    #[tokio::test]
    async fn refusal_rules() {
        let fake = Fake::new(["a", "b", "c"]);
        let mut a = fake.backend("a", config("a"));
        let mut b = fake.backend("b", config("b"));

        assert!(is_refused(a.create_ag().await), "before set-up");
        a.setup_instance(InstanceSetup::default()).await.unwrap();
        b.setup_instance(InstanceSetup::default()).await.unwrap();
        a.create_ag().await.unwrap();
        assert!(
            is_refused(a.create_ag().await),
            "second CREATE of the same AG"
        );
        assert!(
            is_refused(b.join_ag().await),
            "JOIN before the primary lists b"
        );
        assert!(
            is_refused(b.add_replica(&spec("c")).await),
            "ADD REPLICA on a non-member"
        );
        a.add_replica(&spec("b")).await.unwrap();
        assert!(is_refused(a.add_replica(&spec("b")).await), "replica twice");
        b.join_ag().await.unwrap();
        assert!(is_refused(b.join_ag().await), "JOIN twice");
        assert!(
            is_refused(b.add_replica(&spec("c")).await),
            "ADD REPLICA on a secondary"
        );
        assert!(
            is_refused(a.promote(&[]).await),
            "force failover on the primary"
        );
        assert!(
            is_refused(a.set_required_synchronized_secondaries(2).await),
            "two required of one secondary"
        );
        a.set_required_synchronized_secondaries(1).await.unwrap();
        let mut c = fake.backend("c", config("c"));
        assert!(
            is_refused(c.promote(&[]).await),
            "force failover without the AG"
        );
        assert_eq!(fake.world().ags_created, 1);
        assert!(
            fake.world().instances["a"]
                .log
                .iter()
                .any(|l| l.starts_with("create_ag: refused"))
        );
    }

    #[tokio::test]
    async fn seeding_writes_failover_and_rejoin() {
        let fake = Fake::new(["a", "b"]);
        let mut a = fake.backend("a", config("a"));
        let mut b = fake.backend("b", config("b"));
        a.setup_instance(InstanceSetup::default()).await.unwrap();
        b.setup_instance(InstanceSetup::default()).await.unwrap();
        a.create_ag().await.unwrap();
        a.add_replica(&spec("b")).await.unwrap();
        a.add_database("sales").await.unwrap();
        b.join_ag().await.unwrap();
        assert!(
            b.observe().await.unwrap().ag.unwrap().databases.is_empty(),
            "not granted yet"
        );
        b.grant_create_any_database().await.unwrap();
        fake.write("sales").unwrap();
        let seen = b.observe().await.unwrap().ag.unwrap();
        assert_eq!(seen.databases[0].hardened_lsn, Some(2));
        assert_eq!(seen.databases[0].sync, SyncState::Synchronized);
        assert_eq!(
            seen.sequence_number,
            a.observe().await.unwrap().ag.unwrap().sequence_number
        );

        fake.crash("a");
        assert!(matches!(
            a.observe().await,
            Err(BackendError::Unreachable(_))
        ));
        let orphaned = b.observe().await.unwrap().ag.unwrap();
        assert_eq!(orphaned.databases[0].sync, SyncState::NotSynchronizing);
        assert!(orphaned.databases[0].failover_ready, "last value kept");
        b.promote(&["sales".into()]).await.unwrap();
        let promoted = b.observe().await.unwrap().ag.unwrap();
        assert_eq!(promoted.role, Role::Primary);
        assert!(promoted.sequence_number > seen.sequence_number);
        fake.write("sales").unwrap();

        fake.restart("a");
        assert_eq!(a.observe().await.unwrap().ag.unwrap().role, Role::Resolving);
        a.demote().await.unwrap();
        a.follow_new_primary(&["sales".into()]).await.unwrap();
        let rejoined = a.observe().await.unwrap().ag.unwrap();
        assert_eq!(rejoined.role, Role::Secondary);
        assert_eq!(rejoined.databases[0].hardened_lsn, Some(3));
        assert_eq!(fake.world().primaries(), ["b"]);
    }
}
