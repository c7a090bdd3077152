//! The built binary: `version`, the command line, and a clear refusal of a bad environment.

use std::process::Command;

fn agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_db-agent"));
    cmd.env_clear();
    cmd
}

#[test]
fn version_prints_the_workspace_version() {
    let out = agent().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("db-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_without_the_pod_environment_fails_naming_what_is_missing() {
    let out = agent()
        .args([
            "run",
            "--ag-name=agx",
            "--election-tick=10",
            "--heartbeat-tick=1",
            "--period=300ms",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("POD_NAME"), "{stderr}");
}

#[test]
fn run_refuses_flags_the_provisioner_does_not_pass() {
    let out = agent()
        .args(["run", "--ag-name=agx", "--metrics-addr=:8080"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
}

#[test]
fn ag_name_can_come_from_the_environment() {
    let out = agent()
        .args(["run", "--period=1x"])
        .env("AG_NAME", "agx")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Past clap (the AG name was found), stopped by the bad period.
    assert!(stderr.contains("--period"), "{stderr}");
}

/// The arbiter slot: it starts without the pod environment, answers `/healthz` and exits cleanly
/// on SIGTERM.
#[test]
fn arbiter_serves_healthz_until_sigterm() {
    use std::io::{Read, Write};
    let mut child = agent()
        .args(["arbiter", "--ag-name=agx"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answer = loop {
        match std::net::TcpStream::connect(("127.0.0.1", db_agent::run::HTTP_PORT)) {
            Ok(mut stream) => {
                stream
                    .write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                break answer;
            }
            Err(_) if std::time::Instant::now() < deadline => {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the arbiter exited early"
                );
                // Poll again shortly: the process is still starting.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!(
                "the arbiter never listened on {}: {e}",
                db_agent::run::HTTP_PORT
            ),
        }
    };
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    // SIGTERM: a clean exit.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn the_singlestore_arguments_select_the_singlestore_backend() {
    // KubeDB's singlestore-coordinator arguments, without the pod's environment: past clap,
    // stopped by the first missing variable of the SingleStore configuration.
    let out = agent()
        .args(["run", "--db-name=sdb", "--node-type=leaf"])
        .env("POD_NAME", "sdb-leaf-0")
        .env("POD_NAMESPACE", "demo")
        .env("GOVERNING_SERVICE", "sdb-pods")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("ROOT_PASSWORD"), "{stderr}");
    // A node type SingleStore does not have, and both backends at once, are refused by name.
    for args in [
        vec!["run", "--db-name=sdb", "--node-type=master"],
        vec!["run", "--db-name=sdb", "--node-type=leaf", "--ag-name=agx"],
    ] {
        let out = agent().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("--node-type") || stderr.contains("--ag-name"),
            "{stderr}"
        );
    }
}
