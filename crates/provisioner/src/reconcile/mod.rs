//! One reconcile of a database, as its steps: [`observe`] reads the world (caches and user
//! secrets), [`validate`] turns what was read into the desired children or the reason it cannot
//! ([`crate::build`] does the building), [`apply`] writes what differs and prunes what the spec
//! no longer produces, [`health`] checks the database itself, [`status`] writes conditions and
//! phase, and [`finalize`] owns the finalizer and the deletion. The pure parts live in
//! [`crate::build`], [`validate`] and [`crate::status`]; the other modules only read and write the
//! API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use operator_common::events::EventPublisher;

use crate::cache::{Caches, Compact};
use crate::config::{Config, HealthCheckMode};
use crate::controller::KindContext;
use crate::database::{Database, DbRef};
use crate::error::{Error, Result};
use crate::health::ProbeSettings;
use crate::health_check::SqlProbes;
use crate::metrics::Metrics;
use crate::status::Health;

pub mod apply;
pub mod finalize;
pub mod health;
pub mod io;
pub mod observe;
pub mod status;
pub mod validate;

pub use finalize::do_not_terminate_message;
pub use io::certificate_resource;
pub use validate::{cert_manager_missing, pinned_target, version_blocker};

/// How often a blocked database is looked at again.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(10);

/// Shared state of the reconcilers.
pub struct Context {
    /// Client with the provisioner's user agent.
    pub client: Client,
    /// Configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher (`kubedb-provisioner`).
    pub events: EventPublisher,
    /// SQL probe state (`--health-check=sql`).
    pub probes: SqlProbes,
    /// The last error reported per database, for one Warning Event per distinct error.
    pub errors: ErrorReports,
    /// Reconcile slots (`--max-concurrent-reconciles`).
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// A reconcile's slot (one of `--max-concurrent-reconciles`), given back while it waits for a
/// SQL probe.
pub struct Slot {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: prometheus::IntGauge,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Slot {
    /// Waits for a free slot of `slots`, counted in `waiting` meanwhile.
    pub async fn acquire(
        slots: Arc<tokio::sync::Semaphore>,
        waiting: prometheus::IntGauge,
    ) -> Slot {
        let mut slot = Slot {
            slots,
            waiting,
            permit: None,
        };
        slot.reacquire().await;
        slot
    }

    /// Gives the slot back (until [`Slot::reacquire`]).
    pub fn release(&mut self) {
        self.permit = None;
    }

    /// Takes a slot again if this one was given back.
    pub async fn reacquire(&mut self) {
        /// Counts a wait in the gauge until it ends or is cancelled.
        struct Waiting<'a>(&'a prometheus::IntGauge);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        if self.permit.is_none() {
            self.waiting.inc();
            let _waiting = Waiting(&self.waiting);
            // The semaphore is never closed.
            self.permit = self.slots.clone().acquire_owned().await.ok();
        }
    }
}

/// The last error reported per database (`kind/namespace/name`), so a failing reconcile publishes
/// one Warning Event per distinct error rather than one per retry.
#[derive(Debug, Default)]
pub struct ErrorReports(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl ErrorReports {
    /// Records the outcome of a reconcile; returns the error message when it is new for `key`.
    pub fn transition(&self, key: &str, error: Option<String>) -> Option<String> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            None => {
                last.remove(key);
                None
            }
            Some(message) if last.get(key) == Some(&message) => None,
            Some(message) => {
                last.insert(key.to_owned(), message.clone());
                Some(message)
            }
        }
    }
}

/// Reconciles one database and records metrics.
///
/// The cached database is read as its typed kind here, once per reconcile.
pub async fn reconcile<K: Database>(
    db: Arc<Compact<K>>,
    kind_ctx: Arc<KindContext<K>>,
) -> Result<Action> {
    let ctx = &kind_ctx.shared;
    let caches = &kind_ctx.caches;
    let namespace = db.namespace().unwrap_or_default();
    let result = match kind_ctx.ready.ready().await {
        Ok(()) => {
            let mut slot = Slot::acquire(ctx.slots.clone(), ctx.metrics.waiting.clone()).await;
            let start = Instant::now();
            let result = match db.typed() {
                // Boxed: a reconcile waiting for its slot holds only this small future.
                Ok(typed) => Box::pin(reconcile_inner(&typed, ctx, caches, &mut slot)).await,
                Err(source) => Err(Error::Serialization {
                    what: format!("{} {namespace}/{}", K::KIND.as_str(), db.name_any()),
                    source,
                }),
            };
            (result, start.elapsed())
        }
        Err(e) => (Err(e), Duration::ZERO),
    };
    let (result, took) = result;
    ctx.metrics
        .reconciled(K::KIND, took, result.as_ref().err().map(Error::category));
    let key = format!("{}/{namespace}/{}", K::KIND.as_str(), db.name_any());
    let reportable = result
        .as_ref()
        .err()
        .filter(|e| !e.is_conflict())
        .map(ToString::to_string);
    if let Some(message) = ctx.errors.transition(&key, reportable) {
        let event =
            operator_common::events::EventSpec::warning("ReconcileFailed", "Reconcile", message);
        ctx.events.publish(db.as_ref(), event).await;
    }
    if let Err(error) = &result {
        if error.is_conflict() {
            tracing::debug!(kind = K::KIND.as_str(), db = %db.name_any(), %error, "conflict; retrying");
        } else {
            tracing::warn!(kind = K::KIND.as_str(), db = %db.name_any(),
                %namespace, %error, "reconcile failed");
        }
    }
    result
}

/// How long after a conflict a database is looked at again at the latest.
///
/// A 409 means the API server holds a newer version of the object than our cache: the watch event
/// carrying it triggers the next reconcile (at once if it is already queued), so this is only a
/// safety net. Retrying conflicts quickly instead made a provisioner whose caches lagged under
/// load spend its time on reconciles bound to conflict again (see `docs/performance.md`).
pub const CONFLICT_RECHECK: Duration = Duration::from_secs(2);

/// Requeue policy after an error: conflicts wait for the newer object (see
/// [`CONFLICT_RECHECK`]), everything else is retried after a pause.
pub fn error_policy<K: Database>(
    _db: Arc<Compact<K>>,
    error: &Error,
    _ctx: Arc<KindContext<K>>,
) -> Action {
    if error.is_conflict() {
        Action::requeue(CONFLICT_RECHECK)
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}

/// The steps of one reconcile of a live (not deleted) database.
async fn reconcile_inner<K: Database>(
    db: &K,
    ctx: &Context,
    caches: &Caches<K>,
    slot: &mut Slot,
) -> Result<Action> {
    let r = DbRef::of(db);
    if db.meta().deletion_timestamp.is_some() {
        return finalize::finalize(db, &r, ctx, caches).await;
    }
    if finalize::add_finalizer(db, &r, ctx).await? {
        // The update triggers the next reconcile.
        return Ok(Action::await_change());
    }
    let observed = observe::observe(db, &r, ctx, caches).await?;
    let desired = validate::desired(db, &observed, ctx.config.agent_image.as_deref());
    // While paused the ops-manager owns the children (it may be between two StatefulSets of an
    // update): nothing is judged then.
    let refused = match &desired {
        Ok(desired) if !db.halted() && !observed.paused => {
            let live: Vec<_> = observed
                .children
                .sets
                .iter()
                .filter_map(|s| s.typed().ok())
                .collect();
            validate::refusal(&live, &desired.stateful_sets, db.version_name())
        }
        _ => None,
    };
    let applied = apply::apply(ctx, &r, &observed, desired, refused).await?;
    let started = status::provisioning_started(db, &observed, &applied);
    let health = if applied.changes.is_ok() && started && !db.halted() {
        health::check(ctx, db, &r, &observed.children.pods, slot).await?
    } else {
        Health::default()
    };
    status::update(ctx, db, &r, &observed, &applied, started, health).await?;
    Ok(requeue(ctx, db, &r, applied.changes.is_ok()))
}

/// When a database is looked at again although nothing changed: soon while it is blocked (a
/// missing Version or user secret is not watched), when its next SQL probe is due, or after the
/// resync period.
fn requeue<K: Database>(ctx: &Context, db: &K, r: &DbRef, planned: bool) -> Action {
    match (planned, ctx.config.health_check) {
        (false, _) => Action::requeue(BLOCKED_RECHECK),
        (true, HealthCheckMode::Sql) if !db.halted() => {
            let settings = ProbeSettings::from_spec(&db.health_checker());
            Action::requeue(ctx.probes.next_due(&r.key(), &settings))
        }
        _ => Action::requeue(ctx.config.resync_period),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_bound_reconciles_and_are_given_back_for_probes() {
        use futures::FutureExt;
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let waiting = prometheus::IntGauge::new("w", "w").unwrap();
        let mut first = Slot::acquire(slots.clone(), waiting.clone()).await;
        // A second reconcile waits while the only slot is taken, and is counted as waiting.
        let mut second = Box::pin(Slot::acquire(slots.clone(), waiting.clone()));
        assert!((&mut second).now_or_never().is_none());
        assert_eq!(waiting.get(), 1);
        // The first gives its slot back (a SQL probe): the second gets it.
        first.release();
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the released slot is taken");
        assert_eq!(waiting.get(), 0);
        // The first waits for a slot again until the second finishes.
        {
            let mut again = Box::pin(first.reacquire());
            assert!((&mut again).now_or_never().is_none());
        }
        assert_eq!(waiting.get(), 0, "a dropped wait is not counted");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), first.reacquire())
            .await
            .expect("the slot is free again");
        assert_eq!(slots.available_permits(), 0);
        drop(first);
        assert_eq!(slots.available_permits(), 1);
    }

    #[test]
    fn errors_are_reported_once_per_distinct_message() {
        let reports = ErrorReports::default();
        assert_eq!(
            reports.transition("a", Some("boom".into())).as_deref(),
            Some("boom")
        );
        assert_eq!(reports.transition("a", Some("boom".into())), None);
        assert_eq!(
            reports.transition("a", Some("bang".into())).as_deref(),
            Some("bang")
        );
        assert_eq!(reports.transition("a", None), None);
        assert_eq!(
            reports.transition("a", Some("bang".into())).as_deref(),
            Some("bang")
        );
    }
}
