//! Metadata every child carries: its name and namespace, the database's offshoot labels and the
//! controller owner reference to the database.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::database::DbRef;

/// The controller owner reference to the database (garbage collection removes the child with
/// it; `blockOwnerDeletion` keeps the database until its children are gone in foreground
/// deletion).
pub fn owner_reference(db: &DbRef) -> OwnerReference {
    OwnerReference {
        api_version: "kubedb.com/v1alpha2".into(),
        kind: db.kind.as_str().into(),
        name: db.name.clone(),
        uid: db.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Metadata of a child: name, namespace, offshoot labels (plus `extra_labels`), owner reference.
pub fn child_metadata(
    db: &DbRef,
    name: &str,
    extra_labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    let mut labels = db.labels();
    labels.extend(extra_labels.clone());
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(db.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![owner_reference(db)]),
        ..ObjectMeta::default()
    }
}

/// `Some(map)` unless the map is empty (optional label and annotation maps are left out).
pub fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::DbKind;
    use serde_json::json;

    #[test]
    fn metadata_names_the_database_as_controller() {
        let cases = [
            (
                DbKind::MSSQLServer,
                "MSSQLServer",
                "mssqlservers.kubedb.com",
            ),
            (
                DbKind::Singlestore,
                "Singlestore",
                "singlestores.kubedb.com",
            ),
        ];
        for (kind, spelled, resource) in cases {
            let db = DbRef {
                kind,
                name: "db".into(),
                namespace: "ns".into(),
                uid: "u-1".into(),
            };
            let extra = BTreeMap::from([("tier".to_owned(), "x".to_owned())]);
            let meta = serde_json::to_value(child_metadata(&db, "db-pods", &extra)).unwrap();
            assert_eq!(
                meta,
                json!({
                    "name": "db-pods", "namespace": "ns",
                    "labels": {"app.kubernetes.io/component": "database",
                               "app.kubernetes.io/instance": "db",
                               "app.kubernetes.io/managed-by": "kubedb.com",
                               "app.kubernetes.io/name": resource, "tier": "x"},
                    "ownerReferences": [{"apiVersion": "kubedb.com/v1alpha2", "kind": spelled,
                        "name": "db", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}],
                }),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn empty_maps_are_left_out() {
        assert_eq!(non_empty(BTreeMap::new()), None);
        let one = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert_eq!(non_empty(one.clone()), Some(one));
    }
}
