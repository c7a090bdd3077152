//! The health step: whether the database serves, from its pods and, with `--health-check=sql`,
//! from SQL probes of its primary endpoint.

use std::sync::Arc;

use api::names;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;

use super::io::{get_secret, secret_strings};
use super::{Context, Slot};
use crate::config::HealthCheckMode;
use crate::database::{Database, DbRef};
use crate::error::Result;
use crate::health::{self, ProbeSettings, SqlTarget};
use crate::health_check::pod_health;
use crate::status::Health;

/// Checks whether the database serves: Ready pods behind its primary endpoint
/// (`--health-check=pod-readiness`), then, with `--health-check=sql`, a SQL probe of the primary
/// endpoint (cached for the period of `spec.healthChecker`).
pub async fn check<K: Database>(
    ctx: &Context,
    db: &K,
    r: &DbRef,
    pods: &[Arc<Pod>],
    slot: &mut Slot,
) -> Result<Health> {
    let primary_sets = db.primary_sets();
    let role = db.availability_group().map(|_| names::ROLE_PRIMARY);
    let pods_health = pod_health(pods, &primary_sets, role);
    if ctx.config.health_check == HealthCheckMode::PodReadiness {
        ctx.metrics
            .health_check(r.kind, "pod-readiness", pods_health.serving);
        return Ok(Health {
            accepting: pods_health.serving,
            ready: pods_health.serving,
            message: pods_health.message,
        });
    }
    if !pods_health.serving {
        // Nothing can answer: skip the probe (and its timeout).
        return Ok(Health {
            accepting: false,
            ready: false,
            message: pods_health.message,
        });
    }
    let settings = ProbeSettings::from_spec(&db.health_checker());
    let key = r.key();
    if let Some(cached) = ctx.probes.cached(&key, &settings) {
        return Ok(cached);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    let auth_name = db.auth_secret_name();
    let Some(auth) = get_secret(&secrets, &auth_name).await? else {
        return Ok(Health {
            accepting: false,
            ready: false,
            message: format!("the auth secret {auth_name} does not exist"),
        });
    };
    let data = secret_strings(&auth);
    let (service, port) = db.sql_endpoint();
    let target = SqlTarget::new(
        db.sql_engine(),
        format!("{service}.{}.svc", r.namespace),
        port,
        data.get("username")
            .cloned()
            .unwrap_or_else(|| db.admin_user().to_owned()),
        data.get("password").cloned().unwrap_or_default(),
    )
    .with_settings(&settings);
    let target = match db.sql_ca_secret() {
        None => target,
        Some(name) => {
            let ca = get_secret(&secrets, &name)
                .await?
                .and_then(|s| secret_strings(&s).remove("ca.crt"))
                .filter(|ca| !ca.trim().is_empty());
            let Some(ca_pem) = ca else {
                return Ok(Health {
                    accepting: false,
                    ready: false,
                    message: format!(
                        "waiting for cert-manager to write ca.crt into the server certificate secret {name}: the SQL probe verifies the server's certificate with it"
                    ),
                });
            };
            SqlTarget {
                tls: health::SqlTls::Verified {
                    ca_pem: ca_pem.into_bytes(),
                },
                ..target
            }
        }
    };
    // A probe can wait up to its timeout on an unreachable database: not on a reconcile slot.
    slot.release();
    let report = health::check_sql(&target).await;
    slot.reacquire().await;
    let result = ctx.probes.record(&key, &settings, &report);
    ctx.metrics.health_check(r.kind, "sql", report.is_healthy());
    Ok(result)
}
