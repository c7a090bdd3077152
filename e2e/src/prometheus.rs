//! A real Prometheus server on loopback scraping the operators, queried through its HTTP API.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::cluster::{TempDir, http_get};
use crate::eventually;

/// A running Prometheus (Debian's `prometheus` package), killed on drop.
pub struct Prometheus {
    url: String,
    _child: Child,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second, labelled
    /// with `job`.
    pub async fn start(jobs: &[(&str, Vec<String>)]) -> anyhow::Result<Self> {
        let binary = which("prometheus").context(
            "prometheus is not installed (apt-get install prometheus; .ci/run does this)",
        )?;
        let dir = TempDir::new("e2e-prometheus")?;
        let port = free_port()?;
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, targets) in jobs {
            let list = targets
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ");
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{list}]\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(
                dir.path().join("prometheus.log"),
            )?))
            .kill_on_drop(true)
            .spawn()
            .context("starting prometheus")?;
        let url = format!("http://127.0.0.1:{port}");
        let probe = url.clone();
        eventually(
            "Prometheus to become ready",
            Duration::from_secs(30),
            || {
                let probe = probe.clone();
                async move { http_get(&probe, "/-/ready").await.ok() }
            },
        )
        .await;
        Ok(Self {
            url,
            _child: child,
            _dir: dir,
        })
    }

    /// Runs an instant query; returns each result's labels and value.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<(serde_json::Value, f64)>> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = http_get(&self.url, &format!("/api/v1/query?query={encoded}")).await?;
        let response: serde_json::Value = serde_json::from_str(&body)?;
        if response["status"] != "success" {
            bail!("query {promql} failed: {body}");
        }
        let results = response["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        results
            .into_iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap_or("NaN").parse::<f64>()?;
                Ok((r["metric"].clone(), value))
            })
            .collect()
    }

    /// Waits until every target reports up.
    pub async fn wait_targets_up(&self, expected: usize) {
        eventually(
            "every Prometheus target to be up",
            Duration::from_secs(30),
            || async {
                let up = self.query("up == 1").await.ok()?;
                (up.len() >= expected).then_some(())
            },
        )
        .await;
    }
}

/// `promtool check metrics` on an exposition; Ok when promtool reports no problem.
pub async fn promtool_check_metrics(exposition: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let binary =
        which("promtool").context("promtool is not installed (apt-get install prometheus)")?;
    let mut child = Command::new(binary)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(exposition.as_bytes())
        .await?;
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
