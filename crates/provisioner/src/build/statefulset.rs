//! The StatefulSet builder (KubeDB's PetSet): OnDelete updates, because only the ops-manager rolls
//! pods; Parallel pod management; the governing service `<db>-pods`.

use std::collections::BTreeMap;

use api::names;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::meta::{child_metadata, non_empty};
use super::pod::match_labels;
use crate::database::DbRef;

/// What a StatefulSet is made of.
pub struct StatefulSetParts<'a> {
    /// StatefulSet name.
    pub name: &'a str,
    /// Replicas.
    pub replicas: i32,
    /// Selector labels (the database's selector plus `kubedb.com/petset`).
    pub selector: BTreeMap<String, String>,
    /// Extra pod labels (from the podTemplate).
    pub pod_labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub pod_annotations: BTreeMap<String, String>,
    /// The pod spec.
    pub pod_spec: PodSpec,
    /// The data claim template (Durable) or none (Ephemeral).
    pub claim: Option<PersistentVolumeClaim>,
    /// Labels of the StatefulSet itself (`podTemplate.controller`).
    pub controller_labels: BTreeMap<String, String>,
    /// Annotations of the StatefulSet itself.
    pub controller_annotations: BTreeMap<String, String>,
}

/// The `kubedb.com/petset` selector of one StatefulSet.
pub fn set_selector(db: &DbRef, set: &str) -> BTreeMap<String, String> {
    let mut selector = db.selector();
    selector.insert(names::LABEL_PETSET.to_owned(), set.to_owned());
    selector
}

/// Builds a StatefulSet of the database.
pub fn stateful_set(db: &DbRef, parts: StatefulSetParts<'_>) -> StatefulSet {
    let mut pod_labels = db.labels();
    pod_labels.extend(parts.selector.clone());
    pod_labels.extend(parts.pod_labels);
    let mut extra = parts.controller_labels;
    extra.insert(names::LABEL_PETSET.to_owned(), parts.name.to_owned());
    let mut metadata = child_metadata(db, parts.name, &extra);
    metadata.annotations = non_empty(parts.controller_annotations);
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(parts.replicas),
            service_name: Some(names::governing_service(&db.name)),
            selector: match_labels(&parts.selector),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: non_empty(parts.pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(parts.pod_spec),
            },
            volume_claim_templates: parts.claim.map(|claim| vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::DbKind;
    use k8s_openapi::api::core::v1::Container;
    use serde_json::json;

    fn db() -> DbRef {
        super::super::test_db(DbKind::MSSQLServer, "ms", "demo")
    }

    fn parts<'a>(
        claim: Option<PersistentVolumeClaim>,
        annotations: BTreeMap<String, String>,
    ) -> StatefulSetParts<'a> {
        StatefulSetParts {
            name: "ms",
            replicas: 3,
            selector: set_selector(&db(), "ms"),
            pod_labels: BTreeMap::from([("app".to_owned(), "orders".to_owned())]),
            pod_annotations: annotations.clone(),
            pod_spec: PodSpec {
                containers: vec![Container {
                    name: "mssql".into(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            },
            claim,
            controller_labels: BTreeMap::from([("tier".to_owned(), "db".to_owned())]),
            controller_annotations: annotations,
        }
    }

    #[test]
    fn statefulset_shape() {
        let claim = super::super::pod::claim_template(&db(), Default::default());
        let annotated = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let cases = [
            (None, BTreeMap::new(), false, false),
            (Some(claim), annotated, true, true),
        ];
        for (claim, annotations, has_claim, has_annotations) in cases {
            let set = serde_json::to_value(stateful_set(&db(), parts(claim, annotations))).unwrap();
            let spec = &set["spec"];
            assert_eq!(set["apiVersion"], "apps/v1");
            assert_eq!(set["kind"], "StatefulSet");
            assert_eq!(spec["replicas"], 3);
            assert_eq!(spec["serviceName"], "ms-pods");
            assert_eq!(spec["podManagementPolicy"], "Parallel");
            assert_eq!(spec["updateStrategy"], json!({"type": "OnDelete"}));
            assert_eq!(spec["selector"]["matchLabels"]["kubedb.com/petset"], "ms");
            assert_eq!(set["metadata"]["labels"]["kubedb.com/petset"], "ms");
            assert_eq!(set["metadata"]["labels"]["tier"], "db");
            let pod_labels = &spec["template"]["metadata"]["labels"];
            assert_eq!(pod_labels["app"], "orders");
            assert_eq!(pod_labels["kubedb.com/petset"], "ms");
            assert_eq!(pod_labels["app.kubernetes.io/component"], "database");
            assert_eq!(spec.get("volumeClaimTemplates").is_some(), has_claim);
            assert_eq!(
                set["metadata"].get("annotations").is_some(),
                has_annotations
            );
            assert_eq!(
                spec["template"]["metadata"].get("annotations").is_some(),
                has_annotations
            );
        }
    }
}
