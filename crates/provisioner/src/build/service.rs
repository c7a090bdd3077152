//! The Service builder: the primary, secondary, governing (headless) and stats services, each
//! with the user's `serviceTemplates` entry laid over it.

use std::collections::BTreeMap;

use api::common::{ServiceAlias, ServiceTemplateSpec};
use api::names;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::merge::{from_json, merge_keyed, to_json};
use super::meta::child_metadata;
use crate::database::DbRef;
use crate::plan::PlanError;

/// A named TCP service port targeting the container port of the same name.
pub fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// A `ClusterIP` service spec selecting `selector`.
pub fn cluster_ip(selector: BTreeMap<String, String>, ports: Vec<ServicePort>) -> ServiceSpec {
    ServiceSpec {
        type_: Some("ClusterIP".into()),
        selector: Some(selector),
        ports: Some(ports),
        ..ServiceSpec::default()
    }
}

/// A Service; `template` (the user's `serviceTemplates` entry) is laid over it: its labels and
/// annotations are added and its spec fields replace ours, except the selector (the provisioner
/// owns what a service selects) and the ports, merged by name.
pub fn service(
    db: &DbRef,
    name: &str,
    extra_labels: &BTreeMap<String, String>,
    spec: ServiceSpec,
    template: Option<&ServiceTemplateSpec>,
) -> Result<Service, PlanError> {
    let mut metadata = child_metadata(db, name, extra_labels);
    let mut spec = spec;
    if let Some(template) = template {
        if let Some(meta) = &template.metadata {
            if let (Some(labels), Some(ours)) = (&meta.labels, metadata.labels.as_mut()) {
                ours.extend(labels.clone());
            }
            if let Some(annotations) = &meta.annotations {
                metadata.annotations = Some(annotations.clone());
            }
        }
        if let Some(user) = &template.spec {
            let user = to_json(user, "spec.serviceTemplates")?;
            let mut ours = to_json(&spec, "the service spec")?;
            for (key, value) in user.as_object().into_iter().flatten() {
                match key.as_str() {
                    "selector" => {}
                    "ports" => {
                        if let (Some(base), Some(items)) =
                            (ours["ports"].as_array_mut(), value.as_array())
                        {
                            merge_keyed(base, items, "name");
                        }
                    }
                    _ => {
                        ours[key] = value.clone();
                    }
                }
            }
            spec = from_json(ours, "spec.serviceTemplates")?;
        }
    }
    Ok(Service {
        metadata,
        spec: Some(spec),
        ..Service::default()
    })
}

/// The serviceTemplates entry of `alias`, if any.
pub fn service_template(
    templates: Option<&Vec<ServiceTemplateSpec>>,
    alias: ServiceAlias,
) -> Option<&ServiceTemplateSpec> {
    templates?.iter().find(|t| t.alias == alias)
}

/// The governing (headless) service `<db>-pods`: every pod, ready or not, gets DNS.
pub fn governing_service(db: &DbRef, ports: Vec<ServicePort>) -> Result<Service, PlanError> {
    service(
        db,
        &names::governing_service(&db.name),
        &BTreeMap::new(),
        ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(db.selector()),
            ports: Some(ports),
            ..ServiceSpec::default()
        },
        None,
    )
}

/// The stats service `<db>-stats` (label `kubedb.com/role=stats`, port `metrics`).
pub fn stats_service(
    db: &DbRef,
    exporter_port: i32,
    template: Option<&ServiceTemplateSpec>,
) -> Result<Service, PlanError> {
    let labels = BTreeMap::from([(names::LABEL_ROLE.to_owned(), names::ROLE_STATS.to_owned())]);
    service(
        db,
        &names::stats_service(&db.name),
        &labels,
        cluster_ip(db.selector(), vec![port("metrics", exporter_port)]),
        template,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> DbRef {
        super::super::test_db(crate::database::DbKind::MSSQLServer, "db", "ns")
    }

    #[test]
    fn governing_and_stats_services() {
        let governing =
            serde_json::to_value(governing_service(&db(), vec![port("db", 1433)]).unwrap())
                .unwrap();
        assert_eq!(governing["metadata"]["name"], "db-pods");
        assert_eq!(governing["spec"]["clusterIP"], "None");
        assert_eq!(governing["spec"]["publishNotReadyAddresses"], true);
        assert_eq!(
            governing["spec"]["ports"],
            json!([{"name": "db", "port": 1433, "targetPort": "db", "protocol": "TCP"}])
        );
        assert!(governing["spec"].get("type").is_none());
        let stats = serde_json::to_value(stats_service(&db(), 9399, None).unwrap()).unwrap();
        assert_eq!(stats["metadata"]["name"], "db-stats");
        assert_eq!(stats["metadata"]["labels"]["kubedb.com/role"], "stats");
        assert_eq!(stats["spec"]["type"], "ClusterIP");
        assert_eq!(stats["spec"]["ports"][0]["port"], 9399);
    }

    #[test]
    fn service_template_merges_but_keeps_selector() {
        let template = ServiceTemplateSpec {
            alias: ServiceAlias::Primary,
            metadata: Some(api::common::TemplateMeta {
                labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                annotations: Some(BTreeMap::from([("note".into(), "x".into())])),
            }),
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                type_: Some("LoadBalancer".into()),
                selector: Some(BTreeMap::from([("evil".into(), "1".into())])),
                ..Default::default()
            }),
        };
        let svc = service(
            &db(),
            "db",
            &BTreeMap::new(),
            cluster_ip(
                BTreeMap::from([("a".to_owned(), "b".to_owned())]),
                vec![port("db", 1433)],
            ),
            Some(&template),
        )
        .unwrap();
        let svc = serde_json::to_value(svc).unwrap();
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        assert_eq!(svc["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(svc["metadata"]["labels"]["team"], "a");
        assert_eq!(svc["metadata"]["annotations"]["note"], "x");
        assert_eq!(svc["metadata"]["ownerReferences"][0]["uid"], "uid-123456");
    }
}
