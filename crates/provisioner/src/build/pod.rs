//! Pieces of the database pods shared by both kinds: containers' env, ports, resources and
//! security contexts, probes, volumes and mounts, spread constraints, the data claim template, and
//! the checks of the user's pod template.

use std::collections::BTreeMap;

use api::common::PodTemplateSpec;
use api::names;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, TCPSocketAction,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::database::DbRef;
use crate::plan::PlanError;

/// Resource requirements with CPU and memory requests and a memory limit.
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(cpu)),
            ("memory".to_owned(), quantity(memory)),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            quantity(memory_limit),
        )])),
        ..ResourceRequirements::default()
    }
}

/// The restricted container security context: no privilege escalation, every capability dropped
/// (`NET_BIND_SERVICE` added back when asked), non-root with the Version's user and group, the
/// runtime's default seccomp profile.
pub fn container_security_context(
    run_as_user: i64,
    run_as_group: i64,
    add_net_bind: bool,
) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: add_net_bind.then(|| vec!["NET_BIND_SERVICE".into()]),
        }),
        run_as_group: Some(run_as_group),
        run_as_non_root: Some(true),
        run_as_user: Some(run_as_user),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// Zone and node spread, maxSkew 1, ScheduleAnyway (the PetSet `default` PlacementPolicy).
pub fn spread_constraints(selector: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(match_labels(selector)),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

/// A label selector matching exactly `labels`.
pub fn match_labels(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        ..LabelSelector::default()
    }
}

/// An env var read from a secret key.
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An env var with a literal value.
pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An env var from the pod's own metadata or status.
pub fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A named TCP container port.
pub fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// A TCP probe of the named port (on the same container) every 10 s with a 5 s timeout.
fn tcp_probe(port: &str, failure_threshold: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.into()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// startupProbe of a database container (`mssql`, `singlestore`): its port (named, on the same
/// container) accepts TCP connections within 10 minutes (60 × 10 s). SQL Server's first start
/// creates its system databases and a start after a version update upgrades them; SingleStore's
/// cluster-in-a-box creates and joins two nodes on its first start. Until it succeeds no
/// readiness probe runs; if it never does, the kubelet restarts the container.
pub fn database_startup_probe(port: &str) -> Probe {
    tcp_probe(port, 60)
}

/// readinessProbe of a standalone database container: its port accepts TCP connections (three
/// failures in a row make it unready).
pub fn database_readiness_probe(port: &str) -> Probe {
    tcp_probe(port, 3)
}

/// readinessProbe of a clustered database container: the in-pod agent's `/ready` decides
/// (200 when the local replica is a writable primary or a synchronized secondary). The agent
/// listens in the coordinator container, so the port is a number: Kubernetes resolves a named
/// probe port among the probed container's own ports only.
pub fn agent_readiness_probe(port: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/ready".into()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        // Every 2 s: the answer is a local HTTP call on the agent's last observation, and a new
        // primary takes traffic (the primary Service's endpoints) only once it reads Ready, so
        // the period adds directly to the failover time.
        period_seconds: Some(2),
        timeout_seconds: Some(1),
        failure_threshold: Some(2),
        ..Probe::default()
    }
}

/// livenessProbe of the agent (coordinator) container: its `/healthz` on its own client port;
/// three failures 10 s apart restart the agent (not the database).
pub fn agent_liveness_probe(port: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::String(port.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// An `emptyDir` volume.
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// A volume of a whole secret, with its files' mode when given.
pub fn secret_volume(name: &str, secret: &str, default_mode: Option<i32>) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            default_mode,
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A volume of one key of a secret, under the key's own name.
pub fn secret_key_volume(name: &str, secret: &str, key: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: key.into(),
                ..KeyToPath::default()
            }]),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A writable mount of `volume` at `path`.
pub fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

/// A read-only mount of `volume` at `path`.
pub fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(volume, path)
    }
}

/// The init container of a database pod: the Version's init image, which fills the scripts
/// volume `volume` mounted at `path`.
pub fn init_container(
    name: &str,
    image: &str,
    (run_as_user, run_as_group): (i64, i64),
    (volume, path): (&str, &str),
) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        resources: Some(resources("200m", "256Mi", "512Mi")),
        security_context: Some(container_security_context(run_as_user, run_as_group, false)),
        volume_mounts: Some(vec![mount(volume, path)]),
        ..Container::default()
    }
}

/// The pod security context of a database pod: its volumes get the database user's id as their
/// group (`fsGroup`), so the database can write its data.
pub fn fs_group(run_as_user: i64) -> PodSecurityContext {
    PodSecurityContext {
        fs_group: Some(run_as_user),
        ..PodSecurityContext::default()
    }
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

/// The data volume claim template: a claim named `data` with the database's labels and `spec`.
pub fn claim_template(db: &DbRef, spec: PersistentVolumeClaimSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(names::DATA_VOLUME.to_owned()),
            labels: Some(db.labels()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..PersistentVolumeClaim::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::common::PodSpec;
    use k8s_openapi::api::core::v1::Container;
    use serde_json::json;

    fn json<T: serde::Serialize>(value: T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn env_vars_render_as_kubernetes_spells_them() {
        let cases = [
            (json(env("A", "1")), json!({"name": "A", "value": "1"})),
            (
                json(secret_env("PW", "db-auth", "password")),
                json!({"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-auth", "key": "password"}}}),
            ),
            (
                json(field_env("POD_NAME", "metadata.name")),
                json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn security_context_is_restricted() {
        let cases = [
            (true, json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
            (false, json!({"drop": ["ALL"]})),
        ];
        for (net_bind, capabilities) in cases {
            assert_eq!(
                json(container_security_context(10001, 20002, net_bind)),
                json!({"allowPrivilegeEscalation": false, "capabilities": capabilities,
                       "runAsGroup": 20002, "runAsNonRoot": true, "runAsUser": 10001,
                       "seccompProfile": {"type": "RuntimeDefault"}})
            );
        }
    }

    #[test]
    fn volumes_and_mounts() {
        let cases = [
            (
                json(empty_dir("data")),
                json!({"name": "data", "emptyDir": {}}),
            ),
            (
                json(secret_volume("certs", "db-cert", Some(0o440))),
                json!({"name": "certs", "secret": {"secretName": "db-cert", "defaultMode": 288}}),
            ),
            (
                json(secret_volume("config", "db-conf", None)),
                json!({"name": "config", "secret": {"secretName": "db-conf"}}),
            ),
            (
                json(secret_key_volume("ca", "db-cert", "ca.crt")),
                json!({"name": "ca", "secret": {"secretName": "db-cert", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
            ),
            (
                json(mount("data", "/d")),
                json!({"name": "data", "mountPath": "/d"}),
            ),
            (
                json(read_only_mount("certs", "/c")),
                json!({"name": "certs", "mountPath": "/c", "readOnly": true}),
            ),
            (
                json(container_port("db", 1433)),
                json!({"name": "db", "containerPort": 1433, "protocol": "TCP"}),
            ),
            (
                json(resources("1", "2Gi", "4Gi")),
                json!({"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn probes_render_as_kubernetes_spells_them() {
        let cases = [
            (
                json(database_startup_probe("db")),
                json!({"tcpSocket": {"port": "db"}, "periodSeconds": 10, "timeoutSeconds": 5,
                       "failureThreshold": 60}),
            ),
            (
                json(database_readiness_probe("db")),
                json!({"tcpSocket": {"port": "db"}, "periodSeconds": 10, "timeoutSeconds": 5,
                       "failureThreshold": 3}),
            ),
            (
                json(agent_readiness_probe(2379)),
                json!({"httpGet": {"path": "/ready", "port": 2379}, "periodSeconds": 2,
                       "timeoutSeconds": 1, "failureThreshold": 2}),
            ),
            (
                json(agent_liveness_probe("coordinatclient")),
                json!({"httpGet": {"path": "/healthz", "port": "coordinatclient"},
                       "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn spread_over_zones_then_nodes() {
        let selector = BTreeMap::from([("app".to_owned(), "db".to_owned())]);
        let keys: Vec<String> = spread_constraints(&selector)
            .into_iter()
            .map(|c| {
                assert_eq!(c.max_skew, 1);
                assert_eq!(c.when_unsatisfiable, "ScheduleAnyway");
                assert_eq!(c.label_selector, Some(match_labels(&selector)));
                c.topology_key
            })
            .collect();
        assert_eq!(
            keys,
            ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
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
}
