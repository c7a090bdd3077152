//! After convergence, waiting for the provisioner's transition Events ("report settle").
//!
//! The provisioner writes a database's Ready status first and publishes its transition Events
//! (`Ready`, then `Provisioned`) right after. The bench sees the last database Ready through its
//! watch before those last Event creates land, so a steady-state window opened at that instant
//! would count them as steady-state writes. `Provisioned` is the last Event of the transition:
//! once every Ready database has one, the convergence work is reported and the window may open.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::discovery::ApiResource;

use crate::watch::Phases;

/// Reason of the Event the provisioner publishes when a database becomes Provisioned (Ready).
pub const PROVISIONED: &str = "Provisioned";
/// `reportingController` of the provisioner's Events.
pub const REPORTING_CONTROLLER: &str = "kubedb-provisioner";
/// How often the wait lists the Events.
pub const POLL: Duration = Duration::from_millis(200);
/// How long to wait after convergence for the Events before the steady-state window opens anyway.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// A database: (kind, name), e.g. ("MSSQLServer", "db-0001").
pub type DbKey = (String, String);

/// The databases in phase Ready, keyed by kind (phases are keyed by `<plural>/<name>`; plurals
/// of other resources than `resources` are skipped).
pub fn ready_databases(phases: &Phases, resources: &[ApiResource]) -> BTreeSet<DbKey> {
    phases
        .in_phase("Ready")
        .filter_map(|key| {
            let (plural, name) = key.split_once('/')?;
            let resource = resources.iter().find(|r| r.plural == plural)?;
            Some((resource.kind.clone(), name.to_owned()))
        })
        .collect()
}

/// The distinct databases the provisioner published a `Provisioned` Event about.
pub fn provisioned(events: &[Event]) -> BTreeSet<DbKey> {
    events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some(PROVISIONED)
                && e.reporting_controller.as_deref() == Some(REPORTING_CONTROLLER)
        })
        .filter_map(|e| {
            let regarding = e.regarding.as_ref()?;
            Some((regarding.kind.clone()?, regarding.name.clone()?))
        })
        .collect()
}

/// How the wait for the reports ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settle {
    /// From convergence until every Ready database had its Event, or until the wait gave up.
    pub elapsed: Duration,
    /// Ready databases waited for.
    pub ready: usize,
    /// Ready databases still without a `Provisioned` Event at the end (0: all reported).
    pub unreported: usize,
    /// The wait's limit.
    pub limit: Duration,
}

impl Settle {
    /// Whether the wait gave up with databases unreported.
    pub fn timed_out(&self) -> bool {
        self.unreported > 0
    }
}

/// Lists the `Provisioned` Events in `namespace` every [`POLL`] until every database of `ready`
/// has one, or until `limit`; elapsed time counts from `since`.
pub async fn wait(
    client: &kube::Client,
    namespace: &str,
    ready: &BTreeSet<DbKey>,
    since: Instant,
    limit: Duration,
) -> anyhow::Result<Settle> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    // The selector keeps the lists small; `provisioned` checks reason and controller anyway.
    let params = ListParams::default().fields(&format!("reason={PROVISIONED}"));
    loop {
        let events = api
            .list(&params)
            .await
            .context("listing the provisioner's Events")?;
        let reported = provisioned(&events.items);
        let unreported = ready.difference(&reported).count();
        let elapsed = since.elapsed();
        if unreported == 0 || elapsed >= limit {
            return Ok(Settle {
                elapsed,
                ready: ready.len(),
                unreported,
                limit,
            });
        }
        tokio::time::sleep(POLL.min(limit - elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::mssql::MSSQLServer;
    use api::singlestore::Singlestore;

    fn event(reason: &str, controller: Option<&str>, regarding: Option<(&str, &str)>) -> Event {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": { "name": "e", "namespace": "bench" },
            "reason": reason,
            "reportingController": controller,
            "regarding": regarding.map(|(kind, name)| serde_json::json!({ "kind": kind, "name": name })),
        }))
        .unwrap()
    }

    fn key(kind: &str, name: &str) -> DbKey {
        (kind.to_owned(), name.to_owned())
    }

    #[test]
    fn provisioned_counts_distinct_databases_of_the_provisioner() {
        let c = Some(REPORTING_CONTROLLER);
        let cases: Vec<(&str, Vec<Event>, Vec<DbKey>)> = vec![
            ("none", vec![], vec![]),
            (
                "one per database",
                vec![
                    event("Provisioned", c, Some(("MSSQLServer", "a"))),
                    event("Provisioned", c, Some(("Singlestore", "b"))),
                ],
                vec![key("MSSQLServer", "a"), key("Singlestore", "b")],
            ),
            (
                "a repeat counts once",
                vec![
                    event("Provisioned", c, Some(("MSSQLServer", "a"))),
                    event("Provisioned", c, Some(("MSSQLServer", "a"))),
                ],
                vec![key("MSSQLServer", "a")],
            ),
            (
                "same name, other kind is another database",
                vec![
                    event("Provisioned", c, Some(("MSSQLServer", "a"))),
                    event("Provisioned", c, Some(("Singlestore", "a"))),
                ],
                vec![key("MSSQLServer", "a"), key("Singlestore", "a")],
            ),
            (
                "other reasons, other controllers and no regarding are ignored",
                vec![
                    event("Ready", c, Some(("MSSQLServer", "a"))),
                    event(
                        "Provisioned",
                        Some("kubedb-ops-manager"),
                        Some(("MSSQLServer", "b")),
                    ),
                    event("Provisioned", None, Some(("MSSQLServer", "c"))),
                    event("Provisioned", c, None),
                ],
                vec![],
            ),
        ];
        for (name, events, want) in cases {
            let got: Vec<DbKey> = provisioned(&events).into_iter().collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn ready_databases_are_keyed_by_kind() {
        let resources = [
            ApiResource::erase::<MSSQLServer>(&()),
            ApiResource::erase::<Singlestore>(&()),
        ];
        let mut phases = Phases::default();
        phases.set("mssqlservers/a".into(), Some("Ready".into()));
        phases.set("mssqlservers/b".into(), Some("Provisioning".into()));
        phases.set("singlestores/c".into(), Some("Ready".into()));
        phases.set("singlestores/d".into(), None);
        phases.set("unknowns/e".into(), Some("Ready".into()));
        let got: Vec<DbKey> = ready_databases(&phases, &resources).into_iter().collect();
        assert_eq!(got, vec![key("MSSQLServer", "a"), key("Singlestore", "c")]);
    }

    #[test]
    fn settle_times_out_only_with_unreported_databases() {
        let done = Settle {
            ready: 3,
            ..Settle::default()
        };
        assert!(!done.timed_out());
        let short = Settle {
            unreported: 1,
            ..done
        };
        assert!(short.timed_out());
    }
}
