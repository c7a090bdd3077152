//! The process runtime behind `--run-image IMAGE=COMMAND`: real local processes for containers,
//! with resolved env, `KUBECONFIG`, the pod IP, httpGet/tcpSocket probes, restarts, SIGTERM then
//! SIGKILL on deletion, and output captured as the pod's log.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Probe, Secret};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client, ResourceExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::{Notify, watch};

use super::logs::PodLogs;
use super::options::RunImage;
use super::util::glob_match;

/// Delay before a process that exited is started again (Kubernetes backs off exponentially).
pub const RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// Probe interval until the first success (Kubernetes would wait `periodSeconds`).
pub const FAST_PROBE: Duration = Duration::from_millis(100);

/// What the kubelet reports about a container process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessState {
    pub running: bool,
    pub ready: bool,
    pub started_at: Option<Timestamp>,
    pub restart_count: i32,
    pub last_exit_code: Option<i32>,
    pub waiting_reason: Option<String>,
    pub message: Option<String>,
    /// The process is stopped for good (pod deletion).
    pub stopped: bool,
}

impl ProcessState {
    pub fn exited(&self) -> bool {
        self.stopped && !self.running
    }
}

/// Handle on a supervised container process.
#[derive(Debug)]
pub struct ContainerProcess {
    state: Arc<watch::Sender<ProcessState>>,
    stop: watch::Sender<Option<Duration>>,
}

impl ContainerProcess {
    pub fn state(&self) -> ProcessState {
        self.state.borrow().clone()
    }

    /// Sends SIGTERM and SIGKILL after `grace` unless it exits first. Returns at once.
    pub fn begin_stop(&self, grace: Duration) {
        self.stop.send_replace(Some(grace));
    }

    /// Stops and waits until the process is gone.
    pub async fn stop(&self, grace: Duration) {
        self.begin_stop(grace);
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(ProcessState::exited).await;
    }
}

/// Resolves a probe port (number or container port name).
pub fn probe_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Expands `$(VAR)` references as Kubernetes does for env values, command and args;
/// `$$(VAR)` escapes, unknown references stay as written.
pub fn expand(input: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward-API `fieldRef` path.
pub fn field_ref(pod: &Pod, path: &str, ip: Ipv4Addr, node: &str) -> Option<String> {
    let label = |prefix: &str, map: &BTreeMap<String, String>| {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        map.get(key).cloned()
    };
    match path {
        "metadata.name" => Some(pod.name_any()),
        "metadata.namespace" => pod.namespace(),
        "metadata.uid" => pod.uid(),
        "spec.nodeName" => Some(node.to_owned()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.podIPs" => Some(ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(super::kubelet::HOST_IP.to_owned()),
        p if p.starts_with("metadata.labels") => label("metadata.labels", pod.labels()),
        p if p.starts_with("metadata.annotations") => {
            label("metadata.annotations", pod.annotations())
        }
        _ => None,
    }
}

/// Starts and supervises processes for containers whose image matches a `--run-image` rule.
pub struct ProcessRuntime {
    pub rules: Vec<RunImage>,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub logs: PodLogs,
    pub node_name: String,
    /// Wakes the kubelet when a process changes state.
    pub notify: Arc<Notify>,
    /// Supervisors; aborting them kills their process groups.
    pub supervisors: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl ProcessRuntime {
    /// Kills every process (SIGKILL to each process group).
    pub async fn shutdown(&self) {
        let mut set = std::mem::take(
            &mut *self
                .supervisors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        set.shutdown().await;
    }

    pub fn rule_for(&self, image: &str) -> Option<&RunImage> {
        self.rules.iter().find(|r| glob_match(&r.image, image))
    }

    /// The container's environment as the kubelet resolves it (plus what kube-sim adds).
    pub async fn env(
        &self,
        pod: &Pod,
        container: &Container,
        ip: Ipv4Addr,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let ns = pod.namespace().unwrap_or_default();
        let mut env = BTreeMap::new();
        env.insert(
            "KUBECONFIG".to_owned(),
            self.kubeconfig.display().to_string(),
        );
        env.insert("POD_NAME".to_owned(), pod.name_any());
        env.insert("POD_NAMESPACE".to_owned(), ns.clone());
        env.insert("POD_IP".to_owned(), ip.to_string());
        env.insert("KUBE_SIM_POD_IP".to_owned(), ip.to_string());
        for from in container.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(r) = &from.secret_ref {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                match api.get_opt(&r.name).await? {
                    Some(secret) => {
                        for (k, v) in secret.data.unwrap_or_default() {
                            env.insert(
                                format!("{prefix}{k}"),
                                String::from_utf8_lossy(&v.0).into_owned(),
                            );
                        }
                    }
                    None if r.optional == Some(true) => {}
                    None => anyhow::bail!("secret {ns}/{} not found", r.name),
                }
            }
            if let Some(r) = &from.config_map_ref {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                match api.get_opt(&r.name).await? {
                    Some(cm) => {
                        for (k, v) in cm.data.unwrap_or_default() {
                            env.insert(format!("{prefix}{k}"), v);
                        }
                    }
                    None if r.optional == Some(true) => {}
                    None => anyhow::bail!("configmap {ns}/{} not found", r.name),
                }
            }
        }
        for var in container.env.iter().flatten() {
            if let Some(value) = self.env_value(pod, var, ip, &env, &ns).await? {
                env.insert(var.name.clone(), value);
            }
        }
        Ok(env)
    }

    async fn env_value(
        &self,
        pod: &Pod,
        var: &EnvVar,
        ip: Ipv4Addr,
        env: &BTreeMap<String, String>,
        ns: &str,
    ) -> anyhow::Result<Option<String>> {
        if let Some(value) = &var.value {
            return Ok(Some(expand(value, env)));
        }
        let Some(from) = &var.value_from else {
            return Ok(Some(String::new()));
        };
        if let Some(f) = &from.field_ref {
            return Ok(field_ref(pod, &f.field_path, ip, &self.node_name));
        }
        if let Some(r) = &from.secret_key_ref {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            let value = api.get_opt(&r.name).await?.and_then(|s| {
                s.data.and_then(|d| {
                    d.get(&r.key)
                        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                })
            });
            if value.is_none() && r.optional != Some(true) {
                anyhow::bail!("secret key {ns}/{}[{}] not found", r.name, r.key);
            }
            return Ok(value);
        }
        if let Some(r) = &from.config_map_key_ref {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            let value = api
                .get_opt(&r.name)
                .await?
                .and_then(|c| c.data.and_then(|d| d.get(&r.key).cloned()));
            if value.is_none() && r.optional != Some(true) {
                anyhow::bail!("configmap key {ns}/{}[{}] not found", r.name, r.key);
            }
            return Ok(value);
        }
        Ok(None)
    }

    /// Starts the container's process if a rule matches its image.
    pub async fn start(
        &self,
        pod: &Pod,
        container: &Container,
        ip: Ipv4Addr,
    ) -> anyhow::Result<Option<ContainerProcess>> {
        let Some(rule) = container.image.as_deref().and_then(|i| self.rule_for(i)) else {
            return Ok(None);
        };
        let env = self.env(pod, container, ip).await.with_context(|| {
            format!(
                "resolving env of container {} of pod {}",
                container.name,
                pod.name_any()
            )
        })?;
        let mut argv = rule.command.clone();
        argv.extend(container.args.iter().flatten().map(|a| expand(a, &env)));
        let spec = ProcessSpec {
            argv,
            env,
            namespace: pod.namespace().unwrap_or_default(),
            pod: pod.name_any(),
            container: container.name.clone(),
            ip,
            readiness: container.readiness_probe.clone(),
            liveness: container.liveness_probe.clone(),
            container_def: container.clone(),
            termination_grace: Duration::from_secs(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30)
                    .max(0) as u64,
            ),
        };
        let state = Arc::new(watch::Sender::new(ProcessState::default()));
        let (stop, stop_rx) = watch::channel(None);
        self.supervisors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .spawn(supervise(
                spec,
                state.clone(),
                stop_rx,
                self.logs.clone(),
                self.notify.clone(),
            ));
        Ok(Some(ContainerProcess { state, stop }))
    }
}

impl ProcessRuntime {
    /// The readiness of a container kube-sim simulates, in a pod where a sibling container runs
    /// as a process: its readiness probe runs against the pod IP like a process's (the port may
    /// be served by the sibling, or by the databases' side), so that a database container whose
    /// readiness asks the in-pod agent is Ready only when the agent says so. `None` when the
    /// container has no readiness probe (it is ready while running, as before).
    pub fn probe_only(
        &self,
        pod: &Pod,
        container: &Container,
        ip: Ipv4Addr,
    ) -> Option<ContainerProcess> {
        let readiness = container.readiness_probe.clone()?;
        let spec = ProcessSpec {
            argv: Vec::new(),
            env: BTreeMap::new(),
            namespace: pod.namespace().unwrap_or_default(),
            pod: pod.name_any(),
            container: container.name.clone(),
            ip,
            readiness: Some(readiness),
            liveness: None,
            container_def: container.clone(),
            termination_grace: Duration::ZERO,
        };
        let state = Arc::new(watch::Sender::new(ProcessState {
            running: true,
            started_at: Some(Timestamp::now()),
            ..ProcessState::default()
        }));
        let (stop, mut stop_rx) = watch::channel(None);
        let notify = self.notify.clone();
        let task_state = state.clone();
        self.supervisors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .spawn(async move {
                tokio::select! {
                    () = probe_loop(&spec, task_state.clone(), notify.clone()) => {}
                    _ = stop_rx.changed() => {}
                }
                task_state.send_modify(|s| {
                    s.running = false;
                    s.ready = false;
                    s.stopped = true;
                    s.last_exit_code = Some(0);
                });
                notify.notify_one();
            });
        Some(ContainerProcess { state, stop })
    }
}

struct ProcessSpec {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    namespace: String,
    pod: String,
    container: String,
    ip: Ipv4Addr,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    container_def: Container,
    /// Grace period for restarts after failed liveness probes.
    termination_grace: Duration,
}

/// Kills the whole process group when dropped (also when the simulation shuts down).
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn signal(&self, signal: i32) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) with a negative pid signals a process group we created; no memory
            // is touched.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

async fn supervise(
    spec: ProcessSpec,
    state: Arc<watch::Sender<ProcessState>>,
    mut stop: watch::Receiver<Option<Duration>>,
    logs: PodLogs,
    notify: Arc<Notify>,
) {
    let update = |f: &dyn Fn(&mut ProcessState)| {
        state.send_modify(|s| f(s));
        notify.notify_one();
    };
    loop {
        if stop.borrow().is_some() {
            break;
        }
        let mut command = Command::new(&spec.argv[0]);
        command
            .args(&spec.argv[1..])
            .envs(&spec.env)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let message = format!("starting {:?}: {error}", spec.argv[0]);
                logs.append(
                    &spec.namespace,
                    &spec.pod,
                    &spec.container,
                    format!("kube-sim: {message}\n").as_bytes(),
                );
                update(&|s| {
                    s.running = false;
                    s.waiting_reason = Some("RunContainerError".to_owned());
                    s.message = Some(message.clone());
                });
                tokio::select! {
                    () = tokio::time::sleep(RESTART_BACKOFF) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        let guard = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
        let key = (
            spec.namespace.clone(),
            spec.pod.clone(),
            spec.container.clone(),
        );
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, logs.clone(), key.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, logs.clone(), key));
        }
        update(&|s| {
            s.running = true;
            s.ready = spec.readiness.is_none();
            s.started_at = Some(Timestamp::now());
            s.waiting_reason = None;
            s.message = None;
        });

        let probes = probe_loop(&spec, state.clone(), notify.clone());
        tokio::pin!(probes);
        let exit = tokio::select! {
            status = child.wait() => Some(status),
            () = &mut probes => None,
            _ = stop.changed() => None,
        };
        let stopping = stop.borrow().is_some();
        let code = match exit {
            Some(status) => status.ok().and_then(|s| s.code()).unwrap_or(137),
            None => {
                let grace = stop.borrow().unwrap_or(spec.termination_grace);
                guard.signal(libc::SIGTERM);
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => status.ok().and_then(|s| s.code()).unwrap_or(143),
                    Err(_) => {
                        guard.signal(libc::SIGKILL);
                        let _ = child.wait().await;
                        137
                    }
                }
            }
        };
        drop(guard);
        if stopping {
            update(&|s| {
                s.running = false;
                s.ready = false;
                s.last_exit_code = Some(code);
                s.stopped = true;
            });
            return;
        }
        update(&|s| {
            s.running = false;
            s.ready = false;
            s.last_exit_code = Some(code);
            s.restart_count += 1;
            s.waiting_reason = Some("CrashLoopBackOff".to_owned());
        });
        tokio::select! {
            () = tokio::time::sleep(RESTART_BACKOFF) => {}
            _ = stop.changed() => break,
        }
    }
    update(&|s| {
        s.running = false;
        s.ready = false;
        s.stopped = true;
    });
}

/// Copies a process's output, line by line, into the container's log.
async fn pump<R>(reader: R, logs: PodLogs, (ns, pod, container): (String, String, String))
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.append(&ns, &pod, &container, format!("{line}\n").as_bytes());
    }
}

/// Runs readiness and liveness probes; returns when liveness fails `failureThreshold` times.
async fn probe_loop(
    spec: &ProcessSpec,
    state: Arc<watch::Sender<ProcessState>>,
    notify: Arc<Notify>,
) {
    let mut readiness_ok = false;
    let mut liveness_failures = 0;
    let mut ever_ready = false;
    if let Some(delay) = spec
        .readiness
        .as_ref()
        .and_then(|p| p.initial_delay_seconds)
    {
        tokio::time::sleep(Duration::from_secs(delay.max(0) as u64)).await;
    }
    loop {
        if let Some(probe) = &spec.readiness {
            let ok = run_probe(probe, spec).await;
            if ok != readiness_ok {
                readiness_ok = ok;
                state.send_modify(|s| s.ready = ok);
                notify.notify_one();
            }
            ever_ready |= ok;
        }
        if let Some(probe) = &spec.liveness {
            if run_probe(probe, spec).await {
                liveness_failures = 0;
            } else {
                liveness_failures += 1;
                if liveness_failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                    return;
                }
            }
        }
        if spec.readiness.is_none() && spec.liveness.is_none() {
            std::future::pending::<()>().await;
        }
        let period = spec
            .readiness
            .as_ref()
            .or(spec.liveness.as_ref())
            .and_then(|p| p.period_seconds)
            .unwrap_or(10)
            .max(1);
        let wait = if ever_ready || spec.readiness.is_none() {
            Duration::from_secs(period as u64)
        } else {
            FAST_PROBE
        };
        tokio::time::sleep(wait).await;
    }
}

/// One probe attempt: httpGet (2xx/3xx), tcpSocket (connects); exec and grpc count as success.
async fn run_probe(probe: &Probe, spec: &ProcessSpec) -> bool {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(http) = &probe.http_get {
        let Some(port) = probe_port(&http.port, &spec.container_def) else {
            return false;
        };
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let addr = SocketAddr::from((spec.ip, port));
        return tokio::time::timeout(timeout, http_get_status(addr, &path))
            .await
            .ok()
            .flatten()
            .is_some_and(|code| (200..400).contains(&code));
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = probe_port(&tcp.port, &spec.container_def) else {
            return false;
        };
        let addr = SocketAddr::from((spec.ip, port));
        return tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .is_ok_and(|r| r.is_ok());
    }
    true
}

/// A minimal HTTP/1.0 GET returning the status code.
pub async fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: kube-probe/kube-sim\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await.ok()?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references() {
        let env: BTreeMap<String, String> = [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "two".to_owned()),
        ]
        .into();
        let cases = [
            ("$(A)-$(B)", "1-two"),
            ("$$(A)", "$(A)"),
            ("$(C)", "$(C)"),
            ("plain $ sign", "plain $ sign"),
            ("--bind=$(A)", "--bind=1"),
            ("$(A", "$(A"),
        ];
        for (input, expected) in cases {
            assert_eq!(expand(input, &env), expected, "{input}");
        }
    }

    #[test]
    fn resolves_field_refs_and_ports() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
            "spec": {"serviceAccountName": "sa", "containers": []}
        }))
        .unwrap();
        let ip = Ipv4Addr::new(127, 1, 1, 1);
        let cases = [
            ("metadata.name", Some("p")),
            ("metadata.namespace", Some("ns")),
            ("status.podIP", Some("127.1.1.1")),
            ("spec.nodeName", Some("node")),
            ("spec.serviceAccountName", Some("sa")),
            ("metadata.labels['app']", Some("x")),
            ("metadata.labels['missing']", None),
            ("unknown", None),
        ];
        for (path, expected) in cases {
            assert_eq!(
                field_ref(&pod, path, ip, "node").as_deref(),
                expected,
                "{path}"
            );
        }
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        assert_eq!(
            probe_port(&IntOrString::String("http".into()), &container),
            Some(8080)
        );
        assert_eq!(probe_port(&IntOrString::Int(9000), &container), Some(9000));
        assert_eq!(
            probe_port(&IntOrString::String("nope".into()), &container),
            None
        );
    }

    #[tokio::test]
    async fn http_status_of_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = socket.read(&mut buf).await;
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                .await
                .unwrap();
        });
        assert_eq!(http_get_status(addr, "/healthz").await, Some(503));
    }
}
