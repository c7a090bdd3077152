//! Proof of the process runtime (`--run-image`): a real program runs as a pod, binds its pod IP,
//! answers probes and requests, logs through `kubectl logs`, and stops when its pod is deleted.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube_sim::sim::{RunImage, SimOptions};
use kube_sim::{KubeSim, KubeSimOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kubectl() -> PathBuf {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/kubectl");
    if tools.exists() {
        tools
    } else {
        PathBuf::from("kubectl")
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// GETs `/` from `ip:port` and returns the raw response.
async fn http_get(ip: &str, port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

fn process_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test]
async fn run_image_runs_a_real_process_per_pod() {
    let sim = KubeSim::start(KubeSimOptions {
        sim: Some(SimOptions {
            run_images: vec![RunImage {
                image: "example.test/web:*".into(),
                command: vec!["sh".into(), "-c".into()],
            }],
            ..SimOptions::default()
        }),
        ..KubeSimOptions::default()
    })
    .await
    .unwrap();
    let client = sim.client();
    // The script prints its identity, then becomes a web server bound to the pod IP. As in
    // Kubernetes, `$(VAR)` in args is expanded by the kubelet and `$$` stands for one `$`.
    let script = "echo \"started $(POD_NAME) pid $$$$ kubeconfig $KUBECONFIG greeting $GREETING\"; \
                  exec python3 -m http.server --bind \"$POD_IP\" 8080";
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "podManagementPolicy": "Parallel",
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "example.test/web:1",
                    "args": [script],
                    "env": [
                        {"name": "GREETING", "value": "hello-$(POD_NAMESPACE)"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
                }]}
            }
        }
    }))
    .unwrap();
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    sets.create(&PostParams::default(), &sts).await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());

    // Both replicas become Ready through their HTTP readiness probes.
    let mut ips = Vec::new();
    for name in ["web-0", "web-1"] {
        let pod = wait_for(&format!("{name} Ready"), || async {
            let pod = pods.get_opt(name).await.ok()??;
            is_ready(&pod).then_some(pod)
        })
        .await;
        ips.push(pod.status.unwrap().pod_ip.unwrap());
    }
    assert_ne!(ips[0], ips[1]);
    // Both listen on port 8080, each on its own pod IP.
    for ip in &ips {
        let response = http_get(ip, 8080).await.unwrap();
        assert!(response.starts_with("HTTP/1.0 200"), "{ip}: {response}");
    }

    // `kubectl logs` shows the program's output.
    let logs = wait_for("kubectl logs web-0 to show the request", || async {
        let out = tokio::process::Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(sim.kubeconfig_path())
            .args(["logs", "web-0"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("GET / HTTP")).then_some(text)
    })
    .await;
    let first = logs.lines().next().unwrap();
    assert!(first.starts_with("started web-0 pid "), "{logs}");
    assert!(
        first.contains(&format!("kubeconfig {}", sim.kubeconfig_path().display())),
        "{first}"
    );
    assert!(first.ends_with("greeting hello-default"), "{first}");
    let pid: i32 = first.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(process_alive(pid));

    // Deleting the pod stops its process (SIGTERM); the StatefulSet then starts a new one.
    let old_uid = pods.get("web-0").await.unwrap().uid();
    pods.delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the old web-0 to be gone", || async {
        let current = pods.get_opt("web-0").await.ok()?;
        (current.and_then(|p| p.uid()) != old_uid).then_some(())
    })
    .await;
    assert!(
        !process_alive(pid),
        "process {pid} must be stopped with its pod"
    );
    let replacement = wait_for("a new web-0 Ready", || async {
        let pod = pods.get_opt("web-0").await.ok()??;
        (pod.uid() != old_uid && is_ready(&pod)).then_some(pod)
    })
    .await;
    let ip = replacement.status.unwrap().pod_ip.unwrap();
    assert!(
        http_get(&ip, 8080)
            .await
            .unwrap()
            .starts_with("HTTP/1.0 200")
    );

    sim.shutdown().await;
    // Shutting down kills the remaining processes.
    wait_for("servers to stop after shutdown", || async {
        let mut refused = true;
        for ip in [&ip, &ips[1]] {
            refused &= tokio::net::TcpStream::connect((ip.as_str(), 8080))
                .await
                .is_err();
        }
        refused.then_some(())
    })
    .await;
}

fn shell_pod(name: &str, script: &str, extra: serde_json::Value) -> Pod {
    let mut container = json!({"name": "main", "image": "example.test/shell:1", "args": [script]});
    for (k, v) in extra.as_object().unwrap() {
        container[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]}
    }))
    .unwrap()
}

async fn shell_sim() -> KubeSim {
    KubeSim::start(KubeSimOptions {
        sim: Some(SimOptions {
            run_images: vec!["example.test/shell:*=sh -c".parse().unwrap()],
            ..SimOptions::default()
        }),
        ..KubeSimOptions::default()
    })
    .await
    .unwrap()
}

fn container_status(pod: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let sim = shell_sim().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client());
    let script = "trap '' TERM; echo trapped; while :; do sleep 0.05; done";
    pods.create(
        &PostParams::default(),
        &shell_pod("stubborn", script, json!({})),
    )
    .await
    .unwrap();
    wait_for("the process to start", || async {
        let log = sim.pod_logs().read("default", "stubborn", None)?;
        String::from_utf8_lossy(&log)
            .contains("trapped")
            .then_some(())
    })
    .await;
    let deleted_at = tokio::time::Instant::now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = pods.get("stubborn").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    wait_for("the pod to be gone", || async {
        pods.get_opt("stubborn")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let elapsed = deleted_at.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "the pod went after {elapsed:?}, before its 2s grace period"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn exited_and_unhealthy_processes_are_restarted() {
    let sim = shell_sim().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client());
    pods.create(
        &PostParams::default(),
        &shell_pod("crash", "echo boom; exit 3", json!({})),
    )
    .await
    .unwrap();
    // Nothing listens on port 1 of the pod IP, so the liveness probe always fails.
    let liveness = json!({"livenessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 1, "failureThreshold": 1}});
    pods.create(
        &PostParams::default(),
        &shell_pod("unhealthy", "echo up; exec sleep 600", liveness),
    )
    .await
    .unwrap();
    let crashed = wait_for("crash to restart", || async {
        let status = container_status(&pods.get("crash").await.ok()?)?;
        (status.restart_count >= 1).then_some(status)
    })
    .await;
    let last = crashed
        .last_state
        .and_then(|s| s.terminated)
        .expect("lastState.terminated");
    assert_eq!(last.exit_code, 3);
    wait_for(
        "the failing liveness probe to restart the process",
        || async {
            let status = container_status(&pods.get("unhealthy").await.ok()?)?;
            (status.restart_count >= 1).then_some(())
        },
    )
    .await;
    wait_for("the restarted process to log again", || async {
        let log = sim.pod_logs().read("default", "unhealthy", None)?;
        (String::from_utf8_lossy(&log).matches("up\n").count() >= 2).then_some(())
    })
    .await;
    sim.shutdown().await;
}
