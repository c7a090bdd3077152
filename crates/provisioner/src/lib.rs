//! The KubeDB provisioner for `MSSQLServer` and `Singlestore`: watches the databases and creates,
//! keeps and removes their StatefulSets, Services, Secrets, PodDisruptionBudgets and cert-manager
//! Certificates, and keeps their status (conditions and phase) current.
//!
//! Structure (see `docs/provisioner.md`): [`reconcile`] observes the world, [`build`] (pure)
//! turns a database and its Version into the desired children, the reconciler applies them with
//! server-side apply (only when something differs), and [`status`] (pure) computes conditions,
//! phase and transition Events.
//!
//! Other crates (the ops-manager's tests) run the controllers in-process with [`run`].

pub mod build;
pub mod cache;
pub mod config;
pub mod controller;
pub mod database;
pub mod error;
pub mod health;
pub mod health_check;
pub mod metrics;
pub mod password;
pub mod plan;
pub mod reconcile;
pub mod status;

use std::sync::Arc;

use api::{MSSQLServer, Singlestore};
use operator_common::OperatorContext;
use operator_common::events::EventPublisher;

pub use config::{Config, HealthCheckMode};
pub use metrics::Metrics;

/// Reporting controller name of the provisioner's Events.
pub const REPORTING_CONTROLLER: &str = "kubedb-provisioner";

/// Registers the provisioner's metrics in `ctx.registry` and runs the MSSQLServer and Singlestore
/// controllers until they stop (they run until the future is dropped).
///
/// Namespaces: `config.namespaces`, else `ctx.namespaces`, else all namespaces.
pub async fn run(ctx: OperatorContext, config: Config) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::register(&ctx.registry)?);
    let namespaces = if config.namespaces.is_empty() {
        ctx.namespaces.clone()
    } else {
        config.namespaces.clone()
    };
    let events = EventPublisher::new(
        ctx.client.clone(),
        REPORTING_CONTROLLER,
        config.instance.clone(),
    );
    let slots = config.max_concurrent_reconciles.max(1);
    let context = Arc::new(reconcile::Context {
        client: ctx.client.clone(),
        config,
        metrics,
        events,
        probes: health_check::SqlProbes::default(),
        errors: Default::default(),
        slots: Arc::new(tokio::sync::Semaphore::new(slots)),
    });
    tracing::info!(
        health_check = context.config.health_check.as_str(),
        namespaces = ?namespaces,
        "starting the MSSQLServer and Singlestore controllers"
    );
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    // A JoinSet aborts the controllers when this future is dropped (leadership lost, SIGTERM).
    let mut controllers = tokio::task::JoinSet::new();
    for scope in scopes {
        controllers.spawn(controller::run_kind::<MSSQLServer>(
            context.clone(),
            scope.clone(),
        ));
        controllers.spawn(controller::run_kind::<Singlestore>(context.clone(), scope));
    }
    while let Some(result) = controllers.join_next().await {
        result?;
    }
    anyhow::bail!("the provisioner's controllers stopped")
}
