//! MSSQLServer children: standalone (one StatefulSet) and AvailabilityGroup (StatefulSet `<db>`
//! with the `mssql-coordinator` sidecar, plus `<db>-arbiter` when the replica count is even, and
//! the ServiceAccount, Role and RoleBinding of the agents that run in those two containers).

use std::collections::BTreeMap;

use api::catalog::MSSQLServerVersion;
use api::common::{DatabaseStatus, DeletionPolicy, HealthCheckSpec, ServiceAlias, StorageType};
use api::mssql::{MSSQLServer, MSSQLServerMode};
use api::names::{self, mssql as n};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaimSpec, PodSpec, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
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

/// Volume of the init scripts shared by the init container and the database container.
pub const INIT_SCRIPTS_VOLUME: &str = "init-scripts";
/// Volume of the rendered configuration.
pub const CONFIG_VOLUME: &str = "config";
/// Volume of the server certificate (`/var/opt/mssql/certs`).
pub const CERTS_VOLUME: &str = "certs";
/// Volume of the client certificate (`/var/opt/mssql/tls`).
pub const TLS_VOLUME: &str = "tls";
/// Volume of the CA bundle (`/var/opt/mssql/security/ca-certificates`).
pub const CA_VOLUME: &str = "ca-certificates";
/// Volume of the AG endpoint certificate (`/var/opt/mssql/endpoint-cert`).
pub const ENDPOINT_CERT_VOLUME: &str = "endpoint-cert";
/// Container of the arbiter StatefulSet (a voting-only coordinator).
pub const ARBITER_CONTAINER: &str = "mssql-arbiter";
/// User name stored in the DBM login secret.
pub const DBM_LOGIN_USER: &str = "dbm_login";

/// Reserved volume names.
pub const RESERVED_VOLUMES: [&str; 8] = [
    names::DATA_VOLUME,
    INIT_SCRIPTS_VOLUME,
    CONFIG_VOLUME,
    CERTS_VOLUME,
    TLS_VOLUME,
    CA_VOLUME,
    ENDPOINT_CERT_VOLUME,
    rbac::API_ACCESS_VOLUME,
];
/// Reserved mount paths.
pub const RESERVED_PATHS: [&str; 8] = [
    n::DATA_PATH,
    n::CONFIG_PATH,
    n::SCRIPTS_PATH,
    n::ENDPOINT_CERT_PATH,
    n::CERTS_PATH,
    n::TLS_PATH,
    n::CA_CERTS_PATH,
    n::SSL_CERTS_PATH,
];

impl Database for MSSQLServer {
    type Version = MSSQLServerVersion;
    const KIND: DbKind = DbKind::MSSQLServer;

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
        n::SA_USER
    }
    fn required_user_secrets(&self) -> Vec<(String, &'static str)> {
        Vec::new()
    }
    fn config_source_secrets(&self) -> Vec<String> {
        configuration(self)
            .and_then(|c| c.secret_name)
            .into_iter()
            .collect()
    }
    fn sql_endpoint(&self) -> (String, u16) {
        let name = self.metadata.name.clone().unwrap_or_default();
        (names::primary_service(&name), n::DB_PORT as u16)
    }
    fn primary_sets(&self) -> Vec<String> {
        vec![n::petset(&self.metadata.name.clone().unwrap_or_default())]
    }
    fn availability_group(&self) -> Option<String> {
        self.spec
            .is_availability_group()
            .then(|| n::availability_group(&self.metadata.name.clone().unwrap_or_default()))
    }
    fn sql_engine(&self) -> crate::health::Engine {
        crate::health::Engine::SqlServer
    }
    fn plan(&self, input: &PlanInput<'_, MSSQLServerVersion>) -> Result<Desired, PlanError> {
        plan(self, input)
    }
    fn use_agent_image(version: &mut MSSQLServerVersion, image: &str) {
        version.spec.coordinator.image = image.to_owned();
    }
}

/// `spec.configuration`, with the deprecated `spec.configSecret` folded in.
fn configuration(db: &MSSQLServer) -> Option<api::common::ConfigurationSpec> {
    let mut config = db.spec.configuration.clone();
    if let Some(legacy) = &db.spec.config_secret {
        let c = config.get_or_insert_with(Default::default);
        if c.secret_name.is_none() {
            c.secret_name = Some(legacy.name.clone());
        }
    }
    config
}

/// Checks what KubeDB's validating webhook checks and what this provisioner supports.
pub fn validate(db: &MSSQLServer) -> Result<(), PlanError> {
    let spec = &db.spec;
    if let Some(topology) = &spec.topology
        && topology.mode == MSSQLServerMode::DistributedAG
    {
        return Err(PlanError {
            reason: "UnsupportedTopology",
            message: "topology.mode DistributedAG is not supported by this provisioner yet; use AvailabilityGroup".into(),
        });
    }
    if spec.is_standalone() && spec.replicas() != 1 {
        return Err(PlanError::invalid(
            "number of replicas for standalone must be one",
        ));
    }
    if spec.replicas() < 1 {
        return Err(PlanError::invalid(
            "spec.replicas must be greater than zero",
        ));
    }
    if spec.storage_type() == StorageType::Durable && spec.storage.is_none() {
        return Err(PlanError::invalid(
            "spec.storage is required when spec.storageType is Durable",
        ));
    }
    let template = spec.pod_template.as_ref();
    let container = template.and_then(|t| t.container(n::CONTAINER));
    let env = container.and_then(|c| c.env.as_ref());
    if !env.is_some_and(|e| e.iter().any(|v| v.name == n::ENV_PID)) {
        return Err(PlanError::invalid(format!(
            "spec.podTemplate.spec.containers[{}].env must set {} (for example Developer, Evaluation or Enterprise)",
            n::CONTAINER,
            n::ENV_PID
        )));
    }
    check_eula(
        env.into_iter()
            .flatten()
            .find(|v| v.name == n::ENV_ACCEPT_EULA),
    )?;
    if let Some(reserved) = env
        .into_iter()
        .flatten()
        .find(|v| n::RESERVED_ENV.contains(&v.name.as_str()))
    {
        return Err(PlanError::invalid(format!(
            "spec.podTemplate.spec.containers[{}].env may not set {}: the provisioner sets it",
            n::CONTAINER,
            reserved.name
        )));
    }
    pod::check_reserved_volumes(template, &RESERVED_VOLUMES, &RESERVED_PATHS)?;
    if let Some(databases) = spec
        .topology
        .as_ref()
        .and_then(|t| t.availability_group.as_ref())
        .and_then(|ag| ag.databases.as_deref())
    {
        check_ag_databases(databases)?;
    }
    if spec.tls.tls.issuer_ref.is_none() {
        return Err(PlanError::invalid("spec.tls.issuerRef is required"));
    }
    Ok(())
}

/// The longest database name the agent can create: `CREATE DATABASE` without a log file name
/// derives the log's logical and file names by appending a suffix, which limits the name to 123
/// characters (Microsoft, "CREATE DATABASE (Transact-SQL)", argument `database_name`).
pub const MAX_AG_DATABASE_NAME: usize = 123;
/// SQL Server's system databases: none of them can join an availability group (Microsoft,
/// "Prerequisites, restrictions, and recommendations for Always On availability groups",
/// availability databases must be user databases).
const SYSTEM_DATABASES: [&str; 4] = ["master", "model", "msdb", "tempdb"];

/// `spec.topology.availabilityGroup.databases` names databases the agent can create and add to
/// the availability group: 1 to [`MAX_AG_DATABASE_NAME`] characters, no control characters, no
/// leading or trailing blanks (SQL Server ignores trailing blanks in comparisons), not a
/// system database, and no name twice (SQL Server's default collation compares names without
/// case, so `Sales` and `sales` are one database). Any other character is fine: the agent quotes
/// every name.
pub fn check_ag_databases(databases: &[String]) -> Result<(), PlanError> {
    const FIELD: &str = "spec.topology.availabilityGroup.databases";
    let mut seen: Vec<String> = Vec::new();
    for (i, name) in databases.iter().enumerate() {
        let invalid = |why: String| PlanError::invalid(format!("{FIELD}[{i}] {name:?} {why}"));
        let length = name.chars().count();
        if length == 0 {
            return Err(PlanError::invalid(format!(
                "{FIELD}[{i}] is empty: name the database"
            )));
        }
        if length > MAX_AG_DATABASE_NAME {
            return Err(invalid(format!(
                "has {length} characters; SQL Server database names created by the agent may have at most {MAX_AG_DATABASE_NAME}"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("contains a control character".into()));
        }
        if name.trim() != name {
            return Err(invalid(
                "starts or ends with a blank; SQL Server would not tell it from the trimmed name"
                    .into(),
            ));
        }
        let folded = name.to_lowercase();
        if SYSTEM_DATABASES.contains(&folded.as_str()) {
            return Err(invalid(
                "is a SQL Server system database, which cannot join an availability group".into(),
            ));
        }
        if let Some(j) = seen.iter().position(|s| *s == folded) {
            return Err(invalid(format!(
                "repeats {FIELD}[{j}] {:?} (database names do not differ by case in SQL Server's default collation)",
                databases[j]
            )));
        }
        seen.push(folded);
    }
    Ok(())
}

/// The `[network]` settings that make SQL Server offer TLS with the server certificate mounted
/// at `/var/opt/mssql/certs` (Microsoft, "Configure SQL Server on Linux with the mssql-conf
/// tool": `network.tlscert`, `network.tlskey`, `network.tlsprotocols`,
/// `network.forceencryption`). Encryption is offered, not forced: the in-pod agent and the
/// provisioner's SQL health check log in without TLS (the workspace's tiberius has no TLS
/// backend on ring), and `forceencryption = 1` would lock both out.
pub const TLS_NETWORK: [(&str, &str); 4] = [
    ("tlscert", "/var/opt/mssql/certs/tls.crt"),
    ("tlskey", "/var/opt/mssql/certs/tls.key"),
    ("tlsprotocols", "1.2"),
    ("forceencryption", "0"),
];

/// `user` (the user's `mssql.conf`, if any) with the [`TLS_NETWORK`] settings it does not set
/// itself: added to its `[network]` section, or as a new one (pure). The user's values win.
pub fn with_tls_network(user: Option<&str>) -> String {
    let mut lines: Vec<String> = user
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let section = |line: &str| {
        let t = line.trim();
        (t.starts_with('[') && t.ends_with(']'))
            .then(|| t[1..t.len() - 1].trim().to_ascii_lowercase())
    };
    let header = lines
        .iter()
        .position(|l| section(l).as_deref() == Some("network"));
    // The network section's lines: after its header, up to the next header.
    let body = header.map(|h| {
        let end = lines[h + 1..]
            .iter()
            .position(|l| section(l).is_some())
            .map_or(lines.len(), |i| h + 1 + i);
        h + 1..end
    });
    let set_by_user = |key: &str| {
        body.clone().is_some_and(|range| {
            lines[range].iter().any(|l| {
                l.split_once('=')
                    .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            })
        })
    };
    let missing: Vec<String> = TLS_NETWORK
        .iter()
        .filter(|(k, _)| !set_by_user(k))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    match body {
        Some(range) => {
            // At the end of the section, before the blank lines that separate it.
            let mut at = range.end;
            while at > range.start && lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            lines.splice(at..at, missing);
        }
        None => {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push("[network]".to_owned());
            lines.extend(missing);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Values of `ACCEPT_EULA` that say no (compared case-insensitively).
const EULA_DECLINED: [&str; 5] = ["", "n", "no", "false", "0"];

/// `ACCEPT_EULA` must be in the `mssql` container's env: the SQL Server image does not start
/// without it ("Set the ACCEPT_EULA variable to any value to confirm your acceptance", Microsoft's
/// environment-variable reference). KubeDB's webhook does not check it, but every KubeDB example
/// sets `ACCEPT_EULA=Y`; the provisioner does not accept Microsoft's licence on the user's behalf,
/// and a clear InvalidSpec beats a pod that restarts forever with the reason only in its log. A
/// literal value that declines (empty, N, No, false, 0) is refused too; a value read from a
/// secret or config map is taken as given.
pub fn check_eula(var: Option<&EnvVar>) -> Result<(), PlanError> {
    let declined = |value: &str| EULA_DECLINED.contains(&value.trim().to_lowercase().as_str());
    match var {
        None => Err(PlanError::invalid(format!(
            "spec.podTemplate.spec.containers[{}].env must set {}=Y: the SQL Server image starts only when the SQL Server EULA is accepted (https://go.microsoft.com/fwlink/?LinkId=746388), and the provisioner does not accept it for you",
            n::CONTAINER,
            n::ENV_ACCEPT_EULA
        ))),
        Some(var) if var.value_from.is_none() && declined(var.value.as_deref().unwrap_or("")) => {
            Err(PlanError::invalid(format!(
                "spec.podTemplate.spec.containers[{}].env: {}={:?} declines the SQL Server EULA, and the SQL Server image does not start without accepting it; set it to Y",
                n::CONTAINER,
                n::ENV_ACCEPT_EULA,
                var.value.as_deref().unwrap_or("")
            )))
        }
        Some(_) => Ok(()),
    }
}

/// PDB of the AG members: a majority of the votes (members plus the arbiter) stays available.
/// Standalone databases and the arbiter allow one disruption.
pub fn member_budget(replicas: i32, arbiter: bool) -> Budget {
    if replicas <= 1 {
        return Budget::MaxUnavailable(1);
    }
    let votes = replicas + i32::from(arbiter);
    let majority = votes / 2 + 1;
    Budget::MinAvailable(majority - i32::from(arbiter))
}

/// Every child of an MSSQLServer.
pub fn plan(
    db: &MSSQLServer,
    input: &PlanInput<'_, MSSQLServerVersion>,
) -> Result<Desired, PlanError> {
    validate(db)?;
    let r = DbRef::of(db);
    let spec = &db.spec;
    let version = &input.version.spec;
    let ag = spec.is_availability_group();
    let run_as = version
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .unwrap_or(10001);
    let auth = db.auth_secret_name();
    let mut desired = Desired::default();

    // Secrets.
    desired
        .generated_secrets
        .push(secret::basic_auth_secret(&r, &auth, n::SA_USER));
    let ag_spec = spec
        .topology
        .as_ref()
        .and_then(|t| t.availability_group.clone())
        .unwrap_or_default();
    let login = ag_spec
        .login_secret_name
        .clone()
        .unwrap_or_else(|| n::dbm_login_secret(&r.name));
    let master = ag_spec
        .master_key_secret_name
        .clone()
        .unwrap_or_else(|| n::master_key_secret(&r.name));
    if ag {
        desired
            .generated_secrets
            .push(secret::basic_auth_secret(&r, &login, DBM_LOGIN_USER));
        desired
            .generated_secrets
            .push(secret::random_secret(&r, &master, "password"));
    }
    let config_name = names::config_secret(&r.name, &r.uid);
    let mut config =
        secret::render_configuration(configuration(db).as_ref(), input.config_sources)?
            .unwrap_or_default();
    // SQL Server's own TLS, from the server certificate (spec.tls is required).
    let user_conf = config.remove(n::CONFIG_KEY);
    config.insert(
        n::CONFIG_KEY.to_owned(),
        with_tls_network(user_conf.as_deref()),
    );
    let config = Some(config);
    if let Some(data) = &config {
        desired
            .secrets
            .push(secret::config_secret(&r, &config_name, data));
    }

    // Certificates.
    let tls = &spec.tls.tls;
    let mut services = vec![names::primary_service(&r.name)];
    if ag {
        services.push(names::secondary_service(&r.name));
    }
    let dns = certificate::service_dns_names(&r, &services);
    let mut aliases = vec![
        CertAlias {
            alias: "server",
            common_name: r.name.clone(),
            dns_names: dns.clone(),
            ip_addresses: vec!["127.0.0.1".into()],
            pkcs12_password: None,
        },
        CertAlias {
            alias: "client",
            common_name: n::SA_USER.into(),
            dns_names: vec![],
            ip_addresses: vec![],
            pkcs12_password: None,
        },
    ];
    if ag {
        // The agent gives SQL Server the endpoint certificate as PKCS #12 (`CREATE CERTIFICATE
        // ... FROM FILE`), encrypted with the master-key password (docs/agent.md).
        aliases.push(CertAlias {
            alias: "endpoint",
            common_name: format!("{}-endpoint", r.name),
            dns_names: dns,
            ip_addresses: vec![],
            pkcs12_password: Some(certificate::SecretKeyRef {
                name: master.clone(),
                key: "password".into(),
            }),
        });
    }
    for alias in &aliases {
        desired
            .certificates
            .push(certificate::certificate(&r, tls, alias)?);
    }
    let server_cert = certificate::cert_secret_name(&r, tls, "server");
    let client_cert = certificate::cert_secret_name(&r, tls, "client");
    let endpoint_cert = certificate::cert_secret_name(&r, tls, "endpoint");

    // Services.
    let set = n::petset(&r.name);
    let set_selector = statefulset::set_selector(&r, &set);
    let role = |value: &str| {
        let mut s = r.selector();
        s.insert(names::LABEL_ROLE.to_owned(), value.to_owned());
        s
    };
    let primary_selector = if ag {
        role(names::ROLE_PRIMARY)
    } else {
        set_selector.clone()
    };
    let templates = spec.service_templates.as_ref();
    let db_port = || service::port(n::DB_PORT_NAME, n::DB_PORT);
    desired.services.push(service::service(
        &r,
        &names::primary_service(&r.name),
        &BTreeMap::new(),
        service::cluster_ip(primary_selector, vec![db_port()]),
        service::service_template(templates, ServiceAlias::Primary),
    )?);
    if ag {
        desired.services.push(service::service(
            &r,
            &names::secondary_service(&r.name),
            &BTreeMap::new(),
            service::cluster_ip(role(names::ROLE_SECONDARY), vec![db_port()]),
            service::service_template(templates, ServiceAlias::Secondary),
        )?);
    }
    let mut governing_ports = vec![db_port()];
    if ag {
        governing_ports.push(service::port(n::MIRRORING_PORT_NAME, n::MIRRORING_PORT));
        governing_ports.push(service::port(n::COORDINATOR_PORT_NAME, n::COORDINATOR_PORT));
        governing_ports.push(service::port(
            n::COORDINATOR_CLIENT_PORT_NAME,
            n::COORDINATOR_CLIENT_PORT,
        ));
    }
    desired
        .services
        .push(service::governing_service(&r, governing_ports)?);
    let monitored = spec.monitor.is_some();
    if monitored {
        desired.services.push(service::stats_service(
            &r,
            exporter_port(spec.monitor.as_ref()),
            service::service_template(templates, ServiceAlias::Stats),
        )?);
    }

    // StatefulSets.
    let ephemeral = spec.storage_type() == StorageType::Ephemeral;
    let mut volumes = vec![pod::empty_dir(INIT_SCRIPTS_VOLUME)];
    if ephemeral {
        volumes.push(pod::empty_dir(names::DATA_VOLUME));
    }
    let mut mounts = vec![
        pod::mount(names::DATA_VOLUME, n::DATA_PATH),
        pod::mount(INIT_SCRIPTS_VOLUME, n::SCRIPTS_PATH),
    ];
    if config.is_some() {
        volumes.push(pod::secret_volume(CONFIG_VOLUME, &config_name, None));
        mounts.push(VolumeMount {
            sub_path: Some(n::CONFIG_KEY.into()),
            ..pod::mount(CONFIG_VOLUME, n::CONFIG_PATH)
        });
    }
    volumes.push(pod::secret_volume(CERTS_VOLUME, &server_cert, Some(0o440)));
    mounts.push(pod::read_only_mount(CERTS_VOLUME, n::CERTS_PATH));
    volumes.push(pod::secret_volume(TLS_VOLUME, &client_cert, Some(0o440)));
    mounts.push(pod::read_only_mount(TLS_VOLUME, n::TLS_PATH));
    volumes.push(pod::secret_key_volume(CA_VOLUME, &server_cert, "ca.crt"));
    mounts.push(pod::read_only_mount(CA_VOLUME, n::CA_CERTS_PATH));
    if ag {
        volumes.push(pod::secret_volume(
            ENDPOINT_CERT_VOLUME,
            &endpoint_cert,
            Some(0o440),
        ));
        mounts.push(pod::read_only_mount(
            ENDPOINT_CERT_VOLUME,
            n::ENDPOINT_CERT_PATH,
        ));
    }

    let mut db_env = vec![
        secret_env(n::ENV_SA_USERNAME, &auth, "username"),
        secret_env(n::ENV_SA_PASSWORD, &auth, "password"),
    ];
    if ag {
        db_env.push(env(n::ENV_ENABLE_HADR, "1"));
    }
    let mut db_ports = vec![container_port(n::DB_PORT_NAME, n::DB_PORT)];
    if ag {
        db_ports.push(container_port(n::MIRRORING_PORT_NAME, n::MIRRORING_PORT));
    }
    // Readiness of an AG member is the agent's call (writable primary or synchronized
    // secondary); a standalone server is ready once it accepts connections.
    let readiness = if ag {
        pod::agent_readiness_probe(n::COORDINATOR_CLIENT_PORT)
    } else {
        pod::database_readiness_probe(n::DB_PORT_NAME)
    };
    let mut containers = vec![Container {
        name: n::CONTAINER.into(),
        image: Some(version.db.image.clone()),
        env: Some(db_env),
        ports: Some(db_ports),
        startup_probe: Some(pod::database_startup_probe(n::DB_PORT_NAME)),
        readiness_probe: Some(readiness),
        resources: Some(resources("1500m", "2Gi", "4Gi")),
        security_context: Some(container_security_context(run_as, run_as, true)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }];
    let coordinator_ports = vec![
        container_port(n::COORDINATOR_PORT_NAME, n::COORDINATOR_PORT),
        container_port(n::COORDINATOR_CLIENT_PORT_NAME, n::COORDINATOR_CLIENT_PORT),
    ];
    if ag {
        let le = ag_spec.leader_election();
        containers.push(Container {
            name: n::COORDINATOR_CONTAINER.into(),
            image: Some(version.coordinator.image.clone()),
            args: Some(vec![
                "run".into(),
                format!("--ag-name={}", n::availability_group(&r.name)),
                format!("--election-tick={}", le.election_tick()),
                format!("--heartbeat-tick={}", le.heartbeat_tick()),
                format!(
                    "--period={}",
                    le.period.clone().unwrap_or_else(|| "100ms".into())
                ),
            ]),
            env: Some({
                // The AG secrets by the names the spec gives them (the Role names the same).
                let mut env_vars = coordinator_env(&r, &auth);
                env_vars.push(env("MASTER_KEY_SECRET", &master));
                env_vars.push(env("DBM_LOGIN_SECRET", &login));
                // The AG's databases (a JSON list: names may hold any character) and the
                // secondaries' read access, as the spec gives them.
                env_vars.push(env(
                    "AG_DATABASES",
                    &serde_json::to_string(ag_spec.databases.as_deref().unwrap_or_default())
                        .unwrap_or_else(|_| "[]".into()),
                ));
                env_vars.push(env(
                    "SECONDARY_ACCESS_MODE",
                    ag_spec.secondary_access_mode().as_str(),
                ));
                env_vars
            }),
            ports: Some(coordinator_ports.clone()),
            liveness_probe: Some(pod::agent_liveness_probe(n::COORDINATOR_CLIENT_PORT_NAME)),
            resources: Some(resources("200m", "256Mi", "256Mi")),
            security_context: Some(container_security_context(run_as, run_as, false)),
            volume_mounts: Some(vec![
                pod::mount(names::DATA_VOLUME, n::DATA_PATH),
                pod::read_only_mount(ENDPOINT_CERT_VOLUME, n::ENDPOINT_CERT_PATH),
            ]),
            ..Container::default()
        });
    }
    if monitored {
        containers.push(Container {
            name: n::EXPORTER_CONTAINER.into(),
            image: Some(version.exporter.image.clone()),
            env: Some(vec![
                secret_env("SQL_USERNAME", &auth, "username"),
                secret_env("SQL_PASSWORD", &auth, "password"),
            ]),
            ports: Some(vec![container_port(
                "metrics",
                exporter_port(spec.monitor.as_ref()),
            )]),
            resources: Some(resources("100m", "128Mi", "256Mi")),
            security_context: Some(container_security_context(run_as, run_as, false)),
            ..Container::default()
        });
    }
    let template = spec.pod_template.as_ref();
    let mut pod_spec = PodSpec {
        init_containers: Some(vec![pod::init_container(
            n::INIT_CONTAINER,
            &version.init_container.image,
            (run_as, run_as),
            (INIT_SCRIPTS_VOLUME, n::SCRIPTS_PATH),
        )]),
        containers,
        volumes: Some(volumes),
        security_context: Some(pod::fs_group(run_as)),
        topology_spread_constraints: Some(pod::spread_constraints(&set_selector)),
        automount_service_account_token: rbac::automount_token(template),
        ..PodSpec::default()
    };
    if ag {
        rbac::agent_pod_identity(&mut pod_spec, &r, n::COORDINATOR_CONTAINER);
    }
    let pod_spec = merge::merge_pod_spec(pod_spec, template)?;
    let (pod_labels, pod_annotations) = pod::template_meta(template);
    let controller = template.and_then(|t| t.controller.as_ref());
    let claim = match (&spec.storage, ephemeral) {
        (Some(storage), false) => Some(pod::claim_template(&r, storage.clone())),
        _ => None,
    };
    desired.stateful_sets.push(statefulset::stateful_set(
        &r,
        StatefulSetParts {
            name: &set,
            replicas: spec.replicas(),
            selector: set_selector.clone(),
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
    let arbiter = spec.needs_arbiter();
    desired.pdbs.push(pdb::pdb(
        &r,
        &set,
        &set_selector,
        member_budget(spec.replicas(), arbiter),
    ));
    if arbiter {
        let arbiter_set = n::arbiter_petset(&r.name);
        let arbiter_selector = statefulset::set_selector(&r, &arbiter_set);
        let arbiter_spec = spec.arbiter.clone().unwrap_or_default();
        let mut arbiter_volumes = vec![];
        if ephemeral {
            arbiter_volumes.push(pod::empty_dir(names::DATA_VOLUME));
        }
        let mut arbiter_env = coordinator_env(&r, &auth);
        arbiter_env.push(env("ARBITER", "true"));
        let mut arbiter_pod = PodSpec {
            containers: vec![Container {
                name: ARBITER_CONTAINER.into(),
                image: Some(version.coordinator.image.clone()),
                args: Some(vec![
                    "arbiter".into(),
                    format!("--ag-name={}", n::availability_group(&r.name)),
                ]),
                env: Some(arbiter_env),
                ports: Some(coordinator_ports),
                resources: Some(
                    arbiter_spec
                        .resources
                        .clone()
                        .unwrap_or_else(|| resources("200m", "256Mi", "256Mi")),
                ),
                security_context: Some(container_security_context(run_as, run_as, false)),
                volume_mounts: Some(vec![pod::mount(names::DATA_VOLUME, n::DATA_PATH)]),
                ..Container::default()
            }],
            volumes: Some(arbiter_volumes),
            security_context: Some(pod::fs_group(run_as)),
            node_selector: arbiter_spec.node_selector.clone(),
            tolerations: arbiter_spec.tolerations.clone(),
            automount_service_account_token: Some(false),
            ..PodSpec::default()
        };
        // The arbiter runs the coordinator image too (the agent, with `--agent-image`), so it
        // runs as the agents' ServiceAccount with the same Role.
        rbac::agent_pod_identity(&mut arbiter_pod, &r, ARBITER_CONTAINER);
        let arbiter_claim = (!ephemeral).then(|| {
            pod::claim_template(
                &r,
                PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity("2Gi".into()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    storage_class_name: spec
                        .storage
                        .as_ref()
                        .and_then(|s| s.storage_class_name.clone()),
                    ..PersistentVolumeClaimSpec::default()
                },
            )
        });
        desired.stateful_sets.push(statefulset::stateful_set(
            &r,
            StatefulSetParts {
                name: &arbiter_set,
                replicas: 1,
                selector: arbiter_selector.clone(),
                pod_labels: BTreeMap::new(),
                pod_annotations: BTreeMap::new(),
                pod_spec: arbiter_pod,
                claim: arbiter_claim,
                controller_labels: BTreeMap::new(),
                controller_annotations: BTreeMap::new(),
            },
        ));
        desired.pdbs.push(pdb::pdb(
            &r,
            &arbiter_set,
            &arbiter_selector,
            Budget::MaxUnavailable(1),
        ));
    }
    if ag {
        let mut agent_sets = vec![set.as_str()];
        let arbiter_set = n::arbiter_petset(&r.name);
        if arbiter {
            agent_sets.push(&arbiter_set);
        }
        // The agents read the credentials, the AG login and master key and the endpoint
        // certificate (`crates/db-agent`).
        rbac::add_agent_rbac(
            &mut desired,
            &r,
            &agent_sets,
            vec![n::primary_lease(&r.name)],
            vec![auth, login, master, endpoint_cert],
        );
    }
    Ok(desired)
}

/// The env of the coordinator sidecar (and, with `ARBITER`, of the arbiter).
fn coordinator_env(r: &DbRef, auth: &str) -> Vec<EnvVar> {
    vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
        env("DB_NAME", &r.name),
        env("AG_NAME", &n::availability_group(&r.name)),
        env("GOVERNING_SERVICE", &names::governing_service(&r.name)),
        secret_env(n::ENV_SA_USERNAME, auth, "username"),
        secret_env(n::ENV_SA_PASSWORD, auth, "password"),
    ]
}

/// The exporter port: `monitor.prometheus.exporter.port` or 9399.
pub fn exporter_port(monitor: Option<&Value>) -> i32 {
    monitor
        .and_then(|m| m.pointer("/prometheus/exporter/port"))
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or(n::EXPORTER_PORT)
}

#[cfg(test)]
mod tests;
