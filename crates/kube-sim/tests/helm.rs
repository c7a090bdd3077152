//! helm (the static v4 binary in `.tools/bin`) against the `kube-sim` binary: install, upgrade,
//! status and uninstall of a chart with a Deployment, Service, Secret, ConfigMap, RBAC and a CRD.

#[path = "common/process.rs"]
mod process;

use std::path::PathBuf;

use process::{Server, test_file};

fn helm() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/helm");
    assert!(
        path.exists(),
        "helm is missing at {}: run hack/install-tools.sh (it installs helm v4 into .tools/bin)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn helm_install_upgrade_status_uninstall() {
    let helm = helm();
    let s = Server::start("helm", &["--no-sim"]);
    let chart = test_file("charts/demo");
    let run = |args: &[&str]| {
        let out = s.run(&helm, args, None);
        assert!(
            out.status.success(),
            "helm {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let out = run(&["install", "rel1", &chart]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    let kinds = [
        "deploy/rel1",
        "svc/rel1",
        "secret/rel1-secret",
        "cm/rel1-config",
        "sa/rel1",
        "role/rel1",
        "rolebinding/rel1",
        "gadget/rel1",
    ];
    for k in kinds {
        s.kubectl(&["get", k]);
    }
    s.kubectl(&["get", "crd", "gadgets.example.com"]);
    // stringData reached data, as on a real server.
    assert_eq!(
        s.kubectl(&[
            "get",
            "secret",
            "rel1-secret",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "bm90LWEtcmVhbC1wYXNzd29yZA=="
    );

    let out = run(&[
        "upgrade",
        "rel1",
        &chart,
        "--set",
        "image=nginx:2.0",
        "--set",
        "greeting=bye",
    ]);
    assert!(out.contains("REVISION: 2"), "{out}");
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "rel1",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:2.0"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "cm",
            "rel1-config",
            "-o",
            "jsonpath={.data.greeting}"
        ]),
        "bye"
    );

    let status = run(&["status", "rel1"]);
    assert!(
        status.contains("STATUS: deployed") && status.contains("REVISION: 2"),
        "{status}"
    );
    assert!(run(&["list"]).contains("rel1"));

    let out = run(&["uninstall", "rel1"]);
    assert!(out.contains("uninstalled"), "{out}");
    for k in kinds {
        let got = s.run("kubectl", &["get", k], None);
        assert!(!got.status.success(), "{k} survived uninstall");
    }
    // Release records are gone; CRDs stay, as helm never deletes CRDs from crds/.
    assert_eq!(
        s.kubectl(&["get", "secrets", "-l", "owner=helm", "-o", "name"]),
        ""
    );
    s.kubectl(&["get", "crd", "gadgets.example.com"]);
}
