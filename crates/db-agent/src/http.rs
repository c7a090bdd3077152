//! The agent's HTTP server (port 2379 in the pod): `/healthz` (the process runs), `/ready` (200
//! iff the local replica is a primary holding the Lease and writable, or a SYNCHRONIZED
//! secondary; the body says which, or why not), `/metrics` (Prometheus text), and `/state` (the
//! last observation of the local instance as JSON: what peers read to elect).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::mssql::decide::Local;

/// What `/state` serves: the local instance as last observed (SQL Server's [`Local`] by
/// default, SingleStore's [`crate::sdb::decide::Local`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report<L = Local> {
    /// Pod name.
    pub name: String,
    /// The local instance as last observed.
    pub local: L,
}

#[derive(Debug, Clone)]
struct Inner<L> {
    ready: Result<&'static str, String>,
    report: Option<Report<L>>,
}

/// Readiness and the latest report, shared between the agent loop and the server.
#[derive(Debug, Clone)]
pub struct Status<L = Local>(Arc<RwLock<Inner<L>>>);

impl<L> Default for Status<L> {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(Inner {
            ready: Err("no observation yet".into()),
            report: None,
        })))
    }
}

impl<L: Clone> Status<L> {
    /// Publishes a round's outcome: the role label the pod is ready as, or why it is not.
    pub fn set(&self, ready: Result<&'static str, String>, report: Report<L>) {
        let mut inner = self.0.write().unwrap_or_else(|p| p.into_inner());
        inner.ready = ready;
        inner.report = Some(report);
    }

    /// What `/ready` answers.
    pub fn ready(&self) -> Result<&'static str, String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .ready
            .clone()
    }

    /// What `/state` answers.
    pub fn report(&self) -> Option<Report<L>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .report
            .clone()
    }
}

#[derive(Clone)]
struct App<L> {
    status: Status<L>,
    metrics: Metrics,
}

/// Binds `addr` and serves until `shutdown` resolves; returns the bound address and the task.
pub async fn serve<L: Serialize + Clone + Send + Sync + 'static>(
    addr: SocketAddr,
    status: Status<L>,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ready", get(ready::<L>))
        .route("/metrics", get(metrics_text::<L>))
        .route("/state", get(state::<L>))
        .with_state(App { status, metrics });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((local, task))
}

async fn ready<L: Clone>(State(app): State<App<L>>) -> Response {
    match app.status.ready() {
        Ok(role) => (StatusCode::OK, role.to_owned()).into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

async fn state<L: Serialize + Clone>(State(app): State<App<L>>) -> Response {
    match app.status.report() {
        Some(report) => Json(report).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no observation yet").into_response(),
    }
}

async fn metrics_text<L>(State(app): State<App<L>>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&app.metrics.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mssql::decide::{Action, InstanceSetup, LocalState, RoleLabel};

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn endpoints_over_a_real_socket() {
        let status = Status::default();
        let metrics = Metrics::new().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            status.clone(),
            metrics.clone(),
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();

        assert_eq!(get(addr, "/healthz").await, (200, "ok".into()));
        assert_eq!(
            get(addr, "/ready").await,
            (503, "no observation yet".into())
        );
        assert_eq!(get(addr, "/state").await.0, 503);

        let report = Report {
            name: "ag-1".into(),
            local: Local::Up(LocalState {
                setup: InstanceSetup::DONE,
                ag: None,
            }),
        };
        status.set(Ok(RoleLabel::Secondary.as_str()), report.clone());
        assert_eq!(get(addr, "/ready").await, (200, "secondary".into()));
        let (code, body) = get(addr, "/state").await;
        assert_eq!(code, 200);
        let parsed: Report = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, report);

        status.set(Err("database db1 is Synchronizing".into()), report);
        assert_eq!(
            get(addr, "/ready").await,
            (503, "database db1 is Synchronizing".into())
        );

        metrics.decided(&Action::Promote);
        metrics.failovers.inc();
        let (code, body) = get(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("kubedb_agent_failovers_total 1"), "{body}");
        assert!(
            body.contains("kubedb_agent_last_decision{action=\"promote\"} 1"),
            "{body}"
        );
        assert!(body.contains("kubedb_agent_lease_held 0"), "{body}");

        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_busy_port_is_a_clear_error() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve(
            addr,
            Status::<Local>::default(),
            Metrics::new().unwrap(),
            async {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
