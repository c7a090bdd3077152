//! The controllers: one per ops-request kind (and per watched namespace), each reconciling a
//! request by observing, deciding with the step machine, and acting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use operator_common::error::Error;

use crate::events::{EventPublisher, EventSpec};
use api::ops::{MSSQLServerOpsRequest, OpsRequestPhase, SinglestoreOpsRequest};

use crate::kinds::OpsKind;
use crate::machine::{self, MachineConfig};
use crate::metrics::Metrics;
use crate::model::DbKind;
use crate::{Config, act, observe};

/// Finalizer the ops-manager keeps on a request from just before it starts until the database is
/// resumed, so that deleting a running request still resumes the database.
pub const FINALIZER: &str = "ops.kubedb.com/ops-manager";

/// Reporting controller of the ops-manager's Events.
pub const EVENT_CONTROLLER: &str = "kubedb.com/ops-manager";

struct Ctx {
    client: Client,
    machine: MachineConfig,
    retry_after: Duration,
    metrics: Metrics,
    events: EventPublisher,
    progressing: Mutex<HashMap<(DbKind, String, String), bool>>,
    /// The error of each request's last action that failed (no action succeeded since), by
    /// request UID: shown in a Warning Event once per distinct error, and in the message of a
    /// timeout that it caused.
    action_errors: Mutex<HashMap<String, String>>,
}

impl Ctx {
    fn last_action_error(&self, uid: &str) -> Option<String> {
        let map = self.action_errors.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uid).cloned()
    }

    /// Records the outcome of an action; whether it is a failure not recorded before.
    fn record_action_error(&self, uid: &str, error: Option<String>) -> bool {
        let mut map = self.action_errors.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            None => {
                map.remove(uid);
                false
            }
            Some(error) => map.insert(uid.to_owned(), error.clone()).as_ref() != Some(&error),
        }
    }

    fn track(&self, kind: DbKind, ns: &str, name: &str, progressing: bool) {
        let mut map = self.progressing.lock().unwrap_or_else(|p| p.into_inner());
        if progressing {
            map.insert((kind, ns.to_owned(), name.to_owned()), true);
        } else {
            map.remove(&(kind, ns.to_owned(), name.to_owned()));
        }
        let count = map.keys().filter(|(k, _, _)| *k == kind).count();
        self.metrics
            .in_progress
            .with_label_values(&[kind.as_str()])
            .set(count as i64);
    }
}

pub async fn run(ctx: operator_common::OperatorContext, config: Config) -> anyhow::Result<()> {
    let metrics = Metrics::register(&ctx.registry)?;
    let shared = Arc::new(Ctx {
        client: ctx.client.clone(),
        machine: MachineConfig {
            default_timeout: config.default_timeout,
            poll: config.poll_interval,
            switchover_timeout: config.switchover_timeout,
        },
        retry_after: config.poll_interval.min(Duration::from_secs(1)),
        metrics,
        events: EventPublisher::new(
            ctx.client.clone(),
            EVENT_CONTROLLER,
            config.instance.clone(),
        ),
        progressing: Mutex::new(HashMap::new()),
        action_errors: Mutex::new(HashMap::new()),
    });
    let scopes: Vec<Option<String>> = if ctx.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.namespaces.iter().cloned().map(Some).collect()
    };
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    for scope in scopes {
        tasks.push(Box::pin(controller::<MSSQLServerOpsRequest>(
            shared.clone(),
            scope.clone(),
        )));
        tasks.push(Box::pin(controller::<SinglestoreOpsRequest>(
            shared.clone(),
            scope,
        )));
    }
    futures::future::join_all(tasks).await;
    anyhow::bail!("the ops-request controllers stopped")
}

fn api_in<K>(client: &Client, scope: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The active requests for database `db` in `ns`.
fn requests_for<K: OpsKind>(
    store: &Store<K>,
    ns: Option<String>,
    db: Option<&String>,
) -> Vec<ObjectRef<K>> {
    let (Some(ns), Some(db)) = (ns, db) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()) && r.database() == db.as_str())
        .filter(|r| {
            let v = r.view();
            !v.phase().is_final() || v.has_finalizer
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

async fn controller<K: OpsKind>(ctx: Arc<Ctx>, scope: Option<String>) {
    let client = ctx.client.clone();
    let requests: Api<K> = api_in(&client, &scope);
    let ctrl = Controller::new(requests, watcher::Config::default());
    let store = ctrl.store();
    let by_pod = store.clone();
    let by_db = store.clone();
    let by_peer = store.clone();
    let labels = format!("{}={}", api::names::LABEL_NAME, K::KIND.resource_name());
    ctrl.watches(
        api_in::<Pod>(&client, &scope),
        watcher::Config::default().labels(&labels),
        move |pod: Pod| {
            requests_for(
                &by_pod,
                pod.namespace(),
                pod.labels().get(api::names::LABEL_INSTANCE),
            )
        },
    )
    .watches(
        api_in::<K::Db>(&client, &scope),
        watcher::Config::default(),
        move |db: K::Db| requests_for(&by_db, db.namespace(), Some(&db.name_any())),
    )
    .watches(
        api_in::<K>(&client, &scope),
        watcher::Config::default(),
        move |r: K| {
            // A request that finishes or goes away lets the next one for its database start.
            requests_for(&by_peer, r.namespace(), Some(&r.database().to_owned()))
        },
    )
    .run(reconcile::<K>, error_policy::<K>, ctx)
    .for_each(|_| futures::future::ready(()))
    .await;
}

/// One reconcile. An error (an API request that failed, retried after a short delay) never fails
/// the request by itself.
async fn reconcile<K: OpsKind>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let kind = K::KIND;
    let Some(observed) = observe::observe::<K>(&ctx.client, &ns, &name).await? else {
        ctx.track(kind, &ns, &name, false);
        return Ok(Action::await_change());
    };
    let view = &observed.view;
    let uid = obj.uid().unwrap_or_default();
    let mut world = observed.world.clone();
    world.action_error = ctx.last_action_error(&uid);
    let decision = machine::next_action(view, &world, &ctx.machine);
    if let Some(why) = &decision.waiting {
        tracing::debug!(kind = kind.ops_kind(), %ns, %name, %why, "waiting");
    }
    if let Some(status) = &decision.status {
        act::write_status::<K>(&ctx.client, view, status).await?;
    }
    if decision.effect != machine::Effect::None {
        tracing::info!(kind = kind.ops_kind(), %ns, %name, effect = ?decision.effect, "acting");
        let performed =
            act::perform::<K>(&ctx.client, &observed.object, view, &decision.effect).await;
        if let Err(error) = performed {
            // Shown where the user looks, once per distinct error; the request's timeout holds
            // (the machine fails it with this error once the timeout has passed).
            let message = format!("{error}; retrying until the request's timeout");
            if ctx.record_action_error(&uid, Some(message.clone())) {
                let step = decision
                    .effect
                    .step_name()
                    .unwrap_or_else(|| "Act".to_owned());
                ctx.events
                    .publish(
                        &observed.object,
                        EventSpec::warning("ActionFailed", &step, message),
                    )
                    .await;
            }
            return Err(error);
        }
        ctx.record_action_error(&uid, None);
    }
    for event in decision.events.iter().cloned() {
        ctx.events.publish(&observed.object, event).await;
    }
    let phase = decision
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(view.phase());
    ctx.track(
        kind,
        &ns,
        &name,
        phase == OpsRequestPhase::Progressing && !view.deleting,
    );
    let op_type = view.op_type.as_str();
    if let Some(done) = &decision.finished {
        ctx.metrics
            .requests
            .with_label_values(&[kind.as_str(), op_type, done.phase.as_str()])
            .inc();
        if let Some(d) = done.duration {
            ctx.metrics
                .request_duration
                .with_label_values(&[kind.as_str(), op_type])
                .observe(d.as_secs_f64());
        }
        tracing::info!(kind = kind.ops_kind(), %ns, %name, phase = %done.phase, "request finished");
    }
    if let Some((step, d)) = decision.step {
        ctx.metrics
            .step_duration
            .with_label_values(&[kind.as_str(), step])
            .observe(d.as_secs_f64());
    }
    if decision.pod_restarted {
        ctx.metrics
            .pods_restarted
            .with_label_values(&[kind.as_str()])
            .inc();
    }
    Ok(match decision.requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy<K: OpsKind>(obj: Arc<K>, error: &Error, ctx: Arc<Ctx>) -> Action {
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[K::KIND.as_str()])
        .inc();
    tracing::warn!(kind = K::KIND.ops_kind(), name = %obj.name_any(), category = error.category(),
        %error, "reconcile failed; retrying");
    Action::requeue(ctx.retry_after)
}
