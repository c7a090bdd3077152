//! Shared watch caches of the simulated cluster and the event loop that drives each controller.
//!
//! One reflector per kind feeds every controller. A change of a watched kind wakes the controllers
//! interested in it (wake-ups coalesce: a burst of events causes one pass). Each controller pass is
//! level-triggered: it looks at the whole cache and writes only what differs, so a pass with
//! nothing to do sends no request. A pass may also ask to run again at a time (explicit simulated
//! delays such as `--pod-start-delay`); nothing polls.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Delay before a failed pass (or object) is tried again.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_millis(200);

/// Kinds the simulated cluster watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    StatefulSet,
    Deployment,
    PersistentVolumeClaim,
    PodDisruptionBudget,
    Service,
    Secret,
    Certificate,
    Issuer,
    ClusterIssuer,
}

/// Which controllers to wake when a kind changes.
#[derive(Default)]
pub struct Wakers {
    by_kind: HashMap<Kind, Vec<Arc<Notify>>>,
}

impl Wakers {
    /// Registers a controller's wake-up for changes of `kinds`.
    pub fn subscribe(&mut self, kinds: &[Kind]) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        for kind in kinds {
            self.by_kind.entry(*kind).or_default().push(notify.clone());
        }
        // Run once at start even if nothing changes.
        notify.notify_one();
        notify
    }

    fn wake(&self, kind: Kind) {
        for notify in self.by_kind.get(&kind).into_iter().flatten() {
            notify.notify_one();
        }
    }
}

/// Starts a reflector for a typed kind on all namespaces; its store fills as events arrive.
pub fn typed<K>(
    tasks: &mut JoinSet<()>,
    client: &Client,
    kind: Kind,
    wakers: Arc<Wakers>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    tasks.spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::debug!(?kind, %error, "sim watch error (the watcher retries)");
            }
            wakers.wake(kind);
        }
    });
    store
}

/// Starts a reflector for a custom resource kind.
pub fn dynamic(
    tasks: &mut JoinSet<()>,
    client: &Client,
    kind: Kind,
    resource: ApiResource,
    wakers: Arc<Wakers>,
) -> Store<DynamicObject> {
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    tasks.spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::debug!(?kind, %error, "sim watch error (the watcher retries)");
            }
            wakers.wake(kind);
        }
    });
    store
}

/// A controller: one level-triggered pass over its caches, returning when to run again at the
/// latest (an explicit simulated delay), if at all.
pub trait Pass: Send + 'static {
    fn pass(&mut self) -> impl Future<Output = anyhow::Result<Option<Duration>>> + Send;
}

/// Runs a controller: one pass per wake-up, plus one when the pass's requested delay expires.
/// A failing pass is logged and retried after a short pause (or on the next change).
pub fn run_controller<C: Pass>(
    tasks: &mut JoinSet<()>,
    name: &'static str,
    wake: Arc<Notify>,
    mut controller: C,
) {
    tasks.spawn(async move {
        let mut next: Option<Duration> = None;
        loop {
            match next {
                Some(delay) => {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                None => wake.notified().await,
            }
            next = match controller.pass().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(controller = name, error = %format!("{error:#}"), "sim controller pass failed");
                    Some(RETRY_AFTER_ERROR)
                }
            };
        }
    });
}

/// Waits until every store has its initial list.
pub async fn wait_ready<K>(store: &Store<K>) -> anyhow::Result<()>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store
        .wait_until_ready()
        .await
        .map_err(|_| anyhow::anyhow!("sim informer stopped before its first list"))
}

/// Combines two optional delays into the earlier one.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
