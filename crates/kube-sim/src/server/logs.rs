//! `GET .../pods/<name>/log`, served from the in-process [`PodLogs`](crate::sim::PodLogs) registry.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ServerState;
use super::handler::{Query, flag};
use crate::error::ApiResult;

/// The log of one container (`container`, `tailLines`, `follow`).
pub(super) async fn pod_log(
    state: &Arc<ServerState>,
    ns: &str,
    name: &str,
    q: &Query,
) -> ApiResult<Response> {
    let pods = state
        .lock()
        .registry
        .lookup("", "v1", "pods")
        .expect("pods");
    let pod = state.lock().get(&pods, Some(ns), name)?;
    let container = q.get("container").cloned().or_else(|| {
        pod.pointer("/spec/containers/0/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = state
        .pod_logs
        .read(ns, name, container.as_deref())
        .unwrap_or_default();
    let text = match q.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        Some(n) => {
            let s = String::from_utf8_lossy(&text).into_owned();
            let lines: Vec<&str> = s.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..]
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes()
        }
        None => text,
    };
    if !flag(q, "follow") {
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response());
    }
    // follow: stream what is appended until the pod is gone or the server closes.
    let state = state.clone();
    let (ns, name) = (ns.to_owned(), name.to_owned());
    let sent = text.len();
    let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(text))]);
    let rest = futures::stream::unfold(
        (state, ns, name, container, sent),
        |(state, ns, name, container, sent)| async move {
            loop {
                if *state.closing.borrow() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let all = state
                    .pod_logs
                    .read(&ns, &name, container.as_deref())
                    .unwrap_or_default();
                if all.len() > sent {
                    let chunk = Bytes::copy_from_slice(&all[sent..]);
                    let n = all.len();
                    return Some((Ok(chunk), (state, ns, name, container, n)));
                }
                let pods = state.lock().registry.lookup("", "v1", "pods")?;
                if state.lock().get(&pods, Some(&ns), &name).is_err() {
                    return None;
                }
            }
        },
    );
    use futures::StreamExt as _;
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(first.chain(rest)))
        .expect("valid response"))
}
