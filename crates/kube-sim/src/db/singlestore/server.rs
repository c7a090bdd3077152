//! Serves each simulated SingleStore node over the MySQL protocol on `<pod IP>:3306` while its pod
//! runs, and runs the settle pass.
//!
//! Which pods: those labelled `app.kubernetes.io/name=singlestores.kubedb.com` and
//! `kubedb.com/node-type=aggregator|leaf`, with a container `singlestore` that kube-sim simulates
//! (no `--run-image` rule matches its image) next to a `singlestore-coordinator` container: the
//! pods of a clustered Singlestore. A standalone (cluster-in-a-box) pod has no agent to talk to
//! its server, so no node is simulated for it.
//!
//! On each pass the controller first runs the settle pass ([`World::settle`]) when
//! [`SETTLE_INTERVAL`] has gone by since the last one, then opens a listener for every such pod
//! that is Running, with an IP, not terminating and with its `singlestore` container running, and
//! closes it (the node is down) when the pod stops. It asks for another pass while the settle pass
//! has work ([`World::pending`]); statements that leave such work wake it. What a node learns from
//! its pod at each start: its kind, its governing service (the pod's `subdomain`), its version
//! (from the image), the root user and password (`ROOT_USERNAME`, `ROOT_PASSWORD`, on an empty
//! volume only), and the faults [`STALLED_ANNOTATION`] and [`DOWN_ANNOTATION`] of its data PVC.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::sql::parse;
use super::{Answer, ER_PARSE, Kind, Node, NodeId, PORT, Value, World, version_of};
use crate::db::mysql::{self, Column, Greeting, Reply, ServerError};
use crate::sim::pods::is_terminating;
use crate::sim::process::ProcessRuntime;

/// Annotation on a leaf's data PVC (`"true"`): from the node's next start on, its partitions stay
/// `recovering` (a fault for tests; read at each start, so that it can be set ahead of a planned
/// restart).
pub const STALLED_ANNOTATION: &str = "kube-sim.io/singlestore-stalled";
/// PVC annotation (`"true"`): the node on that volume does not start (its port refuses
/// connections), as when its host or disk is lost for good (a fault for tests; read at each
/// start).
pub const DOWN_ANNOTATION: &str = "kube-sim.io/singlestore-down";
/// How often, at most, the settle pass runs: children apply their master's position and restarted
/// leaves' partitions come online within this long.
pub const SETTLE_INTERVAL: Duration = Duration::from_millis(500);
/// The version string of the handshake (SingleStore reports a MySQL version; its own is
/// `@@memsql_version`).
pub const SERVER_VERSION: &str = "5.7.32";

const NAME_LABEL: &str = "app.kubernetes.io/name";
const SINGLESTORE_NAME: &str = "singlestores.kubedb.com";
const NODE_TYPE_LABEL: &str = "kubedb.com/node-type";
const CONTAINER: &str = "singlestore";
const COORDINATOR: &str = "singlestore-coordinator";
const DATA_VOLUME: &str = "data";

static CONNECTIONS: AtomicU32 = AtomicU32::new(0);

/// Shared handle on the simulated nodes.
#[derive(Clone, Debug, Default)]
pub struct Nodes(Arc<Mutex<World>>);

impl Nodes {
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
    pub nodes: Nodes,
    serving: HashMap<NodeId, Serving>,
    /// Volume identity of each node's state.
    volumes: HashMap<NodeId, String>,
    last_settle: Option<Instant>,
}

impl Controller {
    /// A controller that statements wake through `wake` (its own wake-up).
    pub fn new(
        client: Client,
        pods: Store<Pod>,
        claims: Store<PersistentVolumeClaim>,
        runtime: Arc<ProcessRuntime>,
        nodes: Nodes,
        wake: Arc<Notify>,
    ) -> Self {
        nodes.world().wake = Some(wake);
        Self {
            client,
            pods,
            claims,
            runtime,
            nodes,
            serving: HashMap::new(),
            volumes: HashMap::new(),
            last_settle: None,
        }
    }

    /// The node kind of a clustered Singlestore's pod, `None` for any other pod.
    fn node_kind(&self, pod: &Pod) -> Option<Kind> {
        let spec = pod.spec.as_ref()?;
        let simulated_db = spec.containers.iter().any(|c| {
            c.name == CONTAINER
                && c.image
                    .as_deref()
                    .is_none_or(|i| self.runtime.rule_for(i).is_none())
        });
        let labels = pod.labels();
        if labels.get(NAME_LABEL).map(String::as_str) != Some(SINGLESTORE_NAME)
            || !simulated_db
            || !spec.containers.iter().any(|c| c.name == COORDINATOR)
        {
            return None;
        }
        match labels.get(NODE_TYPE_LABEL).map(String::as_str) {
            Some("aggregator") => Some(Kind::Aggregator),
            Some("leaf") => Some(Kind::Leaf),
            _ => None,
        }
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

    fn claim_flag(&self, pod: &Pod, annotation: &str) -> bool {
        self.claim(pod)
            .is_some_and(|c| c.annotations().get(annotation).map(String::as_str) == Some("true"))
    }

    async fn start(
        &mut self,
        id: &NodeId,
        pod: &Pod,
        ip: Ipv4Addr,
        kind: Kind,
    ) -> anyhow::Result<()> {
        if self.claim_flag(pod, DOWN_ANNOTATION) {
            return Ok(());
        }
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == CONTAINER))
            .cloned()
            .unwrap_or_default();
        let env = self.runtime.env(pod, &container, ip).await?;
        let volume = self.volume(pod);
        let listener = TcpListener::bind(SocketAddr::from((ip, PORT))).await?;
        let version = version_of(container.image.as_deref().unwrap_or_default());
        {
            let mut world = self.nodes.world();
            let same_volume = self.volumes.get(id) == Some(&volume);
            match world.nodes.get_mut(id) {
                Some(node) if same_volume => node.restart(&version),
                _ => {
                    let var = |name: &str| env.get(name).cloned().unwrap_or_default();
                    world.nodes.insert(
                        id.clone(),
                        Node::new(kind, &var("ROOT_USERNAME"), &var("ROOT_PASSWORD"), &version),
                    );
                }
            }
            if let Some(node) = world.nodes.get_mut(id) {
                node.kind = kind;
                node.ip = ip.to_string();
                node.service = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.subdomain.clone())
                    .unwrap_or_default();
                node.stalled = self.claim_flag(pod, STALLED_ANNOTATION);
            }
        }
        self.volumes.insert(id.clone(), volume.clone());
        let mut connections = JoinSet::new();
        connections.spawn(serve_node(listener, self.nodes.clone(), id.clone()));
        tracing::debug!(pod = %id.pod, namespace = %id.namespace, %ip, "simulated SingleStore node up");
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

    fn stop(&mut self, id: &NodeId) {
        if self.serving.remove(id).is_some() {
            if let Some(node) = self.nodes.world().nodes.get_mut(id) {
                node.up = false;
            }
            tracing::debug!(pod = %id.pod, namespace = %id.namespace, "simulated SingleStore node down");
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
        // Settle before starting nodes, so a node started now stays recovering until the next
        // settle pass.
        let now = Instant::now();
        if self
            .last_settle
            .is_none_or(|at| now >= at + SETTLE_INTERVAL)
        {
            self.nodes.world().settle();
            self.last_settle = Some(now);
        }
        let mut seen = BTreeSet::new();
        let mut first_error = None;
        for pod in self.pods.state() {
            let Some(kind) = self.node_kind(&pod) else {
                continue;
            };
            let id = NodeId {
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
                && let Err(err) = self.start(&id, &pod, ip, kind).await
            {
                tracing::debug!(pod = %id.pod, error = %err, "simulated SingleStore node not started yet");
                first_error.get_or_insert(err);
            }
        }
        let gone: Vec<NodeId> = self
            .serving
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop(&id);
        }
        // Forget the state of nodes whose pod and volume are both gone.
        let claims: BTreeSet<String> = self
            .claims
            .state()
            .iter()
            .filter_map(|c| c.uid().map(|u| format!("pvc:{u}")))
            .collect();
        let forget: Vec<NodeId> = self
            .volumes
            .iter()
            .filter(|(id, v)| !seen.contains(*id) && !claims.contains(*v))
            .map(|(id, _)| id.clone())
            .collect();
        if !forget.is_empty() {
            let mut world = self.nodes.world();
            for id in forget {
                world.nodes.remove(&id);
                self.volumes.remove(&id);
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        if !self.nodes.world().pending() {
            return Ok(None);
        }
        let due = self.last_settle.unwrap_or(now) + SETTLE_INTERVAL;
        Ok(Some(
            due.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
    }
}

/// One client connection's SQL side: logs in as the node's root user, runs each COM_QUERY as one
/// statement.
struct Session {
    nodes: Nodes,
    id: NodeId,
}

impl mysql::Handler for Session {
    fn password(&mut self, user: &str) -> Option<String> {
        self.nodes
            .world()
            .nodes
            .get(&self.id)
            .filter(|n| n.up && n.user == user)
            .map(|n| n.password.clone())
    }

    fn query(&mut self, sql: &str) -> Reply {
        let statement = match parse(sql) {
            Ok(s) => s,
            Err(message) => return Reply::Err(ServerError::new(ER_PARSE, "42000", message)),
        };
        let result = self.nodes.world().execute(&self.id, statement);
        match result {
            Ok(answer) => reply(answer),
            Err(e) => Reply::Err(e),
        }
    }
}

/// The wire form of an answer: a column is numeric when all its values are integers.
pub fn reply(answer: Answer) -> Reply {
    match answer {
        Answer::Done(n) => Reply::Ok { affected_rows: n },
        Answer::Rows(names, rows) => {
            let columns = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| Column {
                    name,
                    numeric: rows.iter().any(|r| matches!(r.get(i), Some(Value::Int(_))))
                        && rows
                            .iter()
                            .all(|r| !matches!(r.get(i), Some(Value::Text(_)))),
                })
                .collect();
            let rows = rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| match v {
                            Value::Null => None,
                            Value::Int(i) => Some(i.to_string()),
                            Value::Text(s) => Some(s),
                        })
                        .collect()
                })
                .collect();
            Reply::Rows { columns, rows }
        }
    }
}

/// Serves node `id` of `nodes` on `listener` until the task is dropped: each connection logs in
/// and runs statements on that node.
pub async fn serve_node(listener: TcpListener, nodes: Nodes, id: NodeId) {
    let mut handlers = JoinSet::new();
    while let Ok((sock, _)) = listener.accept().await {
        let _ = sock.set_nodelay(true);
        let greeting = Greeting {
            server_version: SERVER_VERSION.to_owned(),
            connection_id: CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1,
            capabilities: mysql::SERVER_CAPABILITIES,
        };
        let session = Session {
            nodes: nodes.clone(),
            id: id.clone(),
        };
        handlers.spawn(mysql::serve(sock, greeting, session));
        while handlers.try_join_next().is_some() {}
    }
}
