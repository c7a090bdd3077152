//! Builders shared by both kinds: metadata and owner references, the pod-template merge, security
//! contexts, resources, spread constraints, services, PDBs, certificates and secrets.

use std::collections::BTreeMap;

use api::common::{CertificateSpec, PodTemplateSpec, ServiceAlias, ServiceTemplateSpec, TLSConfig};
use api::names;
use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use serde_json::{Map, Value, json};

use crate::database::DbRef;
use crate::plan::{Child, ChildKind, GeneratedSecret, PlanError};

/// The controller owner reference to the database.
pub fn owner_reference(db: &DbRef) -> Value {
    json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": db.kind.as_str(),
        "name": db.name,
        "uid": db.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Metadata of a child: name, namespace, offshoot labels (plus `extra`), owner reference.
pub fn child_metadata(db: &DbRef, name: &str, extra_labels: &BTreeMap<String, String>) -> Value {
    let mut labels = db.labels();
    labels.extend(extra_labels.clone());
    json!({
        "name": name,
        "namespace": db.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(db)],
    })
}

/// Resource requirements with CPU and memory requests and a memory limit.
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> Value {
    json!({
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"memory": memory_limit},
    })
}

/// The restricted container security context of §2.4.
pub fn container_security_context(
    run_as_user: i64,
    run_as_group: i64,
    add_net_bind: bool,
) -> Value {
    let mut capabilities = json!({"drop": ["ALL"]});
    if add_net_bind {
        capabilities["add"] = json!(["NET_BIND_SERVICE"]);
    }
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": capabilities,
        "runAsGroup": run_as_group,
        "runAsNonRoot": true,
        "runAsUser": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// Zone and node spread, maxSkew 1, ScheduleAnyway (the PetSet `default` PlacementPolicy).
pub fn spread_constraints(selector: &BTreeMap<String, String>) -> Value {
    let constraint = |key: &str| {
        json!({
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        })
    };
    json!([
        constraint("topology.kubernetes.io/zone"),
        constraint("kubernetes.io/hostname"),
    ])
}

/// An env var read from a secret key.
pub fn secret_env(name: &str, secret: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

/// An env var with a literal value.
pub fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// An env var from the pod's own metadata or status.
pub fn field_env(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}})
}

/// Merges list items by `key`: an overlay item with the key of a base item is merged into it
/// (overlay fields win), other overlay items are appended.
fn merge_keyed(base: &mut Vec<Value>, overlay: &[Value], key: &str) {
    for item in overlay {
        let id = item.get(key);
        match base.iter_mut().find(|b| id.is_some() && b.get(key) == id) {
            Some(existing) => merge_object(existing, item),
            None => base.push(item.clone()),
        }
    }
}

/// Overlays the fields of `overlay` on `base` (one level: overlay values replace base values).
fn merge_object(base: &mut Value, overlay: &Value) {
    if let (Some(base), Some(overlay)) = (base.as_object_mut(), overlay.as_object()) {
        for (k, v) in overlay {
            if !v.is_null() {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Merges a user container into one of ours: `env`, `volumeMounts` and `ports` are merged by
/// name (port: `containerPort`), `name` and `image` stay ours (images come from the Version),
/// every other field the user set replaces ours (for example `resources` as a whole).
fn merge_container(base: &mut Value, user: &Value) {
    let Some(user) = user.as_object() else { return };
    for (key, value) in user {
        match key.as_str() {
            "name" | "image" => {}
            "env" | "volumeMounts" | "ports" => {
                let id = if key == "ports" {
                    "containerPort"
                } else {
                    "name"
                };
                let list = base
                    .as_object_mut()
                    .expect("containers are objects")
                    .entry(key.clone())
                    .or_insert_with(|| json!([]));
                if let (Some(list), Some(items)) = (list.as_array_mut(), value.as_array()) {
                    merge_keyed(list, items, id);
                }
            }
            _ if value.is_null() => {}
            _ => {
                base[key] = value.clone();
            }
        }
    }
}

fn merge_containers(base: &mut Value, user: &Value) {
    let Some(user) = user.as_array() else { return };
    let list = base.as_array_mut().expect("container lists are arrays");
    for container in user {
        let name = container.get("name");
        match list.iter_mut().find(|c| c.get("name") == name) {
            Some(existing) => merge_container(existing, container),
            None => list.push(container.clone()),
        }
    }
}

/// Merges the user's `podTemplate.spec` over the generated pod spec: containers and init
/// containers by name (see [`merge_container`]), volumes by name (appended), the pod security
/// context field by field, and every other field the user set replaces the generated one.
pub fn merge_pod_spec(mut base: Value, user: Option<&PodTemplateSpec>) -> Result<Value, PlanError> {
    let Some(spec) = user.and_then(|t| t.spec.as_ref()) else {
        return Ok(base);
    };
    let user = serde_json::to_value(spec)
        .map_err(|e| PlanError::invalid(format!("spec.podTemplate.spec: {e}")))?;
    let Some(user) = user.as_object() else {
        return Ok(base);
    };
    let obj = base.as_object_mut().expect("pod specs are objects");
    for (key, value) in user {
        match key.as_str() {
            "containers" | "initContainers" => {
                let list = obj.entry(key.clone()).or_insert_with(|| json!([]));
                merge_containers(list, value);
            }
            "volumes" => {
                let list = obj.entry(key.clone()).or_insert_with(|| json!([]));
                if let (Some(list), Some(items)) = (list.as_array_mut(), value.as_array()) {
                    merge_keyed(list, items, "name");
                }
            }
            "securityContext" => {
                let sc = obj.entry(key.clone()).or_insert_with(|| json!({}));
                merge_object(sc, value);
            }
            // A PetSet concept; StatefulSets express placement with spread constraints.
            "podPlacementPolicy" => {}
            _ => {
                obj.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(base)
}

/// Labels and annotations from `podTemplate.metadata`.
pub fn template_meta(
    template: Option<&PodTemplateSpec>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let meta = template.and_then(|t| t.metadata.as_ref());
    (
        meta.and_then(|m| m.labels.clone()).unwrap_or_default(),
        meta.and_then(|m| m.annotations.clone()).unwrap_or_default(),
    )
}

/// Rejects user volumes and mounts that reuse a reserved name or path.
pub fn check_reserved_volumes(
    template: Option<&PodTemplateSpec>,
    reserved_names: &[&str],
    reserved_paths: &[&str],
) -> Result<(), PlanError> {
    let Some(spec) = template.and_then(|t| t.spec.as_ref()) else {
        return Ok(());
    };
    for volume in spec.volumes.iter().flatten() {
        if reserved_names.contains(&volume.name.as_str()) {
            return Err(PlanError::invalid(format!(
                "spec.podTemplate.spec.volumes: the volume name {:?} is reserved by the provisioner",
                volume.name
            )));
        }
    }
    for container in spec.containers.iter().flatten() {
        for mount in container.volume_mounts.iter().flatten() {
            if reserved_paths.contains(&mount.mount_path.as_str()) {
                return Err(PlanError::invalid(format!(
                    "spec.podTemplate.spec.containers[{}].volumeMounts: the path {:?} is reserved by the provisioner",
                    container.name, mount.mount_path
                )));
            }
        }
    }
    Ok(())
}

/// The data volume claim template from `spec.storage`.
pub fn claim_template(
    db: &DbRef,
    storage: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec,
) -> Result<Value, PlanError> {
    let spec = serde_json::to_value(storage)
        .map_err(|e| PlanError::invalid(format!("spec.storage: {e}")))?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": names::DATA_VOLUME, "labels": db.labels()},
        "spec": spec,
    }))
}

/// A StatefulSet around `pod_spec`.
pub struct StatefulSetParts<'a> {
    /// StatefulSet name.
    pub name: &'a str,
    /// Replicas.
    pub replicas: i32,
    /// Selector labels (the database's selector plus `kubedb.com/petset`).
    pub selector: BTreeMap<String, String>,
    /// Extra pod labels and annotations (from the podTemplate).
    pub pod_labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub pod_annotations: BTreeMap<String, String>,
    /// The pod spec.
    pub pod_spec: Value,
    /// The data claim template (Durable) or none (Ephemeral).
    pub claim: Option<Value>,
    /// Labels and annotations of the StatefulSet itself (`podTemplate.controller`).
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

/// Builds a StatefulSet: OnDelete updates (only the ops-manager rolls pods), Parallel pod
/// management, the governing service `<db>-pods`.
pub fn stateful_set(db: &DbRef, parts: StatefulSetParts<'_>) -> Child {
    let mut pod_labels = db.labels();
    pod_labels.extend(parts.selector.clone());
    pod_labels.extend(parts.pod_labels);
    let mut extra = parts.controller_labels;
    extra.insert(names::LABEL_PETSET.to_owned(), parts.name.to_owned());
    let mut metadata = child_metadata(db, parts.name, &extra);
    if !parts.controller_annotations.is_empty() {
        metadata["annotations"] = json!(parts.controller_annotations);
    }
    let mut template_meta = json!({"labels": pod_labels});
    if !parts.pod_annotations.is_empty() {
        template_meta["annotations"] = json!(parts.pod_annotations);
    }
    let mut spec = json!({
        "replicas": parts.replicas,
        "serviceName": names::governing_service(&db.name),
        "selector": {"matchLabels": parts.selector},
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "OnDelete"},
        "template": {"metadata": template_meta, "spec": parts.pod_spec},
    });
    if let Some(claim) = parts.claim {
        spec["volumeClaimTemplates"] = json!([claim]);
    }
    Child {
        kind: ChildKind::StatefulSet,
        name: parts.name.to_owned(),
        body: json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata,
            "spec": spec,
        }),
    }
}

/// A Service; `template` (the user's `serviceTemplates` entry) is merged over it: its labels and
/// annotations are added and its spec fields replace ours (ports merged by name).
pub fn service(
    db: &DbRef,
    name: &str,
    extra_labels: &BTreeMap<String, String>,
    mut spec: Value,
    template: Option<&ServiceTemplateSpec>,
) -> Result<Child, PlanError> {
    let mut metadata = child_metadata(db, name, extra_labels);
    if let Some(template) = template {
        if let Some(meta) = &template.metadata {
            if let Some(labels) = &meta.labels {
                for (k, v) in labels {
                    metadata["labels"][k] = json!(v);
                }
            }
            if let Some(annotations) = &meta.annotations {
                metadata["annotations"] = json!(annotations);
            }
        }
        if let Some(user) = &template.spec {
            let user = serde_json::to_value(user)
                .map_err(|e| PlanError::invalid(format!("spec.serviceTemplates: {e}")))?;
            for (key, value) in user.as_object().into_iter().flatten() {
                match key.as_str() {
                    // The provisioner owns what the service selects.
                    "selector" => {}
                    "ports" => {
                        if let (Some(base), Some(items)) =
                            (spec["ports"].as_array_mut(), value.as_array())
                        {
                            merge_keyed(base, items, "name");
                        }
                    }
                    _ => {
                        spec[key] = value.clone();
                    }
                }
            }
        }
    }
    Ok(Child {
        kind: ChildKind::Service,
        name: name.to_owned(),
        body: json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}),
    })
}

/// The serviceTemplates entry of `alias`, if any.
pub fn service_template(
    templates: Option<&Vec<ServiceTemplateSpec>>,
    alias: ServiceAlias,
) -> Option<&ServiceTemplateSpec> {
    templates?.iter().find(|t| t.alias == alias)
}

/// A service port.
pub fn port(name: &str, port: i32) -> Value {
    json!({"name": name, "port": port, "targetPort": name, "protocol": "TCP"})
}

/// The governing (headless) service `<db>-pods`: every pod, ready or not, gets DNS.
pub fn governing_service(db: &DbRef, ports: Vec<Value>) -> Result<Child, PlanError> {
    service(
        db,
        &names::governing_service(&db.name),
        &BTreeMap::new(),
        json!({
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": db.selector(),
            "ports": ports,
        }),
        None,
    )
}

/// The stats service `<db>-stats` (label `kubedb.com/role=stats`, port `metrics`).
pub fn stats_service(
    db: &DbRef,
    exporter_port: i32,
    template: Option<&ServiceTemplateSpec>,
) -> Result<Child, PlanError> {
    let labels = BTreeMap::from([(names::LABEL_ROLE.to_owned(), names::ROLE_STATS.to_owned())]);
    service(
        db,
        &names::stats_service(&db.name),
        &labels,
        json!({
            "type": "ClusterIP",
            "selector": db.selector(),
            "ports": [port("metrics", exporter_port)],
        }),
        template,
    )
}

/// How a PodDisruptionBudget limits evictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At least this many pods stay available.
    MinAvailable(i32),
    /// At most this many pods may be unavailable.
    MaxUnavailable(i32),
}

/// A PodDisruptionBudget over one StatefulSet's pods.
pub fn pdb(db: &DbRef, set: &str, selector: &BTreeMap<String, String>, budget: Budget) -> Child {
    let mut spec = json!({"selector": {"matchLabels": selector}});
    match budget {
        Budget::MinAvailable(n) => spec["minAvailable"] = json!(n),
        Budget::MaxUnavailable(n) => spec["maxUnavailable"] = json!(n),
    }
    Child {
        kind: ChildKind::PodDisruptionBudget,
        name: set.to_owned(),
        body: json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": child_metadata(db, set, &BTreeMap::new()),
            "spec": spec,
        }),
    }
}

/// One certificate alias to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAlias {
    /// Alias (`server`, `client`, `endpoint`).
    pub alias: &'static str,
    /// Common name.
    pub common_name: String,
    /// DNS names.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<String>,
}

/// The secret a certificate alias is issued into (the user's `secretName` or `<db>-<alias>-cert`).
pub fn cert_secret_name(db: &DbRef, tls: &TLSConfig, alias: &str) -> String {
    cert_override(tls, alias)
        .and_then(|c| c.secret_name.clone())
        .unwrap_or_else(|| names::cert_secret(&db.name, alias))
}

fn cert_override<'a>(tls: &'a TLSConfig, alias: &str) -> Option<&'a CertificateSpec> {
    tls.certificates.as_ref()?.iter().find(|c| c.alias == alias)
}

/// A cert-manager Certificate for `alias`: KubeDB's secret name and subject (organisation
/// `kubedb`, OU = alias) with the user's overrides; the issued secret gets the offshoot labels.
pub fn certificate(db: &DbRef, tls: &TLSConfig, alias: &CertAlias) -> Result<Child, PlanError> {
    let user = cert_override(tls, alias.alias);
    let issuer: &TypedLocalObjectReference = user
        .and_then(|c| c.issuer_ref.as_ref())
        .or(tls.issuer_ref.as_ref())
        .ok_or_else(|| PlanError::invalid("spec.tls.issuerRef is required for TLS"))?;
    let secret = cert_secret_name(db, tls, alias.alias);
    let mut subject = json!({"organizations": ["kubedb"], "organizationalUnits": [alias.alias]});
    let mut dns_names = alias.dns_names.clone();
    let mut ip_addresses = alias.ip_addresses.clone();
    let mut spec = Map::new();
    if let Some(user) = user {
        if let Some(s) = &user.subject {
            subject = serde_json::to_value(s)
                .map_err(|e| PlanError::invalid(format!("spec.tls.certificates: {e}")))?;
        }
        for extra in user.dns_names.iter().flatten() {
            if !dns_names.contains(extra) {
                dns_names.push(extra.clone());
            }
        }
        for extra in user.ip_addresses.iter().flatten() {
            if !ip_addresses.contains(extra) {
                ip_addresses.push(extra.clone());
            }
        }
        if let Some(d) = &user.duration {
            spec.insert("duration".into(), json!(d));
        }
        if let Some(r) = &user.renew_before {
            spec.insert("renewBefore".into(), json!(r));
        }
        if let Some(uris) = &user.uris {
            spec.insert("uris".into(), json!(uris));
        }
        if let Some(emails) = &user.email_addresses {
            spec.insert("emailAddresses".into(), json!(emails));
        }
        if let Some(encoding) = user.private_key.as_ref().and_then(|k| k.encoding.clone()) {
            spec.insert("privateKey".into(), json!({"encoding": encoding}));
        }
    }
    spec.insert("secretName".into(), json!(secret));
    spec.insert("commonName".into(), json!(alias.common_name));
    spec.insert("subject".into(), subject);
    spec.insert("dnsNames".into(), json!(dns_names));
    if !ip_addresses.is_empty() {
        spec.insert("ipAddresses".into(), json!(ip_addresses));
    }
    spec.insert(
        "issuerRef".into(),
        json!({
            "name": issuer.name,
            "kind": issuer.kind,
            "group": issuer.api_group.clone().unwrap_or_else(|| "cert-manager.io".into()),
        }),
    );
    spec.insert(
        "usages".into(),
        json!([
            "digital signature",
            "key encipherment",
            "server auth",
            "client auth"
        ]),
    );
    spec.insert("secretTemplate".into(), json!({"labels": db.labels()}));
    let name = secret.clone();
    Ok(Child {
        kind: ChildKind::Certificate,
        name: name.clone(),
        body: json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": child_metadata(db, &name, &BTreeMap::new()),
            "spec": Value::Object(spec),
        }),
    })
}

/// DNS names under which the database's pods and services answer.
pub fn service_dns_names(db: &DbRef, services: &[String]) -> Vec<String> {
    let ns = &db.namespace;
    let governing = names::governing_service(&db.name);
    let mut dns = Vec::new();
    for svc in services.iter().chain(std::iter::once(&governing)) {
        dns.push(svc.clone());
        dns.push(format!("{svc}.{ns}.svc"));
        dns.push(format!("{svc}.{ns}.svc.cluster.local"));
    }
    dns.push(format!("*.{governing}.{ns}.svc"));
    dns.push(format!("*.{governing}.{ns}.svc.cluster.local"));
    dns.push("localhost".to_owned());
    dns
}

/// A secret with credentials generated once (`kubernetes.io/basic-auth` with `username`).
pub fn basic_auth_secret(db: &DbRef, name: &str, username: &str) -> GeneratedSecret {
    GeneratedSecret {
        name: name.to_owned(),
        type_: "kubernetes.io/basic-auth".to_owned(),
        fixed: BTreeMap::from([("username".to_owned(), username.to_owned())]),
        random_keys: vec!["password".to_owned()],
        metadata: child_metadata(db, name, &BTreeMap::new()),
    }
}

/// An Opaque secret with one random key.
pub fn random_secret(db: &DbRef, name: &str, key: &str) -> GeneratedSecret {
    GeneratedSecret {
        name: name.to_owned(),
        type_: "Opaque".to_owned(),
        fixed: BTreeMap::new(),
        random_keys: vec![key.to_owned()],
        metadata: child_metadata(db, name, &BTreeMap::new()),
    }
}

/// The operator-rendered configuration secret: the user's `configuration.secretName` data
/// overlaid with `configuration.inline`.
pub fn config_secret(db: &DbRef, name: &str, data: &BTreeMap<String, String>) -> Child {
    Child {
        kind: ChildKind::Secret,
        name: name.to_owned(),
        body: json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": child_metadata(db, name, &BTreeMap::new()),
            "stringData": data,
        }),
    }
}

/// Renders configuration: the user's secret data (when present) overlaid with the inline map.
/// `None` when neither is set. A named secret that does not exist is an error.
pub fn render_configuration(
    configuration: Option<&api::common::ConfigurationSpec>,
    sources: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Option<BTreeMap<String, String>>, PlanError> {
    let Some(configuration) = configuration else {
        return Ok(None);
    };
    let mut data = BTreeMap::new();
    if let Some(name) = &configuration.secret_name {
        let source = sources.get(name).ok_or_else(|| PlanError {
            reason: "ConfigSecretNotFound",
            message: format!("the configuration secret {name:?} does not exist"),
        })?;
        data.extend(source.clone());
    }
    if let Some(inline) = &configuration.inline {
        data.extend(inline.clone());
    }
    Ok((!data.is_empty()).then_some(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::common::PodSpec;
    use k8s_openapi::api::core::v1::{Container, EnvVar, ResourceRequirements};

    fn db() -> DbRef {
        DbRef {
            kind: crate::database::DbKind::MSSQLServer,
            name: "db".into(),
            namespace: "ns".into(),
            uid: "uid-123456".into(),
        }
    }

    #[test]
    fn pod_spec_merge_keeps_ours_and_adds_users() {
        let base = json!({
            "containers": [{"name": "mssql", "image": "ours", "env": [{"name": "A", "value": "1"}],
                            "resources": {"requests": {"cpu": "1"}}}],
            "securityContext": {"fsGroup": 10001},
        });
        let user = PodTemplateSpec {
            spec: Some(PodSpec {
                containers: Some(vec![
                    Container {
                        name: "mssql".into(),
                        image: Some("theirs".into()),
                        env: Some(vec![
                            EnvVar {
                                name: "A".into(),
                                value: Some("2".into()),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "MSSQL_PID".into(),
                                value: Some("Evaluation".into()),
                                ..Default::default()
                            },
                        ]),
                        resources: Some(ResourceRequirements::default()),
                        ..Default::default()
                    },
                    Container {
                        name: "sidecar".into(),
                        image: Some("s".into()),
                        ..Default::default()
                    },
                ]),
                node_selector: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
                security_context: Some(k8s_openapi::api::core::v1::PodSecurityContext {
                    run_as_non_root: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = merge_pod_spec(base, Some(&user)).unwrap();
        let containers = merged["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(
            containers[0]["image"], "ours",
            "images come from the Version"
        );
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "2"}, {"name": "MSSQL_PID", "value": "Evaluation"}])
        );
        assert_eq!(
            containers[0]["resources"],
            json!({}),
            "user resources replace the defaults"
        );
        assert_eq!(containers[1]["name"], "sidecar");
        assert_eq!(merged["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(
            merged["securityContext"],
            json!({"fsGroup": 10001, "runAsNonRoot": true})
        );
    }

    #[test]
    fn reserved_volume_names_and_paths_are_rejected() {
        let template = |volume: &str, path: &str| PodTemplateSpec {
            spec: Some(PodSpec {
                volumes: Some(vec![k8s_openapi::api::core::v1::Volume {
                    name: volume.into(),
                    ..Default::default()
                }]),
                containers: Some(vec![Container {
                    name: "mssql".into(),
                    volume_mounts: Some(vec![k8s_openapi::api::core::v1::VolumeMount {
                        name: volume.into(),
                        mount_path: path.into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let names = ["data"];
        let paths = ["/var/opt/mssql"];
        assert!(check_reserved_volumes(Some(&template("mine", "/mine")), &names, &paths).is_ok());
        let err =
            check_reserved_volumes(Some(&template("data", "/mine")), &names, &paths).unwrap_err();
        assert!(err.message.contains("\"data\""), "{err}");
        let err = check_reserved_volumes(Some(&template("mine", "/var/opt/mssql")), &names, &paths)
            .unwrap_err();
        assert!(err.message.contains("/var/opt/mssql"), "{err}");
    }

    #[test]
    fn certificate_uses_kubedb_names_subject_and_overrides() {
        let tls = TLSConfig {
            issuer_ref: Some(TypedLocalObjectReference {
                api_group: Some("cert-manager.io".into()),
                kind: "Issuer".into(),
                name: "ca".into(),
            }),
            certificates: Some(vec![CertificateSpec {
                alias: "client".into(),
                secret_name: Some("custom-client".into()),
                dns_names: Some(vec!["extra.example".into()]),
                ..Default::default()
            }]),
        };
        let alias = |a| CertAlias {
            alias: a,
            common_name: "cn".into(),
            dns_names: vec!["db".into()],
            ip_addresses: vec![],
        };
        let server = certificate(&db(), &tls, &alias("server")).unwrap();
        assert_eq!(server.name, "db-server-cert");
        assert_eq!(server.body["spec"]["secretName"], "db-server-cert");
        assert_eq!(
            server.body["spec"]["subject"],
            json!({"organizations": ["kubedb"], "organizationalUnits": ["server"]})
        );
        assert_eq!(
            server.body["spec"]["issuerRef"],
            json!({"name": "ca", "kind": "Issuer", "group": "cert-manager.io"})
        );
        assert_eq!(
            server.body["spec"]["secretTemplate"]["labels"]["app.kubernetes.io/instance"],
            "db"
        );
        let client = certificate(&db(), &tls, &alias("client")).unwrap();
        assert_eq!(client.body["spec"]["secretName"], "custom-client");
        assert_eq!(
            client.body["spec"]["dnsNames"],
            json!(["db", "extra.example"])
        );
        let none = TLSConfig::default();
        assert!(certificate(&db(), &none, &alias("server")).is_err());
    }

    #[test]
    fn configuration_rendering() {
        let sources = BTreeMap::from([(
            "user-conf".to_owned(),
            BTreeMap::from([
                ("mssql.conf".to_owned(), "[a]\n".to_owned()),
                ("x".to_owned(), "1".to_owned()),
            ]),
        )]);
        let spec =
            |secret: Option<&str>, inline: Option<(&str, &str)>| api::common::ConfigurationSpec {
                secret_name: secret.map(str::to_owned),
                inline: inline.map(|(k, v)| BTreeMap::from([(k.to_owned(), v.to_owned())])),
            };
        assert_eq!(render_configuration(None, &sources), Ok(None));
        let both = render_configuration(
            Some(&spec(Some("user-conf"), Some(("mssql.conf", "[b]\n")))),
            &sources,
        )
        .unwrap()
        .unwrap();
        assert_eq!(both["mssql.conf"], "[b]\n", "inline wins");
        assert_eq!(both["x"], "1");
        let missing = render_configuration(Some(&spec(Some("nope"), None)), &sources).unwrap_err();
        assert_eq!(missing.reason, "ConfigSecretNotFound");
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
            json!({"type": "ClusterIP", "selector": {"a": "b"}, "ports": [port("db", 1433)]}),
            Some(&template),
        )
        .unwrap();
        assert_eq!(svc.body["spec"]["type"], "LoadBalancer");
        assert_eq!(svc.body["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(svc.body["metadata"]["labels"]["team"], "a");
        assert_eq!(svc.body["metadata"]["annotations"]["note"], "x");
        assert_eq!(
            svc.body["metadata"]["ownerReferences"][0]["uid"],
            "uid-123456"
        );
    }
}
