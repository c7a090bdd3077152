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
