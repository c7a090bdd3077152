//! Simulated SingleStore nodes for the pods of clustered Singlestores.
//!
//! One [`Node`] per aggregator or leaf pod, kept as long as the pod's data volume (its PVC's uid)
//! lives: a re-created pod on the same volume is a restarted node (its state kept, a leaf's
//! partitions `recovering` until the next settle pass), a new volume is an empty node. [`World`]
//! holds every node and carries out the [`sql::Statement`]s the pods' agents send, with the rules
//! and refusals of the contract between the agent and kube-sim
//! (docs/singlestore-sim-contract.md): a cluster is bootstrapped on a licensed aggregator, leaves
//! and child aggregators are added by the master, databases get two partitions per leaf, every
//! change raises the master's metadata position by one, and [`World::settle`] plays the part of
//! the cluster's replication (children apply the master's position, restarted leaves' partitions
//! come online). [`server`] serves each node over the MySQL protocol on `<pod IP>:3306`.
//!
//! Hosts in cluster statements are the pods' stable DNS names `<pod>.<service>.<namespace>.svc`
//! ([`World::resolve`]). What is assumed where SingleStore's documentation is silent, and said
//! again in docs/testing.md: the license syntax (`SET LICENSE`), that the root password is taken
//! on a node's first start only, that a lost master that starts again still believes it is the
//! master of its old view, that databases and tables exist cluster-wide (the health check's
//! `kubedb_system.kv` reads back what any aggregator wrote), and error numbers other than MySQL's
//! (marked *assumed* below; the agent depends on none but 1045).

pub mod server;
pub mod sql;

use std::collections::BTreeMap;
use std::sync::Arc;

use sql::{Address, SelectItem, Statement};
use tokio::sync::Notify;

use crate::db::mysql::ServerError;

/// A wrong password (as MySQL's).
pub const ER_ACCESS_DENIED: u16 = 1045;
/// A statement the simulator does not know (MySQL's parse error).
pub const ER_PARSE: u16 = 1064;
/// `CREATE DATABASE` of an existing database (MySQL's).
pub const ER_DB_CREATE_EXISTS: u16 = 1007;
/// An unknown database (MySQL's).
pub const ER_BAD_DB: u16 = 1049;
/// `CREATE TABLE` of an existing table (MySQL's).
pub const ER_TABLE_EXISTS: u16 = 1050;
/// An unknown column (MySQL's).
pub const ER_BAD_FIELD: u16 = 1054;
/// A duplicate primary key (MySQL's).
pub const ER_DUP_ENTRY: u16 = 1062;
/// An unknown table (MySQL's).
pub const ER_NO_SUCH_TABLE: u16 = 1146;
/// The primary key is not given (MySQL's).
pub const ER_NO_DEFAULT: u16 = 1364;
/// The cluster's master aggregator cannot be reached from a child (MySQL's
/// `ER_CONNECT_TO_MASTER`).
pub const ER_MASTER_UNREACHABLE: u16 = 1218;
/// A host that does not resolve to a running node of the namespace, or a port other than 3306
/// (the client's "Can't connect" error, as relayed by SingleStore).
pub const ER_UNREACHABLE: u16 = 2003;
/// *Assumed*: the statement does not run on this kind or role of node (a leaf, a child, an
/// aggregator in no cluster).
pub const ER_WRONG_NODE: u16 = 1749;
/// *Assumed*: a membership refusal (already joined to a cluster, already a member, not a member,
/// removing the master).
pub const ER_MEMBERSHIP: u16 = 1750;
/// *Assumed*: no license, or a key that is not base64-like.
pub const ER_LICENSE: u16 = 1751;
/// *Assumed*: no leaf to hold partitions (a database on a cluster without online leaves, the last
/// leaf holding partitions removed).
pub const ER_NO_LEAVES: u16 = 1752;
/// *Assumed*: a promotion refused (the target is not an online child with current metadata, or
/// the master is still online).
pub const ER_PROMOTION: u16 = 1753;

/// The port every node listens on and every cluster statement names.
pub const PORT: u16 = 3306;
/// `@@max_allowed_packet`.
pub const MAX_ALLOWED_PACKET: i64 = 16_777_216;
/// `@@wait_timeout`.
pub const WAIT_TIMEOUT: i64 = 28_800;
/// `@@version_comment`.
pub const VERSION_COMMENT: &str = "SingleStore (kube-sim)";
/// Partitions per leaf of a new database.
pub const PARTITIONS_PER_LEAF: usize = 2;

fn refuse<T>(code: u16, message: impl Into<String>) -> Result<T, ServerError> {
    Err(ServerError::new(code, "HY000", message))
}

/// A result cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// What a statement returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A statement ran, changing this many rows.
    Done(u64),
    /// A result set: column names and rows.
    Rows(Vec<String>, Vec<Vec<Value>>),
}

fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Answer {
    Answer::Rows(columns.iter().map(|c| (*c).to_owned()).collect(), rows)
}

/// Which node: namespace and pod name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub namespace: String,
    pub pod: String,
}

/// A node's kind, from the pod label `kubedb.com/node-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Aggregator,
    Leaf,
}

impl Kind {
    /// `aggregator` or `leaf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Aggregator => "aggregator",
            Kind::Leaf => "leaf",
        }
    }
}

/// The state of a partition a leaf holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionState {
    Online,
    /// Since the leaf's restart, until the next settle pass (for ever while stalled).
    Recovering,
}

impl PartitionState {
    /// `online` or `recovering`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionState::Online => "online",
            PartitionState::Recovering => "recovering",
        }
    }
}

/// A node listed in a cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The host as the adding statement named it.
    pub host: String,
    /// The node it resolved to.
    pub node: NodeId,
    /// `Node_ID` / `NodeId`.
    pub node_id: u64,
}

/// An aggregator's copy of its cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The cluster's identity (one per `BOOTSTRAP AGGREGATOR`).
    pub cluster: u64,
    /// The metadata version this copy holds: one per change.
    pub position: u64,
    /// Master changes (`PROMOTE AGGREGATOR`, `AGGREGATOR SET AS MASTER`) this copy has seen: a
    /// master made later wins over an earlier one with a higher position (kube-sim's tie-break;
    /// not reported).
    pub term: u64,
    /// The master aggregator, as this copy knows it.
    pub master: NodeId,
    /// Aggregators, the master included.
    pub aggregators: Vec<Member>,
    pub leaves: Vec<Member>,
    /// Database → the leaf holding each partition (partition `i` is `<db>_<i>`).
    pub databases: BTreeMap<String, Vec<NodeId>>,
    /// The next `Node_ID` to hand out.
    pub next_node_id: u64,
}

impl Metadata {
    /// What orders two copies of one cluster's metadata: the later master, then the position.
    pub fn version(&self) -> (u64, u64) {
        (self.term, self.position)
    }

    fn member(&self, node: &NodeId) -> Option<&Member> {
        self.aggregators
            .iter()
            .chain(&self.leaves)
            .find(|m| &m.node == node)
    }

    fn host_of(&self, node: &NodeId) -> String {
        self.member(node)
            .map_or_else(|| node.pod.clone(), |m| m.host.clone())
    }
}

/// One SingleStore node (its data volume's state, and whether it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// The pod's governing service (its `subdomain`), part of its host name.
    pub service: String,
    /// The pod IP at the last start.
    pub ip: String,
    /// `ROOT_USERNAME` at the first start (`root` when unset).
    pub user: String,
    /// `ROOT_PASSWORD` at the first start; later values are ignored.
    pub password: String,
    /// `@@memsql_version`, from the image at the last start.
    pub version: String,
    /// `SET LICENSE`.
    pub license: Option<String>,
    /// The node runs (its pod is running and not terminating, and no fault keeps it down).
    pub up: bool,
    /// Fault: a restarted leaf's partitions stay `recovering`.
    pub stalled: bool,
    /// The cluster this node believes it belongs to.
    pub cluster: Option<u64>,
    /// An aggregator's copy of the cluster metadata.
    pub metadata: Option<Metadata>,
    /// A leaf's partitions `<db>_<i>`.
    pub partitions: BTreeMap<String, PartitionState>,
}

impl Node {
    /// An empty volume's first start.
    pub fn new(kind: Kind, user: &str, password: &str, version: &str) -> Self {
        Self {
            kind,
            service: String::new(),
            ip: String::new(),
            user: if user.is_empty() { "root" } else { user }.to_owned(),
            password: password.to_owned(),
            version: version.to_owned(),
            license: None,
            up: true,
            stalled: false,
            cluster: None,
            metadata: None,
            partitions: BTreeMap::new(),
        }
    }

    /// The node starts again on the same volume (perhaps another version): its partitions are
    /// recovering until the next settle pass.
    pub fn restart(&mut self, version: &str) {
        self.up = true;
        self.version = version.to_owned();
        for state in self.partitions.values_mut() {
            *state = PartitionState::Recovering;
        }
    }

    /// Whether `user`/`password` may log in.
    pub fn login_ok(&self, user: &str, password: &str) -> bool {
        user == self.user && password == self.password
    }

    /// `master`, `child` (aggregators in a cluster), `leaf` (leaves in a cluster) or `None`.
    pub fn role(&self, id: &NodeId) -> Option<&'static str> {
        match (self.kind, &self.metadata, self.cluster) {
            (Kind::Aggregator, Some(md), _) if &md.master == id => Some("master"),
            (Kind::Aggregator, Some(_), _) => Some("child"),
            (Kind::Leaf, _, Some(_)) => Some("leaf"),
            _ => None,
        }
    }
}

/// A table of the health check's kind: string columns and a one-column primary key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub key: String,
    /// Key value → column → value.
    pub rows: BTreeMap<String, BTreeMap<String, String>>,
}

/// Every simulated node.
#[derive(Debug, Default)]
pub struct World {
    pub nodes: BTreeMap<NodeId, Node>,
    /// (cluster, database, table) → table.
    pub tables: BTreeMap<(u64, String, String), Table>,
    /// The last cluster identity handed out.
    pub clusters_created: u64,
    /// Woken when a statement leaves work for the settle pass (the controller's wake-up).
    pub wake: Option<Arc<Notify>>,
}

/// `@@memsql_version` from an image: the first `-`-separated part of its tag made of digits and
/// dots (`8.7.10` from `...:alma-8.7.10-95e2357384`), else the whole tag.
pub fn version_of(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split('@').next().unwrap_or(last);
    let Some((_, tag)) = tag.split_once(':') else {
        return String::new();
    };
    tag.split('-')
        .find(|part| {
            part.contains('.')
                && part
                    .split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or(tag)
        .to_owned()
}

/// Whether a license key is base64-like: non-empty, base64 (or base64url) characters, `=`
/// padding only at the end.
pub fn license_ok(key: &str) -> bool {
    let body = key.trim_end_matches('=');
    !body.is_empty()
        && key.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

fn variable(node: &Node, name: &str) -> Option<Value> {
    Some(match name {
        "max_allowed_packet" => Value::Int(MAX_ALLOWED_PACKET),
        "wait_timeout" => Value::Int(WAIT_TIMEOUT),
        "memsql_version" => text(node.version.clone()),
        "version_comment" => text(VERSION_COMMENT),
        _ => return None,
    })
}

const VARIABLES: [&str; 4] = [
    "max_allowed_packet",
    "memsql_version",
    "version_comment",
    "wait_timeout",
];

fn position(n: u64) -> Value {
    text(format!("0:{n}"))
}

impl World {
    /// Runs `statement` on node `id`; wakes the controller when the settle pass has work.
    pub fn execute(&mut self, id: &NodeId, statement: Statement) -> Result<Answer, ServerError> {
        let result = self.run(id, statement);
        if result.is_ok()
            && self.pending()
            && let Some(wake) = &self.wake
        {
            wake.notify_one();
        }
        result
    }

    fn me(&self, id: &NodeId) -> Result<&Node, ServerError> {
        match self.nodes.get(id) {
            Some(n) if n.up => Ok(n),
            _ => refuse(ER_UNREACHABLE, "the node is not running"),
        }
    }

    fn me_mut(&mut self, id: &NodeId) -> Result<&mut Node, ServerError> {
        match self.nodes.get_mut(id) {
            Some(n) if n.up => Ok(n),
            _ => refuse(ER_UNREACHABLE, "the node is not running"),
        }
    }

    /// The node `host` names from `namespace`: `<pod>.<service>[.<namespace>[.svc[.cluster.local]]]`
    /// where the pod's governing service is `<service>`, in the same namespace. Running or not.
    pub fn resolve(&self, namespace: &str, host: &str) -> Option<NodeId> {
        let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
        let (pod, service) = (labels.first()?, labels.get(1)?);
        if labels.get(2).is_some_and(|ns| *ns != namespace) {
            return None;
        }
        let suffix: Vec<&str> = labels.iter().skip(3).copied().collect();
        if !matches!(
            suffix.as_slice(),
            [] | ["svc"] | ["svc", "cluster", "local"]
        ) {
            return None;
        }
        let id = NodeId {
            namespace: namespace.to_owned(),
            pod: (*pod).to_owned(),
        };
        self.nodes
            .get(&id)
            .filter(|n| !n.service.is_empty() && n.service == *service)
            .map(|_| id)
    }

    /// The running node `address` names from `namespace`, or the refusal of an unreachable node.
    fn reachable(&self, namespace: &str, address: &Address) -> Result<NodeId, ServerError> {
        self.resolve(namespace, &address.host)
            .filter(|id| address.port == PORT && self.nodes[id].up)
            .map_or_else(
                || {
                    refuse(
                        ER_UNREACHABLE,
                        format!(
                            "Can't connect to MySQL server on '{}:{}'",
                            address.host, address.port
                        ),
                    )
                },
                Ok,
            )
    }

    /// Whether `node` runs and believes it belongs to `cluster`.
    fn online(&self, cluster: u64, node: &NodeId) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| n.up && n.cluster == Some(cluster))
    }

    /// The metadata of aggregator `id` in a cluster, else the refusal `what` gets elsewhere.
    fn my_metadata(&self, id: &NodeId, what: &str) -> Result<&Metadata, ServerError> {
        let me = self.me(id)?;
        if me.kind == Kind::Leaf {
            return refuse(
                ER_WRONG_NODE,
                format!("{what} must be run on an aggregator, not on a leaf"),
            );
        }
        me.metadata.as_ref().map_or_else(
            || {
                refuse(
                    ER_WRONG_NODE,
                    format!("{what}: this aggregator is not part of a cluster"),
                )
            },
            Ok,
        )
    }

    /// The master aggregator that carries out a change asked of aggregator `id`: `id` itself
    /// when it believes it is the master, else the master its metadata names, which must be
    /// running and still the master of that cluster.
    fn master_for(&self, id: &NodeId, what: &str) -> Result<NodeId, ServerError> {
        let md = self.my_metadata(id, what)?;
        if &md.master == id {
            return Ok(id.clone());
        }
        let master_ok = self.nodes.get(&md.master).is_some_and(|m| {
            m.up && m
                .metadata
                .as_ref()
                .is_some_and(|x| x.cluster == md.cluster && x.master == md.master)
        });
        if !master_ok {
            return refuse(
                ER_MASTER_UNREACHABLE,
                format!(
                    "Error connecting to the master aggregator '{}'",
                    md.host_of(&md.master)
                ),
            );
        }
        Ok(md.master.clone())
    }

    /// The cluster's master's metadata, to change and store back with [`World::commit`].
    fn master_metadata(&self, master: &NodeId) -> Metadata {
        self.nodes[master]
            .metadata
            .clone()
            .expect("a master has metadata")
    }

    /// Stores `md` (its position raised by one) on the master and on every node in `also`.
    fn commit(&mut self, master: &NodeId, mut md: Metadata, also: &[NodeId]) {
        md.position += 1;
        for id in std::iter::once(master).chain(also) {
            if let Some(n) = self.nodes.get_mut(id) {
                n.metadata = Some(md.clone());
            }
        }
    }

    /// The metadata a data statement on aggregator `id` sees: its master's when reachable, its
    /// own otherwise.
    fn current_metadata(&self, id: &NodeId, what: &str) -> Result<&Metadata, ServerError> {
        let own = self.my_metadata(id, what)?;
        Ok(match self.master_for(id, what) {
            Ok(master) => self.nodes[&master].metadata.as_ref().unwrap_or(own),
            Err(_) => own,
        })
    }

    fn run(&mut self, id: &NodeId, statement: Statement) -> Result<Answer, ServerError> {
        let namespace = id.namespace.clone();
        match statement {
            Statement::Select(items) => {
                let me = self.me(id)?;
                let names = items.iter().map(|(n, _)| n.clone()).collect();
                let row = items
                    .iter()
                    .map(|(_, item)| match item {
                        SelectItem::Number(n) => n.parse().map_or_else(|_| text(n), Value::Int),
                        SelectItem::Text(s) => text(s.clone()),
                        SelectItem::Null => Value::Null,
                        SelectItem::Variable(v) => variable(me, v).unwrap_or(Value::Null),
                    })
                    .collect();
                Ok(Answer::Rows(names, vec![row]))
            }
            Statement::ShowVariables { like } => {
                let me = self.me(id)?;
                let out = VARIABLES
                    .iter()
                    .filter(|v| like.as_deref().is_none_or(|p| sql::like(p, v)))
                    .map(|v| {
                        let value = match variable(me, v) {
                            Some(Value::Int(i)) => text(i.to_string()),
                            Some(other) => other,
                            None => Value::Null,
                        };
                        vec![text(*v), value]
                    })
                    .collect();
                Ok(rows(&["Variable_name", "Value"], out))
            }
            Statement::SetSession => {
                self.me(id)?;
                Ok(Answer::Done(0))
            }
            Statement::SetLicense { key } => {
                let me = self.me_mut(id)?;
                if !license_ok(&key) {
                    return refuse(ER_LICENSE, "The license key is empty or not valid");
                }
                me.license = Some(key);
                Ok(Answer::Done(0))
            }
            Statement::ShowAggregators => self.show_aggregators(id),
            Statement::ShowLeaves => self.show_leaves(id),
            Statement::ShowDatabasesExtended => self.show_databases(id),
            Statement::Bootstrap { host } => {
                let me = self.me(id)?;
                if me.kind == Kind::Leaf {
                    return refuse(
                        ER_WRONG_NODE,
                        "BOOTSTRAP AGGREGATOR must be run on an aggregator, not on a leaf",
                    );
                }
                if me.cluster.is_some() {
                    return refuse(
                        ER_MEMBERSHIP,
                        "This aggregator is already joined to a cluster",
                    );
                }
                if me.license.is_none() {
                    return refuse(ER_LICENSE, "A license is required to bootstrap a cluster");
                }
                let address = Address {
                    host: host.clone(),
                    port: PORT,
                };
                if self.reachable(&namespace, &address)? != *id {
                    return refuse(
                        ER_UNREACHABLE,
                        format!("The host '{host}' does not name this node"),
                    );
                }
                self.clusters_created += 1;
                let cluster = self.clusters_created;
                let me = self.me_mut(id)?;
                me.cluster = Some(cluster);
                me.metadata = Some(Metadata {
                    cluster,
                    position: 1,
                    term: 1,
                    master: id.clone(),
                    aggregators: vec![Member {
                        host,
                        node: id.clone(),
                        node_id: 1,
                    }],
                    leaves: Vec::new(),
                    databases: BTreeMap::new(),
                    next_node_id: 2,
                });
                Ok(Answer::Done(0))
            }
            Statement::Add {
                leaf,
                user,
                password,
                address,
            } => self.add(id, leaf, &user, &password, address),
            Statement::Remove { leaf, address } => {
                if leaf {
                    self.remove_leaf(id, &address)
                } else {
                    self.remove_aggregator(id, &address)
                }
            }
            Statement::Promote { address } => self.promote(id, &address),
            Statement::SetAsMaster => self.set_as_master(id),
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => self.create_database(id, name, if_not_exists),
            Statement::CreateTable {
                database,
                table,
                if_not_exists,
                columns,
                key,
            } => {
                let master = self.master_for(id, "CREATE TABLE")?;
                let md = &self.nodes[&master].metadata;
                let cluster = md.as_ref().map_or(0, |m| m.cluster);
                if !md
                    .as_ref()
                    .is_some_and(|m| m.databases.contains_key(&database))
                {
                    return refuse(ER_BAD_DB, format!("Unknown database '{database}'"));
                }
                let key_of = (cluster, database, table);
                if self.tables.contains_key(&key_of) {
                    if if_not_exists {
                        return Ok(Answer::Done(0));
                    }
                    return refuse(
                        ER_TABLE_EXISTS,
                        format!("Table '{}' already exists", key_of.2),
                    );
                }
                self.tables.insert(
                    key_of,
                    Table {
                        columns,
                        key,
                        rows: BTreeMap::new(),
                    },
                );
                Ok(Answer::Done(0))
            }
            Statement::Insert {
                database,
                table,
                columns,
                values,
                update,
            } => {
                let table = self.table_mut(id, database, table, "INSERT")?;
                if let Some(unknown) = columns.iter().find(|c| !table.columns.contains(c)) {
                    return refuse(
                        ER_BAD_FIELD,
                        format!("Unknown column '{unknown}' in 'field list'"),
                    );
                }
                let row: BTreeMap<String, String> = columns.into_iter().zip(values).collect();
                let Some(key) = row.get(&table.key).cloned() else {
                    return refuse(
                        ER_NO_DEFAULT,
                        format!("Field '{}' doesn't have a default value", table.key),
                    );
                };
                match (table.rows.get_mut(&key), update) {
                    (None, _) => {
                        table.rows.insert(key, row);
                        Ok(Answer::Done(1))
                    }
                    (Some(_), None) => refuse(
                        ER_DUP_ENTRY,
                        format!("Duplicate entry '{key}' for key 'PRIMARY'"),
                    ),
                    (Some(existing), Some(updated)) => {
                        let mut changed = false;
                        for column in updated {
                            if let Some(v) = row.get(&column)
                                && existing.get(&column) != Some(v)
                            {
                                existing.insert(column, v.clone());
                                changed = true;
                            }
                        }
                        // MySQL counts an updated row twice and an unchanged one not at all.
                        Ok(Answer::Done(if changed { 2 } else { 0 }))
                    }
                }
            }
            Statement::SelectFrom {
                columns,
                database,
                table,
                filter,
            } => {
                let table = self.table_mut(id, database, table, "SELECT")?;
                let table = &*table;
                let wanted = columns.iter().chain(filter.as_ref().map(|(c, _)| c));
                if let Some(unknown) = wanted.clone().find(|c| !table.columns.contains(c)) {
                    return refuse(
                        ER_BAD_FIELD,
                        format!("Unknown column '{unknown}' in 'field list'"),
                    );
                }
                let out = table
                    .rows
                    .values()
                    .filter(|row| filter.as_ref().is_none_or(|(c, v)| row.get(c) == Some(v)))
                    .map(|row| {
                        columns
                            .iter()
                            .map(|c| row.get(c).map_or(Value::Null, |v| text(v.clone())))
                            .collect()
                    })
                    .collect();
                Ok(Answer::Rows(columns, out))
            }
        }
    }

    fn table_mut(
        &mut self,
        id: &NodeId,
        database: String,
        table: String,
        what: &str,
    ) -> Result<&mut Table, ServerError> {
        let md = self.current_metadata(id, what)?;
        if !md.databases.contains_key(&database) {
            return refuse(ER_BAD_DB, format!("Unknown database '{database}'"));
        }
        let key = (md.cluster, database, table);
        let name = format!("{}.{}", key.1, key.2);
        self.tables.get_mut(&key).map_or_else(
            || refuse(ER_NO_SUCH_TABLE, format!("Table '{name}' doesn't exist")),
            Ok,
        )
    }

    fn show_aggregators(&self, id: &NodeId) -> Result<Answer, ServerError> {
        let me = self.me(id)?;
        if me.kind == Kind::Leaf {
            return refuse(
                ER_WRONG_NODE,
                "SHOW AGGREGATORS must be run on an aggregator, not on a leaf",
            );
        }
        let columns = [
            "Host",
            "Port",
            "State",
            "Opened_Connections",
            "Average_Roundtrip_Latency_ms",
            "Master_Aggregator",
            "Node_ID",
        ];
        let Some(md) = &me.metadata else {
            return Ok(rows(&columns, Vec::new()));
        };
        let out = md
            .aggregators
            .iter()
            .map(|m| {
                let this = &m.node == id;
                let online = this || self.online(md.cluster, &m.node);
                vec![
                    text(m.host.clone()),
                    Value::Int(i64::from(PORT)),
                    text(if online { "online" } else { "offline" }),
                    Value::Int(i64::from(online && !this)),
                    if online && !this {
                        text("0.100")
                    } else {
                        Value::Null
                    },
                    Value::Int(i64::from(m.node == md.master)),
                    Value::Int(i64::try_from(m.node_id).unwrap_or(i64::MAX)),
                ]
            })
            .collect();
        Ok(rows(&columns, out))
    }

    fn show_leaves(&self, id: &NodeId) -> Result<Answer, ServerError> {
        let md = self.my_metadata(id, "SHOW LEAVES")?;
        let out = md
            .leaves
            .iter()
            .map(|m| {
                let online = self.online(md.cluster, &m.node);
                vec![
                    text(m.host.clone()),
                    Value::Int(i64::from(PORT)),
                    Value::Int(1),
                    Value::Null,
                    Value::Null,
                    text(if online { "online" } else { "offline" }),
                    Value::Int(i64::from(online)),
                    if online { text("0.100") } else { Value::Null },
                    Value::Int(i64::try_from(m.node_id).unwrap_or(i64::MAX)),
                ]
            })
            .collect();
        Ok(rows(
            &[
                "Host",
                "Port",
                "Availability_Group",
                "Pair_Host",
                "Pair_Port",
                "State",
                "Opened_Connections",
                "Average_Roundtrip_Latency_ms",
                "NodeId",
            ],
            out,
        ))
    }

    fn show_databases(&self, id: &NodeId) -> Result<Answer, ServerError> {
        let me = self.me(id)?;
        let columns = [
            "Database", "Commits", "Role", "State", "Position", "Details",
        ];
        let mut out = Vec::new();
        if let Some(md) = &me.metadata {
            let role = if &md.master == id {
                "master"
            } else {
                "replica"
            };
            out.push(vec![
                text("cluster"),
                Value::Int(i64::try_from(md.position).unwrap_or(i64::MAX)),
                text(role),
                text("online"),
                position(md.position),
                text(""),
            ]);
        }
        if me.kind == Kind::Leaf {
            for (name, state) in &me.partitions {
                out.push(vec![
                    text(name.clone()),
                    Value::Int(0),
                    text("master"),
                    text(state.as_str()),
                    position(0),
                    text(""),
                ]);
            }
        }
        Ok(rows(&columns, out))
    }

    fn add(
        &mut self,
        id: &NodeId,
        leaf: bool,
        user: &str,
        password: &str,
        address: Address,
    ) -> Result<Answer, ServerError> {
        let what = if leaf { "ADD LEAF" } else { "ADD AGGREGATOR" };
        let md = self.my_metadata(id, what)?;
        if &md.master != id {
            return refuse(
                ER_WRONG_NODE,
                format!("{what} must be run on the master aggregator"),
            );
        }
        let mut md = md.clone();
        let target = self.reachable(&id.namespace, &address)?;
        let node = &self.nodes[&target];
        let kind = if leaf { Kind::Leaf } else { Kind::Aggregator };
        if node.kind != kind {
            return refuse(
                ER_WRONG_NODE,
                format!("'{}' is not a {} node", address.host, kind.as_str()),
            );
        }
        if md.member(&target).is_some() {
            return refuse(
                ER_MEMBERSHIP,
                format!(
                    "'{}':{} is already a {} of this cluster",
                    address.host,
                    address.port,
                    kind.as_str()
                ),
            );
        }
        if node.cluster.is_some() {
            return refuse(
                ER_MEMBERSHIP,
                format!("'{}' is already joined to a cluster", address.host),
            );
        }
        if !node.login_ok(user, password) {
            let me = &self.nodes[id];
            let e = crate::db::mysql::access_denied(user, &me.ip, !password.is_empty());
            return Err(e);
        }
        let member = Member {
            host: address.host,
            node: target.clone(),
            node_id: md.next_node_id,
        };
        md.next_node_id += 1;
        if leaf {
            md.leaves.push(member);
        } else {
            md.aggregators.push(member);
        }
        if let Some(n) = self.nodes.get_mut(&target) {
            n.cluster = Some(md.cluster);
        }
        let also = if leaf { Vec::new() } else { vec![target] };
        self.commit(id, md, &also);
        Ok(Answer::Done(0))
    }

    /// The member of `list` that `address` names: by the node it resolves to, else (a node whose
    /// pod and volume are gone) by the host as written.
    fn find_member(&self, namespace: &str, list: &[Member], address: &Address) -> Option<usize> {
        if address.port != PORT {
            return None;
        }
        let node = self.resolve(namespace, &address.host);
        list.iter().position(|m| {
            Some(&m.node) == node.as_ref() || m.host.eq_ignore_ascii_case(&address.host)
        })
    }

    fn remove_leaf(&mut self, id: &NodeId, address: &Address) -> Result<Answer, ServerError> {
        let master = self.master_for(id, "REMOVE LEAF")?;
        let mut md = self.master_metadata(&master);
        let Some(index) = self.find_member(&id.namespace, &md.leaves, address) else {
            return refuse(
                ER_MEMBERSHIP,
                format!(
                    "'{}':{} is not a leaf of this cluster",
                    address.host, address.port
                ),
            );
        };
        let leaving = md.leaves.remove(index);
        let mut held: Vec<(String, usize)> = Vec::new();
        for (db, placement) in &md.databases {
            for (i, leaf) in placement.iter().enumerate() {
                if leaf == &leaving.node {
                    held.push((db.clone(), i));
                }
            }
        }
        let remaining: Vec<NodeId> = md
            .leaves
            .iter()
            .map(|m| m.node.clone())
            .filter(|n| self.online(md.cluster, n))
            .collect();
        if !held.is_empty() && remaining.is_empty() {
            return refuse(
                ER_NO_LEAVES,
                format!(
                    "Cannot remove '{}': it is the last leaf holding partitions",
                    address.host
                ),
            );
        }
        // Each partition moves to the remaining online leaf holding the fewest.
        for (db, i) in held {
            let count = |n: &NodeId| {
                md.databases
                    .values()
                    .flatten()
                    .filter(|holder| *holder == n)
                    .count()
            };
            let target = remaining
                .iter()
                .min_by_key(|n| count(n))
                .cloned()
                .expect("a remaining leaf");
            let name = format!("{db}_{i}");
            if let Some(p) = md.databases.get_mut(&db) {
                p[i] = target.clone();
            }
            if let Some(n) = self.nodes.get_mut(&target) {
                n.partitions.insert(name.clone(), PartitionState::Online);
            }
            if let Some(n) = self.nodes.get_mut(&leaving.node) {
                n.partitions.remove(&name);
            }
        }
        if let Some(n) = self.nodes.get_mut(&leaving.node)
            && n.cluster == Some(md.cluster)
        {
            n.cluster = None;
        }
        self.commit(&master, md, &[]);
        Ok(Answer::Done(0))
    }

    fn remove_aggregator(&mut self, id: &NodeId, address: &Address) -> Result<Answer, ServerError> {
        let master = self.master_for(id, "REMOVE AGGREGATOR")?;
        let mut md = self.master_metadata(&master);
        let Some(index) = self.find_member(&id.namespace, &md.aggregators, address) else {
            return refuse(
                ER_MEMBERSHIP,
                format!(
                    "'{}':{} is not an aggregator of this cluster",
                    address.host, address.port
                ),
            );
        };
        if md.aggregators[index].node == md.master {
            return refuse(
                ER_MEMBERSHIP,
                "The master aggregator cannot be removed (promote another aggregator first)",
            );
        }
        let leaving = md.aggregators.remove(index);
        if let Some(n) = self.nodes.get_mut(&leaving.node)
            && n.cluster == Some(md.cluster)
        {
            n.cluster = None;
            n.metadata = None;
        }
        self.commit(&master, md, &[]);
        Ok(Answer::Done(0))
    }

    fn promote(&mut self, id: &NodeId, address: &Address) -> Result<Answer, ServerError> {
        let master = self.master_for(id, "PROMOTE AGGREGATOR")?;
        let mut md = self.master_metadata(&master);
        let target = self.reachable(&id.namespace, address)?;
        if md.aggregators.iter().all(|m| m.node != target) {
            return refuse(
                ER_MEMBERSHIP,
                format!("'{}' is not an aggregator of this cluster", address.host),
            );
        }
        if target == master {
            return refuse(
                ER_PROMOTION,
                format!("'{}' is already the master aggregator", address.host),
            );
        }
        let current = self.nodes[&target]
            .metadata
            .as_ref()
            .is_some_and(|t| t.cluster == md.cluster && t.version() == md.version());
        if !self.online(md.cluster, &target) || !current {
            return refuse(
                ER_PROMOTION,
                format!(
                    "'{}' cannot be promoted: it is not an online child aggregator with current metadata",
                    address.host
                ),
            );
        }
        md.master = target.clone();
        md.term += 1;
        self.commit(&master, md, &[target]);
        Ok(Answer::Done(0))
    }

    fn set_as_master(&mut self, id: &NodeId) -> Result<Answer, ServerError> {
        let mut md = self.my_metadata(id, "AGGREGATOR SET AS MASTER")?.clone();
        if &md.master == id {
            return refuse(
                ER_WRONG_NODE,
                "AGGREGATOR SET AS MASTER must be run on a child aggregator",
            );
        }
        let master_online = self.nodes.get(&md.master).is_some_and(|m| {
            m.up && m
                .metadata
                .as_ref()
                .is_some_and(|x| x.cluster == md.cluster && x.master == md.master)
        });
        if master_online {
            return refuse(
                ER_PROMOTION,
                "The cluster has an online master aggregator: use PROMOTE AGGREGATOR ... TO MASTER",
            );
        }
        let lost = std::mem::replace(&mut md.master, id.clone());
        md.aggregators.retain(|m| m.node != lost);
        md.term += 1;
        self.commit(id, md, &[]);
        Ok(Answer::Done(1))
    }

    fn create_database(
        &mut self,
        id: &NodeId,
        name: String,
        if_not_exists: bool,
    ) -> Result<Answer, ServerError> {
        let master = self.master_for(id, "CREATE DATABASE")?;
        let mut md = self.master_metadata(&master);
        if md.databases.contains_key(&name) {
            if if_not_exists {
                return Ok(Answer::Done(0));
            }
            return refuse(
                ER_DB_CREATE_EXISTS,
                format!("Can't create database '{name}'; database exists"),
            );
        }
        let leaves: Vec<NodeId> = md
            .leaves
            .iter()
            .map(|m| m.node.clone())
            .filter(|n| self.online(md.cluster, n))
            .collect();
        if leaves.is_empty() {
            return refuse(
                ER_NO_LEAVES,
                format!("Cannot create database '{name}': the cluster has no online leaves"),
            );
        }
        let placement: Vec<NodeId> = (0..leaves.len() * PARTITIONS_PER_LEAF)
            .map(|i| leaves[i % leaves.len()].clone())
            .collect();
        for (i, leaf) in placement.iter().enumerate() {
            if let Some(n) = self.nodes.get_mut(leaf) {
                n.partitions
                    .insert(format!("{name}_{i}"), PartitionState::Online);
            }
        }
        md.databases.insert(name, placement);
        self.commit(&master, md, &[]);
        Ok(Answer::Done(1))
    }

    /// The current master of each cluster: among running aggregators that believe they are its
    /// master, the one with the latest metadata ([`Metadata::version`]).
    fn masters(&self) -> BTreeMap<u64, (&NodeId, &Metadata)> {
        let mut out: BTreeMap<u64, (&NodeId, &Metadata)> = BTreeMap::new();
        for (id, node) in &self.nodes {
            let Some(md) = node.metadata.as_ref().filter(|m| &m.master == id) else {
                continue;
            };
            if !node.up {
                continue;
            }
            match out.get(&md.cluster) {
                Some((_, best)) if best.version() >= md.version() => {}
                _ => {
                    out.insert(md.cluster, (id, md));
                }
            }
        }
        out
    }

    /// Children behind their master: (child, the master's metadata).
    fn behind(&self) -> Vec<(NodeId, Metadata)> {
        let masters = self.masters();
        self.nodes
            .iter()
            .filter(|(_, n)| n.up)
            .filter_map(|(id, n)| {
                let md = n.metadata.as_ref().filter(|m| &m.master != id)?;
                let (_, current) = masters.get(&md.cluster)?;
                (current.version() > md.version()
                    && current.aggregators.iter().any(|m| &m.node == id))
                .then(|| (id.clone(), (*current).clone()))
            })
            .collect()
    }

    /// Whether the settle pass has work: a child behind its master, or a running leaf (not
    /// stalled) with recovering partitions.
    pub fn pending(&self) -> bool {
        !self.behind().is_empty()
            || self.nodes.values().any(|n| {
                n.up && !n.stalled
                    && n.partitions
                        .values()
                        .any(|p| *p == PartitionState::Recovering)
            })
    }

    /// The settle pass: every running child listed by its cluster's master applies the master's
    /// metadata; every running leaf that is not stalled brings its partitions online.
    pub fn settle(&mut self) {
        for (id, md) in self.behind() {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.metadata = Some(md);
            }
        }
        for node in self.nodes.values_mut().filter(|n| n.up && !n.stalled) {
            for state in node.partitions.values_mut() {
                *state = PartitionState::Online;
            }
        }
    }

    /// What `GET /sim/singlestore` shows: every node (no secrets) and every cluster as its
    /// current master (else the master with the highest position) knows it.
    pub fn summary(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|(id, n)| {
                serde_json::json!({
                    "namespace": id.namespace,
                    "pod": id.pod,
                    "kind": n.kind.as_str(),
                    "up": n.up,
                    "stalled": n.stalled,
                    "version": n.version,
                    "licensed": n.license.is_some(),
                    "role": n.role(id),
                    "cluster": n.cluster,
                    "position": n.metadata.as_ref().map(|m| m.position),
                    "master": n.metadata.as_ref().map(|m| m.host_of(&m.master)),
                    "partitions": n.partitions.iter().map(|(name, state)| serde_json::json!({
                        "name": name,
                        "state": state.as_str(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut clusters: BTreeMap<u64, (&NodeId, &Metadata, bool)> = BTreeMap::new();
        for (id, node) in &self.nodes {
            let Some(md) = node.metadata.as_ref().filter(|m| &m.master == id) else {
                continue;
            };
            let better = clusters
                .get(&md.cluster)
                .is_none_or(|(_, best, up)| (node.up, md.version()) > (*up, best.version()));
            if better {
                clusters.insert(md.cluster, (id, md, node.up));
            }
        }
        let clusters: Vec<serde_json::Value> = clusters
            .into_iter()
            .map(|(cluster, (id, md, up))| {
                let hosts = |list: &[Member]| {
                    list.iter()
                        .map(|m| {
                            serde_json::json!({
                                "host": m.host,
                                "pod": m.node.pod,
                                "nodeId": m.node_id,
                                "online": self.online(cluster, &m.node),
                            })
                        })
                        .collect::<Vec<_>>()
                };
                serde_json::json!({
                    "id": cluster,
                    "namespace": id.namespace,
                    "master": md.host_of(id),
                    "masterPod": id.pod,
                    "masterUp": up,
                    "position": md.position,
                    "aggregators": hosts(&md.aggregators),
                    "leaves": hosts(&md.leaves),
                    "databases": md.databases.iter().map(|(name, placement)| serde_json::json!({
                        "name": name,
                        "partitions": placement.iter().enumerate().map(|(i, leaf)| serde_json::json!({
                            "name": format!("{name}_{i}"),
                            "leaf": md.host_of(leaf),
                            "state": self.nodes.get(leaf)
                                .and_then(|n| n.partitions.get(&format!("{name}_{i}")))
                                .map_or("missing", |s| s.as_str()),
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({"nodes": nodes, "clusters": clusters})
    }
}

#[cfg(test)]
mod tests;
