//! kubectl (from PATH, default flags) against the `kube-sim` binary, and the binary's interface.

#[path = "common/process.rs"]
mod process;

use std::process::Command;
use std::time::{Duration, Instant};

use process::{Server, test_file};

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_interface() {
    let server = Server::start("iface", &["--no-sim"]);
    let kubeconfig = std::fs::read_to_string(&server.kubeconfig).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: {}", server.url)),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("current-context: kube-sim"));
    assert!(kubeconfig.contains("namespace: default"));

    // A busy port: one line on stderr, non-zero exit.
    let port = server.url.rsplit(':').next().unwrap();
    let busy = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig-out",
        ])
        .arg(server.dir.join("other"))
        .output()
        .unwrap();
    assert!(!busy.status.success());
    let err = String::from_utf8(busy.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot listen on") && err.contains("in use"),
        "{err}"
    );

    // Unknown flag: one line, non-zero.
    let bad = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["serve", "--bogus"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");

    // SIGTERM: exit 0.
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn kubectl_works_with_default_flags() {
    let s = Server::start("kubectl", &["--no-sim"]);
    let app = test_file("manifests/app.yaml");
    let crd = test_file("manifests/widgets-crd.yaml");
    let widget = test_file("manifests/widget.yaml");

    // create namespace (protobuf body), apply create + update.
    assert!(
        s.kubectl(&["create", "namespace", "team-a"])
            .contains("namespace/team-a created")
    );
    let out = s.kubectl(&["apply", "-f", &app]);
    assert!(
        out.contains("configmap/demo created") && out.contains("deployment.apps/web created"),
        "{out}"
    );
    assert!(
        s.kubectl(&["apply", "-f", &app])
            .contains("deployment.apps/web unchanged")
    );
    let changed = std::fs::read_to_string(&app)
        .unwrap()
        .replace("nginx:1.0", "nginx:1.1");
    assert!(
        s.kubectl_in(&["apply", "-f", "-"], Some(&changed))
            .contains("deployment.apps/web configured")
    );
    let image = s.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}/{.metadata.generation}",
    ]);
    assert_eq!(image, "nginx:1.1/2");

    // Tables.
    let table = s.kubectl(&["get", "deploy"]);
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("web"),
        "{table}"
    );
    let yaml = s.kubectl(&["get", "cm", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );

    // describe.
    let described = s.kubectl(&["describe", "deploy", "web"]);
    assert!(
        described.contains("Selector:") && described.contains("app=web"),
        "{described}"
    );

    // patch in all three flavours, set image, label.
    s.kubectl(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    s.kubectl(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    s.kubectl(&["patch", "deploy", "web", "--type", "strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#]);
    s.kubectl(&["set", "image", "deploy/web", "main=nginx:2"]);
    s.kubectl(&["label", "deploy", "web", "tier=front"]);
    let got = s.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.labels.tier}"]);
    assert_eq!(got, "4 nginx:2 front");
    let env = s.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[*].name}",
    ]);
    let mut env: Vec<&str> = env.split_whitespace().collect();
    env.sort();
    assert_eq!(env, ["EXTRA", "MODE"], "strategic patch merged env by name");

    // Custom resources: CRD, printer columns, client-side and server-side apply, status, wait.
    s.kubectl(&["apply", "-f", &crd]);
    s.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    assert!(
        s.kubectl(&["apply", "-f", &widget])
            .contains("widget.example.com/w1 created")
    );
    let table = s.kubectl(&["get", "widgets"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "READY", "AGE"]);
    assert!(
        table.lines().nth(1).unwrap().starts_with("w1     3"),
        "{table}"
    );
    let ssa = s.dir.join("widget-ssa.yaml");
    let ssa = ssa.to_str().unwrap();
    std::fs::write(
        ssa,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: 4\n",
    )
    .unwrap();
    assert!(
        s.kubectl(&["apply", "--server-side", "-f", ssa])
            .contains("serverside-applied")
    );
    s.kubectl(&[
        "patch",
        "wd",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "widget/w1",
        "--timeout=10s",
    ]);
    assert!(s.kubectl(&["get", "wd", "w1"]).contains("True"));

    // get -w sees a change.
    let mut watch = Command::new("kubectl")
        .args(["get", "cm", "demo", "-w", "--request-timeout=20s"])
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HOME", &s.dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.starts_with("NAME"), "{first}");
    assert!(
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap()
            .starts_with("demo")
    );
    s.kubectl(&[
        "patch",
        "cm",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    let changed = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a watch line for the change");
    assert!(
        changed.starts_with("demo") && changed.contains(" 2 "),
        "{changed}"
    );
    let _ = watch.kill();
    let _ = watch.wait();

    // delete, namespace deletion.
    s.kubectl_in(
        &["apply", "-n", "team-a", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\n"),
    );
    assert!(s.kubectl(&["delete", "deploy", "web"]).contains("deleted"));
    assert!(
        s.run("kubectl", &["get", "deploy", "web"], None)
            .status
            .code()
            != Some(0)
    );
    s.kubectl(&["delete", "namespace", "team-a"]);
    wait_until("namespace team-a gone", || {
        !s.run("kubectl", &["get", "ns", "team-a"], None)
            .status
            .success()
    });
    assert!(
        !s.run("kubectl", &["get", "cm", "inside", "-n", "team-a"], None)
            .status
            .success()
    );
    s.kubectl(&["delete", "-f", &crd]);
    let gone = s.run(
        "kubectl",
        &[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets",
        ],
        None,
    );
    assert!(!gone.status.success());
}
