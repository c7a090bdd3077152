//! Watch streams: newline-delimited JSON events from a resourceVersion, with bookmarks, selectors,
//! timeouts, `sendInitialEvents` and 410 Gone (as an ERROR event) for compacted history.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::ServerState;
use super::table;
use crate::cluster::present;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, EventType, Object};

/// Parameters of a watch request.
#[derive(Clone, Debug, Default)]
pub struct WatchParams {
    /// Namespace (None = all).
    pub namespace: Option<String>,
    /// `resourceVersion` ("" or "0" = start with the current state).
    pub resource_version: String,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Render objects as Table rows (kubectl get -w), with this `includeObject`.
    pub table: Option<String>,
    /// Send `PartialObjectMetadata` objects (metadata watches).
    pub metadata_only: bool,
}

impl WatchParams {
    fn selects(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta::namespace(obj) == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

struct Encoder {
    info: Arc<ResourceInfo>,
    version: String,
    table: Option<String>,
    metadata_only: bool,
}

impl Encoder {
    fn line(&self, kind: &str, obj: &Object) -> Bytes {
        let object = match &self.table {
            Some(include) => table::table(
                &self.info,
                &self.version,
                std::slice::from_ref(obj),
                include,
                None,
            ),
            None if self.metadata_only => table::partial_metadata(obj),
            None => return Self::finish(kind, &present(&self.info, &self.version, obj)),
        };
        Self::finish(kind, &object)
    }

    fn finish(kind: &str, object: &Value) -> Bytes {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\",\"object\":");
        serde_json::to_writer(&mut buf, object).expect("serializable");
        buf.extend_from_slice(b"}\n");
        Bytes::from(buf)
    }

    /// The event for a change as this watcher sees it, honouring selector transitions.
    fn change(&self, params: &WatchParams, change: &Change) -> Option<Bytes> {
        let now = params.selects(&change.object);
        let before = change.previous.as_ref().is_some_and(|p| params.selects(p));
        let kind = match (change.kind, before, now) {
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, _) => return None,
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            _ => return None,
        };
        if kind == change.kind
            && self.table.is_none()
            && !self.metadata_only
            && change.object.get("apiVersion").and_then(Value::as_str)
                == Some(&self.info.api_version(&self.version))
        {
            return Some(
                change
                    .line
                    .get_or_init(|| Self::finish(kind.as_str(), &change.object))
                    .clone(),
            );
        }
        Some(self.line(kind.as_str(), &change.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(&self.version), "metadata": metadata});
        Self::finish("BOOKMARK", &obj)
    }

    fn error(err: &ApiError) -> Bytes {
        Self::finish("ERROR", &err.to_status())
    }
}

/// What a new watch replays before live changes.
enum Initial {
    /// Synthetic ADDED events for the current objects, then (for `sendInitialEvents`) a bookmark
    /// at this resourceVersion.
    State(Vec<Object>, Option<u64>),
    /// Recorded changes after the requested resourceVersion.
    Changes(Vec<Arc<Change>>),
}

/// Opens a watch and returns the streaming response.
pub fn start(
    state: &Arc<ServerState>,
    info: Arc<ResourceInfo>,
    version: &str,
    params: WatchParams,
) -> ApiResult<Response> {
    let encoder = Encoder {
        info: info.clone(),
        version: version.to_owned(),
        table: params.table.clone(),
        metadata_only: params.metadata_only,
    };
    // Under the lock only the subscription and the Arcs of what to replay are taken; encoding
    // happens in the stream's task.
    let (rx, start_rv, initial) = {
        let mut cluster = state.lock();
        let current = cluster.store.current_rv();
        let col = cluster.store.collection(&info.gr());
        let rx = col.tx.subscribe();
        let from_state = params.resource_version.is_empty()
            || params.resource_version == "0"
            || params.send_initial_events;
        let initial = if from_state {
            let objects: Vec<Object> = col
                .iter_namespace(params.namespace.as_deref())
                .filter(|(_, o)| params.selects(o))
                .map(|(_, o)| o.clone())
                .collect();
            Initial::State(objects, params.send_initial_events.then_some(current))
        } else {
            let rv: u64 = params.resource_version.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resourceVersion {:?}",
                    params.resource_version
                ))
            })?;
            if rv < col.compacted_rv {
                let err = ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    col.compacted_rv
                ));
                return Ok(stream_response(vec![Encoder::error(&err)], None));
            }
            let from = col.history.partition_point(|c| c.rv <= rv);
            Initial::Changes(col.history.range(from..).cloned().collect())
        };
        (rx, current, initial)
    };
    let (tx, out) = mpsc::channel::<Bytes>(256);
    let state = state.clone();
    tokio::spawn(async move {
        let lines: Box<dyn Iterator<Item = Bytes> + Send> = match initial {
            Initial::State(objects, end) => Box::new(
                objects
                    .into_iter()
                    .map(|o| encoder.line("ADDED", &o))
                    .chain(end.map(|rv| encoder.bookmark(rv, true)))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            Initial::Changes(changes) => Box::new(
                changes
                    .iter()
                    .filter_map(|c| encoder.change(&params, c))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        pump(state, encoder, params, rx, tx, start_rv).await;
    });
    Ok(stream_response(Vec::new(), Some(out)))
}

async fn pump(
    state: Arc<ServerState>,
    encoder: Encoder,
    params: WatchParams,
    mut rx: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Bytes>,
    mut last_rv: u64,
) {
    let timeout = params.timeout.unwrap_or(Duration::from_secs(1800));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut bookmarks = tokio::time::interval(state.bookmark_interval);
    bookmarks.tick().await;
    let mut closing = state.closing.subscribe();
    let mut drops = state.faults.watch_drops();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(change) => {
                    last_rv = change.rv;
                    if let Some(line) = encoder.change(&params, &change)
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let err = ApiError::expired("the watch fell behind and was closed; relist");
                    let _ = tx.send(Encoder::error(&err)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = bookmarks.tick(), if params.bookmarks => {
                if tx.send(encoder.bookmark(last_rv, false)).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = closing.changed() => return,
            d = drops.recv() => {
                if d.is_ok_and(|rule| rule.matches_watch(&encoder.info, params.namespace.as_deref())) {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

fn stream_response(initial: Vec<Bytes>, rest: Option<mpsc::Receiver<Bytes>>) -> Response {
    let head = futures::stream::iter(initial.into_iter().map(Ok::<_, std::io::Error>));
    let tail = futures::stream::unfold(rest, |rx| async move {
        let mut rx = rx?;
        let line = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(line), Some(rx)))
    });
    use futures::StreamExt as _;
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(head.chain(tail)))
        .expect("valid response")
}
