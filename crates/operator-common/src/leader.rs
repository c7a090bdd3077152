//! Running controllers only while this process holds the leader-election Lease.
//!
//! With two replicas of an operator, exactly one runs controllers; the other waits and takes over
//! when the Lease expires. Losing the Lease while leading ends the process with an error (the pod
//! restarts and waits again), which is the conservative choice: two leaders must never overlap.
//! On SIGTERM the leader stops its controllers and releases the Lease at once, so a replacement
//! does not wait for expiry.

use std::future::Future;

use anyhow::Context as _;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use prometheus::IntGauge;

/// How (and whether) to elect a leader.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// When false, controllers start at once and no Lease is used.
    pub enabled: bool,
    /// Name of the Lease object.
    pub lease_name: String,
    /// Namespace of the Lease object.
    pub namespace: String,
    /// This process's identity, recorded as the Lease holder.
    pub identity: String,
    /// Lease duration in seconds: how long a silent leader keeps the Lease.
    pub lease_duration_seconds: u64,
    /// Seconds before expiry at which the leader renews.
    pub renew_grace_seconds: u64,
}

impl LeaderElection {
    /// Defaults for an operator: 15 s Lease, renewed 5 s before it expires.
    pub fn new(enabled: bool, lease_name: &str, namespace: String, identity: String) -> Self {
        Self {
            enabled,
            lease_name: lease_name.to_owned(),
            namespace,
            identity,
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
        }
    }
}

/// Runs `controllers` while leading, until `shutdown` resolves. `leader` is set to 1 while this
/// process runs controllers and 0 otherwise. `on_leading` is called when controllers start.
pub async fn run_controllers<F, Fut>(
    client: kube::Client,
    election: LeaderElection,
    leader: IntGauge,
    shutdown: impl Future<Output = ()>,
    controllers: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::pin!(shutdown);
    if !election.enabled {
        leader.set(1);
        let result = tokio::select! {
            result = controllers() => result.context("controllers stopped"),
            () = &mut shutdown => Ok(()),
        };
        leader.set(0);
        return result;
    }

    let params = LeaseParams::new(
        election.identity.clone(),
        election.lease_duration_seconds,
        election.renew_grace_seconds,
    );
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_parameters(params)
        .build()
        .await
        .with_context(|| {
            format!(
                "cannot set up leader election on Lease {}/{}",
                election.namespace, election.lease_name
            )
        })?;
    tracing::info!(lease = %election.lease_name, namespace = %election.namespace,
        identity = %election.identity, "waiting for leadership");

    let mut start = Some(controllers);
    let mut running: Option<tokio::task::JoinHandle<anyhow::Result<()>>> = None;
    let outcome = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            changed = manager.changed() => match changed {
                Ok(true) => {
                    tracing::info!(identity = %election.identity, "acquired leadership; starting controllers");
                    leader.set(1);
                    if let Some(start) = start.take() {
                        running = Some(tokio::spawn(start()));
                    }
                }
                Ok(false) => break Err(anyhow::anyhow!("lost leadership of Lease {}/{}", election.namespace, election.lease_name)),
                Err(err) => tracing::warn!(error = %err, "leader election error; retrying"),
            },
            joined = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                break match joined {
                    Ok(Ok(())) => Err(anyhow::anyhow!("controllers stopped unexpectedly")),
                    Ok(Err(err)) => Err(err.context("controllers failed")),
                    Err(err) => Err(anyhow::anyhow!("controllers panicked: {err}")),
                };
            }
        }
    };
    if let Some(task) = running.take() {
        task.abort();
        let _ = task.await;
    }
    leader.set(0);
    if let Err(err) = manager.release().await {
        tracing::warn!(error = %err, "cannot release the leader-election Lease");
    } else {
        tracing::info!("released the leader-election Lease");
    }
    outcome
}
