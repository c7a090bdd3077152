//! The KubeDB ops-manager for `MSSQLServerOpsRequest` and `SinglestoreOpsRequest`: UpdateVersion.
//!
//! Structure (house style: pure planning, thin I/O):
//! - [`model`]: the data the step machine sees.
//! - [`validate`], [`queue`], [`plan`], [`records`], [`machine`]: pure decisions with table tests.
//! - `observe` (reads the API into a [`model::World`]), `act` (writes: status first, then the
//!   effect), `controller` (watches and reconcile loop), [`metrics`].
//!
//! Start it with [`run`] inside `operator_common::run_operator`, or directly in tests.

pub mod machine;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod queue;
pub mod records;
pub mod validate;

mod act;
mod controller;
pub mod events;
mod kinds;
mod observe;

#[cfg(test)]
mod testutil;

use std::time::Duration;

pub use controller::FINALIZER;
pub use machine::MachineConfig;

/// Settings of the ops-manager controllers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Timeout of a request that sets no `spec.timeout`.
    pub default_timeout: Duration,
    /// How often a waiting request is looked at again when no watch event arrives.
    pub poll_interval: Duration,
    /// How long the agents get to hand an availability group's primary role over before the
    /// primary is evicted anyway (`SwitchoverPrimary--<pod>`).
    pub switchover_timeout: Duration,
    /// Reporting instance of Events (usually the pod name).
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            switchover_timeout: Duration::from_secs(30),
            instance: None,
        }
    }
}

/// Runs the MSSQLServerOpsRequest and SinglestoreOpsRequest controllers until one fails.
///
/// Watches `ctx.namespaces` (all namespaces when empty) and registers the metrics in
/// `ctx.registry`.
pub async fn run(ctx: operator_common::OperatorContext, config: Config) -> anyhow::Result<()> {
    controller::run(ctx, config).await
}
