//! The PodDisruptionBudget builder: how many pods of one StatefulSet an eviction may take.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::child_metadata;
use super::pod::match_labels;
use crate::database::DbRef;

/// How a PodDisruptionBudget limits evictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At least this many pods stay available.
    MinAvailable(i32),
    /// At most this many pods may be unavailable.
    MaxUnavailable(i32),
}

/// A PodDisruptionBudget over one StatefulSet's pods, named after the StatefulSet.
pub fn pdb(
    db: &DbRef,
    set: &str,
    selector: &BTreeMap<String, String>,
    budget: Budget,
) -> PodDisruptionBudget {
    let (min_available, max_unavailable) = match budget {
        Budget::MinAvailable(n) => (Some(IntOrString::Int(n)), None),
        Budget::MaxUnavailable(n) => (None, Some(IntOrString::Int(n))),
    };
    PodDisruptionBudget {
        metadata: child_metadata(db, set, &BTreeMap::new()),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(match_labels(selector)),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::DbKind;
    use serde_json::json;

    #[test]
    fn budgets() {
        let db = DbRef {
            kind: DbKind::Singlestore,
            name: "sdb".into(),
            namespace: "demo".into(),
            uid: "u".into(),
        };
        let selector = BTreeMap::from([("kubedb.com/petset".to_owned(), "sdb-leaf".to_owned())]);
        let cases = [
            (
                Budget::MinAvailable(2),
                json!({"minAvailable": 2, "selector": {"matchLabels": {"kubedb.com/petset": "sdb-leaf"}}}),
            ),
            (
                Budget::MaxUnavailable(1),
                json!({"maxUnavailable": 1, "selector": {"matchLabels": {"kubedb.com/petset": "sdb-leaf"}}}),
            ),
        ];
        for (budget, spec) in cases {
            let pdb = serde_json::to_value(pdb(&db, "sdb-leaf", &selector, budget)).unwrap();
            assert_eq!(pdb["apiVersion"], "policy/v1");
            assert_eq!(pdb["kind"], "PodDisruptionBudget");
            assert_eq!(pdb["metadata"]["name"], "sdb-leaf");
            assert_eq!(pdb["spec"], spec, "{budget:?}");
        }
    }
}
