//! Serves each simulated SQL Server over TDS on `<pod IP>:1433` while its pod runs.
//!
//! Which pods: those labelled `app.kubernetes.io/name=mssqlservers.kubedb.com` with a container
//! `mssql` that kube-sim simulates (no `--run-image` rule matches its image) next to an
//! `mssql-coordinator` container, that is the pods of an availability group. A standalone SQL
//! Server has no agent to talk to its server, so nothing is served for it.
//!
//! On each pass the controller opens a listener for every such pod that is Running, with an IP,
//! and not terminating; closes it (the instance is down) when the pod stops; and at most once a
//! second commits one simulated transaction on every primary ([`World::write_everywhere`]).
//! What the instance learns from its pod at each start: the `sa` password
//! (`MSSQL_SA_PASSWORD`, on an empty volume only), `MSSQL_ENABLE_HADR`, the files of its mounted
//! Secrets, and the faults [`STALLED_ANNOTATION`] and [`DOWN_ANNOTATION`] of its data PVC.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::sql::parse;
use super::{Answer, Instance, InstanceId, Value, World};
use crate::db::tds;
use crate::sim::pods::is_terminating;
use crate::sim::process::ProcessRuntime;

/// The port SQL Server listens on.
pub const PORT: u16 = 1433;
/// Annotation on a replica's data PVC (`"true"`): from the instance's next start on, its data
/// never catches up, so the replica stays NOT SYNCHRONIZING (a fault for tests; read at each
/// start, so that it can be set ahead of a planned restart).
pub const STALLED_ANNOTATION: &str = "kube-sim.io/mssql-stalled";
/// PVC annotation (`"true"`): the instance on that volume does not start (its port refuses
/// connections), as when its node or disk is lost for good (a fault for tests and `make bench`;
/// read at each start).
pub const DOWN_ANNOTATION: &str = "kube-sim.io/mssql-down";
/// How often a primary commits a simulated transaction.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(1);

const NAME_LABEL: &str = "app.kubernetes.io/name";
const MSSQL_NAME: &str = "mssqlservers.kubedb.com";
const CONTAINER: &str = "mssql";
const COORDINATOR: &str = "mssql-coordinator";
const DATA_VOLUME: &str = "data";

/// Shared handle on the simulated instances.
#[derive(Clone, Debug, Default)]
pub struct Instances(Arc<Mutex<World>>);

impl Instances {
    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Serving {
    pod_uid: String,
    volume: String,
    _connections: JoinSet<()>,
}

/// The controller.
pub struct Controller {
    pub client: Client,
    pub pods: Store<Pod>,
    pub claims: Store<PersistentVolumeClaim>,
    pub runtime: Arc<ProcessRuntime>,
    pub instances: Instances,
    serving: HashMap<InstanceId, Serving>,
    /// Volume identity of each instance's state.
    volumes: HashMap<InstanceId, String>,
    last_write: Option<Instant>,
}

impl Controller {
    pub fn new(
        client: Client,
        pods: Store<Pod>,
        claims: Store<PersistentVolumeClaim>,
        runtime: Arc<ProcessRuntime>,
        instances: Instances,
    ) -> Self {
        Self {
            client,
            pods,
            claims,
            runtime,
            instances,
            serving: HashMap::new(),
            volumes: HashMap::new(),
            last_write: None,
        }
    }

    fn is_ag_pod(&self, pod: &Pod) -> bool {
        let Some(spec) = &pod.spec else {
            return false;
        };
        let simulated_db = spec.containers.iter().any(|c| {
            c.name == CONTAINER
                && c.image
                    .as_deref()
                    .is_none_or(|i| self.runtime.rule_for(i).is_none())
        });
        pod.labels().get(NAME_LABEL).map(String::as_str) == Some(MSSQL_NAME)
            && simulated_db
            && spec.containers.iter().any(|c| c.name == COORDINATOR)
    }

    fn claim(&self, pod: &Pod) -> Option<Arc<PersistentVolumeClaim>> {
        let name = pod
            .spec
            .as_ref()?
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == DATA_VOLUME)?
            .persistent_volume_claim
            .as_ref()?
            .claim_name
            .clone();
        self.claims
            .get(&ObjectRef::new(&name).within(&pod.namespace().unwrap_or_default()))
    }

    /// The identity of the pod's data: its PVC's uid, else (ephemeral storage) the pod's uid.
    fn volume(&self, pod: &Pod) -> String {
        match self.claim(pod).and_then(|c| c.uid()) {
            Some(uid) => format!("pvc:{uid}"),
            None => format!("pod:{}", pod.uid().unwrap_or_default()),
        }
    }

    fn stalled(&self, pod: &Pod) -> bool {
        self.claim_flag(pod, STALLED_ANNOTATION)
    }

    fn down(&self, pod: &Pod) -> bool {
        self.claim_flag(pod, DOWN_ANNOTATION)
    }

    fn claim_flag(&self, pod: &Pod, annotation: &str) -> bool {
        self.claim(pod)
            .is_some_and(|c| c.annotations().get(annotation).map(String::as_str) == Some("true"))
    }

    /// Paths of the files the `mssql` container's Secret volumes hold.
    async fn files(&self, pod: &Pod) -> anyhow::Result<BTreeSet<String>> {
        let mut files = BTreeSet::new();
        let ns = pod.namespace().unwrap_or_default();
        let Some(spec) = &pod.spec else {
            return Ok(files);
        };
        let Some(container) = spec.containers.iter().find(|c| c.name == CONTAINER) else {
            return Ok(files);
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        for mount in container.volume_mounts.iter().flatten() {
            let Some(source) = spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
                .and_then(|v| v.secret.as_ref())
            else {
                continue;
            };
            let Some(name) = &source.secret_name else {
                continue;
            };
            let Some(secret) = secrets.get_opt(name).await? else {
                continue;
            };
            let keys: Vec<String> = secret.data.unwrap_or_default().into_keys().collect();
            let dir = mount.mount_path.trim_end_matches('/');
            match &source.items {
                Some(items) => {
                    for item in items.iter().filter(|i| keys.contains(&i.key)) {
                        files.insert(format!("{dir}/{}", item.path));
                    }
                }
                None => {
                    for key in keys {
                        files.insert(format!("{dir}/{key}"));
                    }
                }
            }
        }
        Ok(files)
    }

    async fn start(&mut self, id: &InstanceId, pod: &Pod, ip: Ipv4Addr) -> anyhow::Result<()> {
        if self.down(pod) {
            return Ok(());
        }
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == CONTAINER))
            .cloned()
            .unwrap_or_default();
        let env = self.runtime.env(pod, &container, ip).await?;
        let files = self.files(pod).await?;
        let volume = self.volume(pod);
        let listener = TcpListener::bind(SocketAddr::from((ip, PORT))).await?;
        let hadr = env.get("MSSQL_ENABLE_HADR").map(String::as_str) == Some("1");
        {
            let mut world = self.instances.world();
            let same_volume = self.volumes.get(id) == Some(&volume);
            match world.instances.get_mut(id) {
                Some(instance) if same_volume => instance.restart(hadr),
                _ => {
                    let password = env.get("MSSQL_SA_PASSWORD").cloned().unwrap_or_default();
                    world
                        .instances
                        .insert(id.clone(), Instance::new(&pod.name_any(), &password, hadr));
                }
            }
            if let Some(instance) = world.instances.get_mut(id) {
                instance.files = files;
                instance.stalled = self.stalled(pod);
            }
            world.settle(&id.namespace);
        }
        self.volumes.insert(id.clone(), volume.clone());
        let mut connections = JoinSet::new();
        let instances = self.instances.clone();
        let accept_id = id.clone();
        connections.spawn(async move {
            let mut handlers = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                handlers.spawn(connection(sock, instances.clone(), accept_id.clone()));
                while handlers.try_join_next().is_some() {}
            }
        });
        tracing::debug!(pod = %id.pod, namespace = %id.namespace, %ip, "simulated SQL Server up");
        self.serving.insert(
            id.clone(),
            Serving {
                pod_uid: pod.uid().unwrap_or_default(),
                volume,
                _connections: connections,
            },
        );
        Ok(())
    }

    fn stop(&mut self, id: &InstanceId) {
        if self.serving.remove(id).is_some() {
            let mut world = self.instances.world();
            if let Some(instance) = world.instances.get_mut(id) {
                instance.up = false;
            }
            world.settle(&id.namespace);
            tracing::debug!(pod = %id.pod, namespace = %id.namespace, "simulated SQL Server down");
        }
    }
}

fn running_ip(pod: &Pod) -> Option<Ipv4Addr> {
    if is_terminating(pod) {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let running = status
        .container_statuses
        .iter()
        .flatten()
        .any(|c| c.name == CONTAINER && c.state.as_ref().is_some_and(|s| s.running.is_some()));
    running.then_some(())?;
    status.pod_ip.as_deref()?.parse().ok()
}

impl crate::sim::informers::Pass for Controller {
    async fn pass(&mut self) -> anyhow::Result<Option<Duration>> {
        let mut seen = BTreeSet::new();
        let mut first_error = None;
        for pod in self.pods.state() {
            if !self.is_ag_pod(&pod) {
                continue;
            }
            let id = InstanceId {
                namespace: pod.namespace().unwrap_or_default(),
                pod: pod.name_any(),
            };
            seen.insert(id.clone());
            let uid = pod.uid().unwrap_or_default();
            let ip = running_ip(&pod);
            let volume = self.volume(&pod);
            let current = self
                .serving
                .get(&id)
                .is_some_and(|s| s.pod_uid == uid && s.volume == volume);
            if !current || ip.is_none() {
                self.stop(&id);
            }
            if let (Some(ip), false) = (ip, current)
                && let Err(err) = self.start(&id, &pod, ip).await
            {
                tracing::debug!(pod = %id.pod, error = %err, "simulated SQL Server not started yet");
                first_error.get_or_insert(err);
            }
        }
        let gone: Vec<InstanceId> = self
            .serving
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop(&id);
        }
        // Forget the state of instances whose pod and volume are both gone.
        let claims: BTreeSet<String> = self
            .claims
            .state()
            .iter()
            .filter_map(|c| c.uid().map(|u| format!("pvc:{u}")))
            .collect();
        let forget: Vec<InstanceId> = self
            .volumes
            .iter()
            .filter(|(id, v)| !seen.contains(*id) && !claims.contains(*v))
            .map(|(id, _)| id.clone())
            .collect();
        if !forget.is_empty() {
            let mut world = self.instances.world();
            for id in forget {
                world.instances.remove(&id);
                self.volumes.remove(&id);
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        if self.serving.is_empty() {
            return Ok(None);
        }
        let now = Instant::now();
        let due = self.last_write.map_or(now, |at| at + WRITE_INTERVAL);
        if now >= due {
            self.instances.world().write_everywhere();
            self.last_write = Some(now);
            return Ok(Some(WRITE_INTERVAL));
        }
        Ok(Some(due - now))
    }
}

/// One client connection: PRELOGIN, LOGIN7 (as `sa` with the instance's password), then SQL
/// batches, each one statement.
async fn connection(mut sock: TcpStream, instances: Instances, id: InstanceId) {
    let Ok((tds::PRELOGIN, _)) = tds::read_message(&mut sock).await else {
        return;
    };
    if tds::write_message(
        &mut sock,
        tds::TABULAR_RESULT,
        &tds::prelogin_response(tds::ENCRYPT_NOT_SUP),
    )
    .await
    .is_err()
    {
        return;
    }
    let Ok((tds::LOGIN7, login)) = tds::read_message(&mut sock).await else {
        return;
    };
    let (user, password) = tds::login_credentials(&login).unwrap_or_default();
    let accepted = instances
        .world()
        .instances
        .get(&id)
        .is_some_and(|i| i.up && i.login_ok(&user, &password));
    if !accepted {
        let mut reply = tds::error_token(18456, 14, &format!("Login failed for user '{user}'."));
        reply.extend(tds::done(true, None));
        let _ = tds::write_message(&mut sock, tds::TABULAR_RESULT, &reply).await;
        return;
    }
    if tds::write_message(&mut sock, tds::TABULAR_RESULT, &tds::login_ack())
        .await
        .is_err()
    {
        return;
    }
    while let Ok((kind, payload)) = tds::read_message(&mut sock).await {
        if kind != tds::SQL_BATCH {
            return;
        }
        let text = tds::batch_text(&payload);
        let reply = match parse(&text) {
            Err(message) => {
                let mut r = tds::error_token(102, 15, &message);
                r.extend(tds::done(true, None));
                r
            }
            Ok(statement) => {
                let result = instances.world().execute(&id, statement);
                match result {
                    Ok(Answer::Done) => tds::done(false, None),
                    Ok(Answer::Rows(columns, rows)) => encode(&columns, &rows),
                    Err(e) => {
                        let mut r = tds::error_token(e.code, e.class, &e.message);
                        r.extend(tds::done(true, None));
                        r
                    }
                }
            }
        };
        if tds::write_message(&mut sock, tds::TABULAR_RESULT, &reply)
            .await
            .is_err()
        {
            return;
        }
    }
}

fn column_type(name: &str) -> tds::Col {
    match name {
        "server_name" | "database_name" | "replica_server_name" => tds::Col::Text,
        "sequence_number" | "lsn_high" | "lsn_low" => tds::Col::BigInt,
        _ => tds::Col::Int,
    }
}

fn encode(columns: &[String], rows: &[Vec<Value>]) -> Vec<u8> {
    let cols: Vec<(&str, tds::Col)> = columns
        .iter()
        .map(|c| (c.as_str(), column_type(c)))
        .collect();
    let cells: Vec<Vec<tds::Cell<'_>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Null => tds::Cell::Null,
                    Value::Int(i) | Value::BigInt(i) => tds::Cell::Int(*i),
                    Value::Text(s) => tds::Cell::Text(s),
                })
                .collect()
        })
        .collect();
    tds::result_set(&cols, &cells)
}
