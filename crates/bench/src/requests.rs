//! kube-sim's request accounting (`GET /sim/requests`): differences between two snapshots, and
//! counts by verb for one client (a user-agent prefix such as `provisioner/`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One row of `GET /sim/requests`: cumulative count since kube-sim started.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// API group ("" for core).
    #[serde(default)]
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource ("" if none).
    #[serde(default)]
    pub subresource: String,
    /// Namespace ("" if none).
    #[serde(default)]
    pub namespace: String,
    /// The client's User-Agent.
    pub user_agent: String,
    /// Requests since start.
    pub count: u64,
}

impl Row {
    fn key(&self) -> (&str, &str, &str, &str, &str, &str) {
        (
            &self.verb,
            &self.group,
            &self.resource,
            &self.subresource,
            &self.namespace,
            &self.user_agent,
        )
    }
}

/// A snapshot of the accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub Vec<Row>);

/// User-agent prefix of the provisioner's requests.
pub const PROVISIONER: &str = "provisioner/";
/// User-agent prefix of the ops-manager's requests.
pub const OPS_MANAGER: &str = "ops-manager/";

/// Verbs that change state.
pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

impl Snapshot {
    /// Requests made after `earlier` was taken (rows with a zero difference are dropped).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let before: BTreeMap<_, u64> = earlier.0.iter().map(|r| (r.key(), r.count)).collect();
        Snapshot(
            self.0
                .iter()
                .filter_map(|r| {
                    let count = r
                        .count
                        .saturating_sub(before.get(&r.key()).copied().unwrap_or(0));
                    (count > 0).then(|| Row { count, ..r.clone() })
                })
                .collect(),
        )
    }

    /// Rows of clients whose user agent starts with `agent_prefix`.
    pub fn by_agent<'a>(&'a self, agent_prefix: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        self.0
            .iter()
            .filter(move |r| r.user_agent.starts_with(agent_prefix))
    }

    /// Whether any row matches `pred`.
    pub fn any(&self, pred: impl Fn(&Row) -> bool) -> bool {
        self.0.iter().any(pred)
    }

    /// Counts of one client's requests.
    pub fn tally(&self, agent_prefix: &str) -> Tally {
        let mut tally = Tally::default();
        for row in self.by_agent(agent_prefix) {
            *tally.by_verb.entry(row.verb.clone()).or_default() += row.count;
            let lease = row.resource == "leases";
            match (lease, is_write(&row.verb)) {
                (true, true) => tally.lease_writes += row.count,
                (true, false) => tally.lease_reads += row.count,
                (false, true) => tally.writes += row.count,
                (false, false) => tally.reads += row.count,
            }
            if !lease {
                let what = if row.subresource.is_empty() {
                    format!("{} {}", row.verb, row.resource)
                } else {
                    format!("{} {}/{}", row.verb, row.resource, row.subresource)
                };
                let map = if is_write(&row.verb) {
                    &mut tally.writes_by_target
                } else {
                    &mut tally.reads_by_target
                };
                *map.entry(what).or_default() += row.count;
            }
        }
        tally
    }
}

/// One client's requests, grouped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Every request by verb (Leases included).
    pub by_verb: BTreeMap<String, u64>,
    /// Writes of anything but Leases.
    pub writes: u64,
    /// Reads (get, list, watch) of anything but Leases.
    pub reads: u64,
    /// Lease writes (renewals, acquisition, release).
    pub lease_writes: u64,
    /// Lease reads.
    pub lease_reads: u64,
    /// Non-Lease writes by "verb resource[/subresource]".
    pub writes_by_target: BTreeMap<String, u64>,
    /// Non-Lease reads by "verb resource[/subresource]".
    pub reads_by_target: BTreeMap<String, u64>,
}

impl Tally {
    /// Count of one verb.
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).copied().unwrap_or(0)
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.by_verb.values().sum()
    }
}

/// The verbs shown in tables, in order.
pub const VERBS: [&str; 7] = [
    "get", "list", "watch", "create", "update", "patch", "delete",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn row(verb: &str, resource: &str, sub: &str, agent: &str, count: u64) -> Row {
        Row {
            verb: verb.into(),
            group: String::new(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "bench".into(),
            user_agent: agent.into(),
            count,
        }
    }

    #[test]
    fn rows_deserialize_from_kube_sim_json() {
        let json = r#"[{"verb":"patch","group":"kubedb.com","resource":"mssqlservers","subresource":"status","namespace":"bench","userAgent":"provisioner/0.1.0","count":3}]"#;
        let rows: Vec<Row> = serde_json::from_str(json).unwrap();
        assert_eq!(
            rows,
            vec![Row {
                group: "kubedb.com".into(),
                ..row("patch", "mssqlservers", "status", "provisioner/0.1.0", 3)
            }]
        );
    }

    #[test]
    fn since_subtracts_matching_rows_and_drops_unchanged_ones() {
        let before = Snapshot(vec![
            row("get", "pods", "", "provisioner/1", 5),
            row("list", "pods", "", "provisioner/1", 2),
        ]);
        let after = Snapshot(vec![
            row("get", "pods", "", "provisioner/1", 9),
            row("list", "pods", "", "provisioner/1", 2),
            row("patch", "pods", "", "provisioner/1", 1),
        ]);
        assert_eq!(
            after.since(&before),
            Snapshot(vec![
                row("get", "pods", "", "provisioner/1", 4),
                row("patch", "pods", "", "provisioner/1", 1),
            ])
        );
    }

    #[test]
    fn since_distinguishes_subresources_and_agents() {
        let before = Snapshot(vec![row("patch", "pods", "", "a/1", 5)]);
        let after = Snapshot(vec![
            row("patch", "pods", "", "a/1", 5),
            row("patch", "pods", "status", "a/1", 2),
            row("patch", "pods", "", "b/1", 1),
        ]);
        assert_eq!(after.since(&before).0.len(), 2);
    }

    #[test]
    fn write_verbs() {
        for (verb, write) in [
            ("create", true),
            ("update", true),
            ("patch", true),
            ("delete", true),
            ("deletecollection", true),
            ("get", false),
            ("list", false),
            ("watch", false),
        ] {
            assert_eq!(is_write(verb), write, "{verb}");
        }
    }

    #[test]
    fn tally_separates_leases_reads_and_writes_of_one_agent() {
        let snap = Snapshot(vec![
            row("update", "leases", "", "provisioner/0.1.0", 4),
            row("get", "leases", "", "provisioner/0.1.0", 4),
            row("patch", "mssqlservers", "status", "provisioner/0.1.0", 2),
            row("patch", "statefulsets", "", "provisioner/0.1.0", 1),
            row("watch", "pods", "", "provisioner/0.1.0", 1),
            row("list", "pods", "", "provisioner/0.1.0", 1),
            row("patch", "pods", "", "ops-manager/0.1.0", 7),
        ]);
        let t = snap.tally(PROVISIONER);
        assert_eq!(
            (t.writes, t.reads, t.lease_writes, t.lease_reads),
            (3, 2, 4, 4)
        );
        assert_eq!(t.verb("patch"), 3);
        assert_eq!(t.verb("delete"), 0);
        assert_eq!(t.total(), 13);
        assert_eq!(
            t.writes_by_target.into_iter().collect::<Vec<_>>(),
            vec![
                ("patch mssqlservers/status".to_owned(), 2),
                ("patch statefulsets".to_owned(), 1)
            ]
        );
        assert_eq!(
            t.reads_by_target.into_iter().collect::<Vec<_>>(),
            vec![("list pods".to_owned(), 1), ("watch pods".to_owned(), 1)]
        );
        assert_eq!(snap.tally(OPS_MANAGER).writes, 7);
        assert_eq!(snap.tally("nobody/").total(), 0);
    }
}
