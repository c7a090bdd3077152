//! Singlestore children: standalone (one cluster-in-a-box StatefulSet `<db>`) and topology
//! (`<db>[-suffix]-aggregator` and `<db>[-suffix]-leaf`, each with the coordinator sidecar, and the
//! ServiceAccount, Role and RoleBinding of the agents that run in it).

use std::collections::BTreeMap;

use api::catalog::SinglestoreVersion;
use api::common::{
    ConfigurationSpec, DatabaseStatus, DeletionPolicy, HealthCheckSpec, PodTemplateSpec,
    ServiceAlias, StorageType,
};
use api::names::{self, singlestore as n};
use api::singlestore::{Singlestore, SinglestoreNode};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimSpec, PodSpec};
use serde_json::Value;

use super::certificate::{self, CertAlias};
use super::pdb::{self, Budget};
use super::pod::{
    self, container_port, container_security_context, env, field_env, resources, secret_env,
};
use super::rbac;
use super::statefulset::{self, StatefulSetParts};
use super::{merge, secret, service};
use crate::database::{Database, DbKind, DbRef, PlanInput};
use crate::plan::{Desired, PlanError};

/// Volume of the internal scripts shared by the init container and the database container.
pub const INIT_SCRIPTS_VOLUME: &str = "init-scripts";
/// Volume of the rendered configuration.
pub const CONFIG_VOLUME: &str = "config";
/// Volume of the server certificate.
pub const TLS_VOLUME: &str = "tls";
/// Key of the license in the license secret.
pub const LICENSE_KEY: &str = "password";

/// Reserved volume names.
pub const RESERVED_VOLUMES: [&str; 5] = [
    names::DATA_VOLUME,
    INIT_SCRIPTS_VOLUME,
    CONFIG_VOLUME,
    TLS_VOLUME,
    rbac::API_ACCESS_VOLUME,
];
/// Reserved mount paths.
pub const RESERVED_PATHS: [&str; 4] = [n::DATA_PATH, n::CONFIG_PATH, n::TLS_PATH, n::SCRIPTS_PATH];

impl Database for Singlestore {
    type Version = SinglestoreVersion;
    const KIND: DbKind = DbKind::Singlestore;

    fn db_status(&self) -> Option<&DatabaseStatus> {
        self.status.as_ref()
    }
    fn version_name(&self) -> &str {
        &self.spec.version
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy()
    }
    fn halted(&self) -> bool {
        self.spec.halted()
    }
    fn health_checker(&self) -> HealthCheckSpec {
        self.spec.health_checker()
    }
    fn auth_secret_name(&self) -> String {
        self.spec
            .auth_secret
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| names::auth_secret(&self.metadata.name.clone().unwrap_or_default()))
    }
    fn admin_user(&self) -> &'static str {
        n::ROOT_USER
    }
    fn required_user_secrets(&self) -> Vec<(String, &'static str)> {
        self.spec
            .license_secret
            .name
            .clone()
            .into_iter()
            .map(|name| (name, LICENSE_KEY))
            .collect()
    }
    fn config_source_secrets(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .spec
            .configuration
            .iter()
            .filter_map(|c| c.secret_name.clone())
            .collect();
        if let Some(t) = &self.spec.topology {
            for node in [&t.aggregator, &t.leaf].into_iter().flatten() {
                names.extend(
                    node.configuration
                        .iter()
                        .filter_map(|c| c.secret_name.clone()),
                );
            }
        }
        names
    }
    fn sql_endpoint(&self) -> (String, u16) {
        let name = self.metadata.name.clone().unwrap_or_default();
        (names::primary_service(&name), n::DB_PORT as u16)
    }
    fn primary_sets(&self) -> Vec<String> {
        let name = self.metadata.name.clone().unwrap_or_default();
        match &self.spec.topology {
            None => vec![n::standalone_petset(&name)],
            Some(t) => vec![n::aggregator_petset(&name, suffix(t.aggregator.as_ref()))],
        }
    }
    fn availability_group(&self) -> Option<String> {
        None
    }
    fn sql_engine(&self) -> crate::health::Engine {
        crate::health::Engine::SingleStore {
            cluster: self.spec.topology.is_some(),
        }
    }
    fn sql_ca_secret(&self) -> Option<String> {
        let tls = self.spec.tls.as_ref().filter(|t| t.issuer_ref.is_some())?;
        Some(certificate::cert_secret_name(
            &DbRef::of(self),
            tls,
            "server",
        ))
    }
    fn plan(&self, input: &PlanInput<'_, SinglestoreVersion>) -> Result<Desired, PlanError> {
        plan(self, input)
    }
    fn use_agent_image(version: &mut SinglestoreVersion, image: &str) {
        version.spec.coordinator.image = image.to_owned();
    }
}

fn suffix(node: Option<&SinglestoreNode>) -> Option<&str> {
    node.and_then(|n| n.suffix.as_deref())
        .filter(|s| !s.is_empty())
}

/// Checks the spec before building.
pub fn validate(db: &Singlestore) -> Result<(), PlanError> {
    let spec = &db.spec;
    if spec
        .license_secret
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(PlanError::invalid("spec.licenseSecret.name is required"));
    }
    let durable = spec.storage_type() == StorageType::Durable;
    match &spec.topology {
        None => {
            if durable && spec.storage.is_none() {
                return Err(PlanError::invalid(
                    "spec.storage is required for a standalone Singlestore when spec.storageType is Durable",
                ));
            }
            pod::check_reserved_volumes(
                spec.pod_template.as_ref(),
                &RESERVED_VOLUMES,
                &RESERVED_PATHS,
            )?;
        }
        Some(t) => {
            for (role, node) in [("aggregator", &t.aggregator), ("leaf", &t.leaf)] {
                let Some(node) = node else {
                    return Err(PlanError::invalid(format!(
                        "spec.topology.{role} is required"
                    )));
                };
                if node.replicas.is_some_and(|r| r < 1) {
                    return Err(PlanError::invalid(format!(
                        "spec.topology.{role}.replicas must be greater than zero"
                    )));
                }
                if durable && node.storage.is_none() && spec.storage.is_none() {
                    return Err(PlanError::invalid(format!(
                        "spec.topology.{role}.storage is required when spec.storageType is Durable"
                    )));
                }
                pod::check_reserved_volumes(
                    node.pod_template.as_ref(),
                    &RESERVED_VOLUMES,
                    &RESERVED_PATHS,
                )?;
            }
        }
    }
    Ok(())
}

/// One StatefulSet to build.
struct Role<'a> {
    set: String,
    role: Option<&'static str>,
    replicas: i32,
    image: &'a str,
    coordinator: bool,
    storage: Option<&'a PersistentVolumeClaimSpec>,
    configuration: Option<&'a ConfigurationSpec>,
    config_secret: String,
    template: Option<&'a PodTemplateSpec>,
}

/// The configuration file, merged into every node's configuration secret when `spec.tls` is
/// set, that makes SingleStore offer TLS to clients with the mounted server certificate
/// (SingleStore's `ssl_cert` and `ssl_key` engine variables, "Server Configuration for Secure
/// Client Connections"). Intra-cluster TLS (`ssl_ca`) is not turned on: the agents register
/// nodes by their pod DNS names, which the server certificate does not list one by one.
pub const TLS_CONFIG_KEY: &str = "kubedb-tls.cnf";

/// The TLS configuration file to add, unless one of the user's files sets `ssl_cert` or
/// `ssl_key` itself (the user's settings win) (pure).
pub fn tls_config(user: Option<&BTreeMap<String, String>>) -> Option<(String, String)> {
    let sets_tls = user.into_iter().flatten().any(|(_, content)| {
        content.lines().any(|line| {
            let key = line
                .trim_start()
                .split(['=', ' ', '\t'])
                .next()
                .unwrap_or("");
            matches!(key.replace('-', "_").as_str(), "ssl_cert" | "ssl_key")
        })
    });
    (!sets_tls).then(|| {
        (
            TLS_CONFIG_KEY.to_owned(),
            format!(
                "[server]\nssl_cert = {path}/tls.crt\nssl_key = {path}/tls.key\n",
                path = n::TLS_PATH
            ),
        )
    })
}

/// Every child of a Singlestore.
pub fn plan(
    db: &Singlestore,
    input: &PlanInput<'_, SinglestoreVersion>,
) -> Result<Desired, PlanError> {
    validate(db)?;
    let r = DbRef::of(db);
    let spec = &db.spec;
    let version = &input.version.spec;
    let auth = db.auth_secret_name();
    let license = spec.license_secret.name.clone().unwrap_or_default();
    let mut desired = Desired::default();
    desired
        .generated_secrets
        .push(secret::basic_auth_secret(&r, &auth, n::ROOT_USER));

    // Certificates.
    let tls_secret = match &spec.tls {
        Some(tls) if tls.issuer_ref.is_some() => {
            let dns = certificate::service_dns_names(&r, &[names::primary_service(&r.name)]);
            for alias in [
                CertAlias {
                    alias: "server",
                    common_name: r.name.clone(),
                    dns_names: dns.clone(),
                    ip_addresses: vec!["127.0.0.1".into()],
                    pkcs12_password: None,
                },
                CertAlias {
                    alias: "client",
                    common_name: n::ROOT_USER.into(),
                    dns_names: vec![],
                    ip_addresses: vec![],
                    pkcs12_password: None,
                },
            ] {
                desired
                    .certificates
                    .push(certificate::certificate(&r, tls, &alias)?);
            }
            Some(certificate::cert_secret_name(&r, tls, "server"))
        }
        _ => None,
    };

    // StatefulSets to build.
    let standalone_image = version
        .standalone
        .as_ref()
        .map(|i| i.image.as_str())
        .ok_or_else(|| PlanError {
            reason: "InvalidVersion",
            message: format!(
                "SinglestoreVersion {} has no spec.standalone.image",
                spec.version
            ),
        })?;
    let roles: Vec<Role<'_>> = match &spec.topology {
        None => vec![Role {
            set: n::standalone_petset(&r.name),
            role: None,
            replicas: 1,
            image: standalone_image,
            coordinator: false,
            storage: spec.storage.as_ref(),
            configuration: spec.configuration.as_ref(),
            config_secret: names::config_secret(&r.name, &r.uid),
            template: spec.pod_template.as_ref(),
        }],
        Some(t) => {
            let agg_ref = t.aggregator.as_ref();
            let leaf_ref = t.leaf.as_ref();
            vec![
                Role {
                    set: n::aggregator_petset(&r.name, suffix(agg_ref)),
                    role: Some(names::ROLE_AGGREGATOR),
                    replicas: spec
                        .aggregator_replicas()
                        .unwrap_or(SinglestoreNode::DEFAULT_AGGREGATOR_REPLICAS),
                    image: &version.db.image,
                    coordinator: true,
                    storage: agg_ref
                        .and_then(|n| n.storage.as_ref())
                        .or(spec.storage.as_ref()),
                    configuration: agg_ref
                        .and_then(|n| n.configuration.as_ref())
                        .or(spec.configuration.as_ref()),
                    config_secret: names::singlestore_config_secret(
                        &r.name,
                        Some(suffix(agg_ref).unwrap_or(n::PETSET_TYPE_AGGREGATOR)),
                        &r.uid,
                    ),
                    template: agg_ref.and_then(|n| n.pod_template.as_ref()),
                },
                Role {
                    set: n::leaf_petset(&r.name, suffix(leaf_ref)),
                    role: Some(names::ROLE_LEAF),
                    replicas: spec
                        .leaf_replicas()
                        .unwrap_or(SinglestoreNode::DEFAULT_LEAF_REPLICAS),
                    image: &version.db.image,
                    coordinator: true,
                    storage: leaf_ref
                        .and_then(|n| n.storage.as_ref())
                        .or(spec.storage.as_ref()),
                    configuration: leaf_ref
                        .and_then(|n| n.configuration.as_ref())
                        .or(spec.configuration.as_ref()),
                    config_secret: names::singlestore_config_secret(
                        &r.name,
                        Some(suffix(leaf_ref).unwrap_or(n::PETSET_TYPE_LEAF)),
                        &r.uid,
                    ),
                    template: leaf_ref.and_then(|n| n.pod_template.as_ref()),
                },
            ]
        }
    };
    let primary_set = roles[0].set.clone();
    let agent_sets: Vec<String> = roles
        .iter()
        .filter(|role| role.coordinator)
        .map(|role| role.set.clone())
        .collect();
    let set_of = |kind: &str| {
        roles
            .iter()
            .find(|role| role.role == Some(kind))
            .map(|role| role.set.clone())
            .unwrap_or_default()
    };
    let (aggregator_set, leaf_set) = (set_of(names::ROLE_AGGREGATOR), set_of(names::ROLE_LEAF));
    let master_host = format!(
        "{}.{}.{}.svc",
        names::pod_name(&primary_set, 0),
        names::governing_service(&r.name),
        r.namespace
    );

    // Services.
    let templates = spec.service_templates.as_ref();
    desired.services.push(service::service(
        &r,
        &names::primary_service(&r.name),
        &BTreeMap::new(),
        service::cluster_ip(
            statefulset::set_selector(&r, &primary_set),
            vec![
                service::port(n::DB_PORT_NAME, n::DB_PORT),
                service::port(n::STUDIO_PORT_NAME, n::STUDIO_PORT),
            ],
        ),
        service::service_template(templates, ServiceAlias::Primary),
    )?);
    desired.services.push(service::governing_service(
        &r,
        vec![service::port(n::DB_PORT_NAME, n::DB_PORT)],
    )?);
    if spec.monitor.is_some() {
        let port = spec
            .monitor
            .as_ref()
            .and_then(|m| m.pointer("/prometheus/exporter/port"))
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(n::EXPORTER_PORT);
        desired.services.push(service::stats_service(
            &r,
            port,
            service::service_template(templates, ServiceAlias::Stats),
        )?);
    }

    let run_as = version
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .unwrap_or(999);
    let run_as_group = version
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_group)
        .unwrap_or(run_as);
    let ephemeral = spec.storage_type() == StorageType::Ephemeral;
    for role in roles {
        let selector = statefulset::set_selector(&r, &role.set);
        let mut config = secret::render_configuration(role.configuration, input.config_sources)?;
        if tls_secret.is_some()
            && let Some((key, content)) = tls_config(config.as_ref())
        {
            config
                .get_or_insert_with(BTreeMap::new)
                .insert(key, content);
        }
        if let Some(data) = &config {
            desired
                .secrets
                .push(secret::config_secret(&r, &role.config_secret, data));
        }
        let mut volumes = vec![pod::empty_dir(INIT_SCRIPTS_VOLUME)];
        if ephemeral {
            volumes.push(pod::empty_dir(names::DATA_VOLUME));
        }
        let mut mounts = vec![
            pod::mount(names::DATA_VOLUME, n::DATA_PATH),
            pod::mount(INIT_SCRIPTS_VOLUME, n::SCRIPTS_PATH),
        ];
        if config.is_some() {
            volumes.push(pod::secret_volume(CONFIG_VOLUME, &role.config_secret, None));
            mounts.push(pod::read_only_mount(CONFIG_VOLUME, n::CONFIG_PATH));
        }
        if let Some(secret) = &tls_secret {
            volumes.push(pod::secret_volume(TLS_VOLUME, secret, Some(0o440)));
            mounts.push(pod::read_only_mount(TLS_VOLUME, n::TLS_PATH));
        }
        let mut db_env = vec![
            secret_env("ROOT_USERNAME", &auth, "username"),
            secret_env("ROOT_PASSWORD", &auth, "password"),
            secret_env("LICENSE_KEY", &license, LICENSE_KEY),
        ];
        if let Some(kind) = role.role {
            db_env.push(env("NODE_TYPE", kind));
            db_env.push(env("MASTER_AGGREGATOR", &master_host));
        }
        // Readiness of a cluster node is the agent's call; cluster-in-a-box is ready once it
        // accepts connections.
        let readiness = if role.coordinator {
            pod::agent_readiness_probe(n::COORDINATOR_CLIENT_PORT)
        } else {
            pod::database_readiness_probe(n::DB_PORT_NAME)
        };
        let mut containers = vec![Container {
            name: n::CONTAINER.into(),
            image: Some(role.image.to_owned()),
            env: Some(db_env),
            ports: Some(vec![
                container_port(n::DB_PORT_NAME, n::DB_PORT),
                container_port(n::STUDIO_PORT_NAME, n::STUDIO_PORT),
            ]),
            startup_probe: Some(pod::database_startup_probe(n::DB_PORT_NAME)),
            readiness_probe: Some(readiness),
            resources: Some(resources("600m", "2Gi", "2Gi")),
            security_context: Some(container_security_context(run_as, run_as_group, false)),
            volume_mounts: Some(mounts),
            ..Container::default()
        }];
        if role.coordinator {
            containers.push(Container {
                name: n::COORDINATOR_CONTAINER.into(),
                image: Some(version.coordinator.image.clone()),
                args: Some(vec![
                    "run".into(),
                    format!("--db-name={}", r.name),
                    format!("--node-type={}", role.role.unwrap_or_default()),
                ]),
                env: Some(vec![
                    field_env("POD_NAME", "metadata.name"),
                    field_env("POD_NAMESPACE", "metadata.namespace"),
                    field_env("POD_IP", "status.podIP"),
                    env("GOVERNING_SERVICE", &names::governing_service(&r.name)),
                    secret_env("ROOT_USERNAME", &auth, "username"),
                    secret_env("ROOT_PASSWORD", &auth, "password"),
                    // The master aggregator's agent sets it before it bootstraps the cluster.
                    secret_env("LICENSE_KEY", &license, LICENSE_KEY),
                    // Where the agents find their peers (`<set>-<ordinal>`).
                    env("AGGREGATOR_SET", &aggregator_set),
                    env("LEAF_SET", &leaf_set),
                ]),
                // The agent's HTTP server (`/healthz`, `/ready`).
                ports: Some(vec![container_port(
                    n::COORDINATOR_CLIENT_PORT_NAME,
                    n::COORDINATOR_CLIENT_PORT,
                )]),
                liveness_probe: Some(pod::agent_liveness_probe(n::COORDINATOR_CLIENT_PORT_NAME)),
                resources: Some(resources("200m", "256Mi", "256Mi")),
                security_context: Some(container_security_context(run_as, run_as_group, false)),
                volume_mounts: Some(vec![pod::mount(names::DATA_VOLUME, n::DATA_PATH)]),
                ..Container::default()
            });
        }
        let mut pod_spec = PodSpec {
            init_containers: version.init_container.as_ref().map(|init| {
                vec![pod::init_container(
                    n::INIT_CONTAINER,
                    &init.image,
                    (run_as, run_as_group),
                    (INIT_SCRIPTS_VOLUME, n::SCRIPTS_PATH),
                )]
            }),
            containers,
            volumes: Some(volumes),
            security_context: Some(pod::fs_group(run_as)),
            topology_spread_constraints: Some(pod::spread_constraints(&selector)),
            automount_service_account_token: rbac::automount_token(role.template),
            ..PodSpec::default()
        };
        if role.coordinator {
            rbac::agent_pod_identity(&mut pod_spec, &r, n::COORDINATOR_CONTAINER);
        }
        let pod_spec = merge::merge_pod_spec(pod_spec, role.template)?;
        let (mut pod_labels, pod_annotations) = pod::template_meta(role.template);
        if let Some(kind) = role.role {
            pod_labels
                .entry("kubedb.com/node-type".into())
                .or_insert_with(|| kind.to_owned());
        }
        let controller = role.template.and_then(|t| t.controller.as_ref());
        let claim = match (role.storage, ephemeral) {
            (Some(storage), false) => Some(pod::claim_template(&r, storage.clone())),
            _ => None,
        };
        desired.stateful_sets.push(statefulset::stateful_set(
            &r,
            StatefulSetParts {
                name: &role.set,
                replicas: role.replicas,
                selector: selector.clone(),
                pod_labels,
                pod_annotations,
                pod_spec,
                claim,
                controller_labels: controller
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default(),
                controller_annotations: controller
                    .and_then(|c| c.annotations.clone())
                    .unwrap_or_default(),
            },
        ));
        desired.pdbs.push(pdb::pdb(
            &r,
            &role.set,
            &selector,
            Budget::MaxUnavailable(1),
        ));
    }
    // The agents read the root credentials and the license (the master aggregator's agent
    // applies it when it bootstraps the cluster).
    let agent_sets: Vec<&str> = agent_sets.iter().map(String::as_str).collect();
    rbac::add_agent_rbac(
        &mut desired,
        &r,
        &agent_sets,
        vec![n::master_lease(&r.name)],
        vec![auth, license],
    );
    Ok(desired)
}

#[cfg(test)]
mod tests;
