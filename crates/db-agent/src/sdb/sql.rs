//! Every statement the SingleStore backend sends, as text built by pure functions (golden-tested
//! below), and the parsing of what the observation statements return.
//!
//! Sources: SingleStore's SQL reference for `BOOTSTRAP AGGREGATOR`, `ADD LEAF`, `ADD AGGREGATOR`,
//! `REMOVE LEAF`, `PROMOTE AGGREGATOR ... TO MASTER`, `AGGREGATOR SET AS MASTER`, `SHOW
//! AGGREGATORS`, `SHOW LEAVES` and `SHOW DATABASES EXTENDED`. `SET LICENSE` is what memsqlctl's
//! `set-license` stands for; SingleStore's SQL reference does not document it, so it is the one
//! statement here checked against nothing but our simulation (docs/agent.md says so).

use serde::{Deserialize, Serialize};

/// The port every node listens on.
pub const PORT: u16 = 3306;

/// The node's version: answers on every node, so it doubles as the liveness query.
pub const VERSION_QUERY: &str = "SELECT @@memsql_version";
/// The aggregators of the node's cluster (no rows on a node in no cluster).
pub const SHOW_AGGREGATORS: &str = "SHOW AGGREGATORS";
/// The leaves of the cluster (aggregators only).
pub const SHOW_LEAVES: &str = "SHOW LEAVES";
/// The node's databases with their replication role, state and position.
pub const SHOW_DATABASES_EXTENDED: &str = "SHOW DATABASES EXTENDED";
/// The cluster's metadata database, present on every aggregator of a cluster.
pub const CLUSTER_DATABASE: &str = "cluster";
/// `AGGREGATOR SET AS MASTER`: a child takes over from a master lost for good.
pub const SET_AS_MASTER: &str = "AGGREGATOR SET AS MASTER";

/// `'text'` with `\` and `'` escaped, as MySQL string literals are read with the default SQL
/// mode.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `SET LICENSE = '<key>'`.
pub fn set_license(key: &str) -> String {
    format!("SET LICENSE = {}", literal(key.trim()))
}

/// `BOOTSTRAP AGGREGATOR '<host>'`: a new cluster with this node as its master.
pub fn bootstrap(host: &str) -> String {
    format!("BOOTSTRAP AGGREGATOR {}", literal(host))
}

/// `<user>:'<password>'@'<host>':<port>`, the node address of `ADD LEAF` and `ADD AGGREGATOR`.
fn credentials_at(user: &str, password: &str, host: &str) -> String {
    format!("{user}:{}@{}:{PORT}", literal(password), literal(host))
}

/// `ADD LEAF root:'<password>'@'<host>':3306`.
pub fn add_leaf(user: &str, password: &str, host: &str) -> String {
    format!("ADD LEAF {}", credentials_at(user, password, host))
}

/// `ADD AGGREGATOR root:'<password>'@'<host>':3306`.
pub fn add_aggregator(user: &str, password: &str, host: &str) -> String {
    format!("ADD AGGREGATOR {}", credentials_at(user, password, host))
}

/// `REMOVE LEAF '<host>':3306`: the leaf's partitions are moved away first (no `FORCE`).
pub fn remove_leaf(host: &str) -> String {
    format!("REMOVE LEAF {}:{PORT}", literal(host))
}

/// `PROMOTE AGGREGATOR '<host>':3306 TO MASTER`: a planned move of the master role; the old
/// master becomes a child.
pub fn promote(host: &str) -> String {
    format!("PROMOTE AGGREGATOR {}:{PORT} TO MASTER", literal(host))
}

/// Whether `statement` carries a password, so that it is never logged.
pub fn has_secret(statement: &str) -> bool {
    statement.starts_with("ADD LEAF")
        || statement.starts_with("ADD AGGREGATOR")
        || statement.starts_with("SET LICENSE")
}

/// A row of `SHOW AGGREGATORS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregator {
    /// `Host`: the address it was added or bootstrapped with.
    pub host: String,
    /// `State` is `online`.
    pub online: bool,
    /// `Master_Aggregator` is 1.
    pub master: bool,
}

/// A row of `SHOW LEAVES`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// `Host`.
    pub host: String,
    /// `State` is `online`.
    pub online: bool,
}

/// A row of `SHOW DATABASES EXTENDED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// `Database`.
    pub name: String,
    /// `Role` (`master`, a replica role).
    pub role: String,
    /// `State` (`online`, `replicating`, `recovering`, ...).
    pub state: String,
    /// `Position`, `<file>:<offset>`.
    pub position: Option<Position>,
}

impl Database {
    /// Serving and caught up: `online` for a master copy, `replicating` for a replica.
    pub fn caught_up(&self) -> bool {
        matches!(
            self.state.to_ascii_lowercase().as_str(),
            "online" | "replicating"
        )
    }
}

/// A replication position, `<file>:<offset>`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position(pub u64, pub u64);

impl Position {
    /// From `12:3456`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (file, offset) = text.trim().split_once(':')?;
        Some(Self(file.parse().ok()?, offset.parse().ok()?))
    }
}

/// A result set as text: column names and cells (`None` for NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn column(&self, statement: &str, name: &str) -> Result<usize, String> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "{statement} returned no {name} column (columns: {})",
                    self.columns.join(", ")
                )
            })
    }

    fn cell(row: &[Option<String>], index: usize) -> &str {
        row.get(index).and_then(Option::as_deref).unwrap_or("")
    }
}

fn online(state: &str) -> bool {
    state.eq_ignore_ascii_case("online")
}

/// Parses `SHOW AGGREGATORS`.
pub fn parse_aggregators(table: &Table) -> Result<Vec<Aggregator>, String> {
    let host = table.column(SHOW_AGGREGATORS, "Host")?;
    let state = table.column(SHOW_AGGREGATORS, "State")?;
    let master = table.column(SHOW_AGGREGATORS, "Master_Aggregator")?;
    Ok(table
        .rows
        .iter()
        .map(|row| Aggregator {
            host: Table::cell(row, host).to_owned(),
            online: online(Table::cell(row, state)),
            master: matches!(Table::cell(row, master), "1" | "Yes" | "yes" | "true"),
        })
        .collect())
}

/// Parses `SHOW LEAVES`.
pub fn parse_leaves(table: &Table) -> Result<Vec<Leaf>, String> {
    let host = table.column(SHOW_LEAVES, "Host")?;
    let state = table.column(SHOW_LEAVES, "State")?;
    Ok(table
        .rows
        .iter()
        .map(|row| Leaf {
            host: Table::cell(row, host).to_owned(),
            online: online(Table::cell(row, state)),
        })
        .collect())
}

/// Parses `SHOW DATABASES EXTENDED`.
pub fn parse_databases(table: &Table) -> Result<Vec<Database>, String> {
    let name = table.column(SHOW_DATABASES_EXTENDED, "Database")?;
    let role = table.column(SHOW_DATABASES_EXTENDED, "Role")?;
    let state = table.column(SHOW_DATABASES_EXTENDED, "State")?;
    let position = table.column(SHOW_DATABASES_EXTENDED, "Position")?;
    Ok(table
        .rows
        .iter()
        .map(|row| Database {
            name: Table::cell(row, name).to_owned(),
            role: Table::cell(row, role).to_owned(),
            state: Table::cell(row, state).to_owned(),
            position: Position::parse(Table::cell(row, position)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_statements() {
        let host = "sdb-leaf-0.sdb-pods.demo.svc";
        let table = [
            (set_license(" BGx0ZQ== \n"), "SET LICENSE = 'BGx0ZQ=='"),
            (
                bootstrap("sdb-aggregator-0.sdb-pods.demo.svc"),
                "BOOTSTRAP AGGREGATOR 'sdb-aggregator-0.sdb-pods.demo.svc'",
            ),
            (
                add_leaf("root", "p'w\\d", host),
                "ADD LEAF root:'p''w\\\\d'@'sdb-leaf-0.sdb-pods.demo.svc':3306",
            ),
            (
                add_aggregator("root", "pw", "sdb-aggregator-1.sdb-pods.demo.svc"),
                "ADD AGGREGATOR root:'pw'@'sdb-aggregator-1.sdb-pods.demo.svc':3306",
            ),
            (
                remove_leaf(host),
                "REMOVE LEAF 'sdb-leaf-0.sdb-pods.demo.svc':3306",
            ),
            (
                promote("sdb-aggregator-1.sdb-pods.demo.svc"),
                "PROMOTE AGGREGATOR 'sdb-aggregator-1.sdb-pods.demo.svc':3306 TO MASTER",
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
        assert_eq!(literal("a\0b"), "'a\\0b'");
    }

    #[test]
    fn statements_with_passwords_are_recognised() {
        assert!(has_secret(&add_leaf("root", "x", "h")));
        assert!(has_secret(&add_aggregator("root", "x", "h")));
        assert!(has_secret(&set_license("k")));
        assert!(!has_secret(&bootstrap("h")));
        assert!(!has_secret(&promote("h")));
    }

    fn table(columns: &[&str], rows: &[&[Option<&str>]]) -> Table {
        Table {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.map(str::to_owned)).collect())
                .collect(),
        }
    }

    #[test]
    fn parses_the_observation_statements() {
        let aggs = table(
            &[
                "Host",
                "Port",
                "State",
                "Opened_Connections",
                "Average_Roundtrip_Latency_ms",
                "Master_Aggregator",
                "Node_ID",
            ],
            &[
                &[
                    Some("a-0"),
                    Some("3306"),
                    Some("online"),
                    Some("0"),
                    None,
                    Some("1"),
                    Some("1"),
                ],
                &[
                    Some("a-1"),
                    Some("3306"),
                    Some("offline"),
                    Some("0"),
                    None,
                    Some("0"),
                    Some("2"),
                ],
            ],
        );
        assert_eq!(
            parse_aggregators(&aggs).unwrap(),
            vec![
                Aggregator {
                    host: "a-0".into(),
                    online: true,
                    master: true
                },
                Aggregator {
                    host: "a-1".into(),
                    online: false,
                    master: false
                },
            ]
        );
        let leaves = table(
            &["Host", "Port", "State"],
            &[&[Some("l-0"), Some("3306"), Some("ONLINE")]],
        );
        assert_eq!(
            parse_leaves(&leaves).unwrap(),
            vec![Leaf {
                host: "l-0".into(),
                online: true
            }]
        );
        let dbs = table(
            &[
                "Database", "Commits", "Role", "State", "Position", "Details",
            ],
            &[
                &[
                    Some("cluster"),
                    Some("7"),
                    Some("master"),
                    Some("online"),
                    Some("0:912"),
                    None,
                ],
                &[
                    Some("app_0"),
                    Some("0"),
                    Some("master"),
                    Some("recovering"),
                    Some("bad"),
                    None,
                ],
            ],
        );
        let parsed = parse_databases(&dbs).unwrap();
        assert_eq!(parsed[0].position, Some(Position(0, 912)));
        assert!(parsed[0].caught_up());
        assert_eq!(parsed[1].position, None);
        assert!(!parsed[1].caught_up());
        let err = parse_aggregators(&table(&["Host"], &[])).unwrap_err();
        assert_eq!(
            err,
            "SHOW AGGREGATORS returned no State column (columns: Host)"
        );
        assert!(Position(1, 0) > Position(0, 99));
    }
}
