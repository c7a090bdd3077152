//! The agent's Prometheus series (prefix `kubedb_agent_`), in its own registry.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::mssql::decide::{Action, Local, Role};

/// Role values of [`Metrics::role`].
const ROLES: [&str; 4] = ["primary", "secondary", "resolving", "unknown"];

/// Every series the agent exports.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    /// `kubedb_agent_role{role}`: 1 for the local replica's current role, 0 for the others
    /// (`unknown`: SQL Server unreachable or not in the AG).
    pub role: IntGaugeVec,
    /// `kubedb_agent_lease_held`: 1 while this agent holds the primary Lease.
    pub lease_held: IntGauge,
    /// `kubedb_agent_ready`: what `/ready` answers (1 = 200).
    pub ready: IntGauge,
    /// `kubedb_agent_failovers_total`: promotions this agent carried out.
    pub failovers: IntCounter,
    /// `kubedb_agent_decisions_total{action}`: decisions taken, by action kind.
    pub decisions: IntCounterVec,
    /// `kubedb_agent_last_decision{action}`: 1 for the kind of the latest decision.
    pub last_decision: IntGaugeVec,
    /// `kubedb_agent_action_failures_total{action}`: actions that failed, by kind.
    pub action_failures: IntCounterVec,
    /// The action kinds of this agent's backend.
    kinds: &'static [&'static str],
}

impl Metrics {
    /// Registers every series of the SQL Server agent, with all label values present from the
    /// start.
    pub fn new() -> prometheus::Result<Self> {
        Self::with_kinds(&Action::KINDS)
    }

    /// Registers every series, with `kinds` as the action label values.
    pub fn with_kinds(kinds: &'static [&'static str]) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let role = IntGaugeVec::new(
            Opts::new(
                "kubedb_agent_role",
                "Current role of the local replica (1 for the current one)",
            ),
            &["role"],
        )?;
        let lease_held = IntGauge::new(
            "kubedb_agent_lease_held",
            "1 while this agent holds the database's primary Lease",
        )?;
        let ready = IntGauge::new("kubedb_agent_ready", "1 while /ready answers 200")?;
        let failovers = IntCounter::new(
            "kubedb_agent_failovers_total",
            "Promotions (forced failovers to the local replica) this agent carried out",
        )?;
        let decisions = IntCounterVec::new(
            Opts::new("kubedb_agent_decisions_total", "Decisions taken, by action"),
            &["action"],
        )?;
        let last_decision = IntGaugeVec::new(
            Opts::new(
                "kubedb_agent_last_decision",
                "1 for the action of the latest decision",
            ),
            &["action"],
        )?;
        let action_failures = IntCounterVec::new(
            Opts::new(
                "kubedb_agent_action_failures_total",
                "Actions that failed, by action",
            ),
            &["action"],
        )?;
        registry.register(Box::new(role.clone()))?;
        registry.register(Box::new(lease_held.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(last_decision.clone()))?;
        registry.register(Box::new(action_failures.clone()))?;
        for r in ROLES {
            role.with_label_values(&[r]).set(0);
        }
        for kind in kinds {
            decisions.with_label_values(&[kind]);
            last_decision.with_label_values(&[kind]).set(0);
            action_failures.with_label_values(&[kind]);
        }
        Ok(Self {
            registry,
            role,
            lease_held,
            ready,
            failovers,
            decisions,
            last_decision,
            action_failures,
            kinds,
        })
    }

    /// Records a decision.
    pub fn decided(&self, action: &Action) {
        self.decided_kind(action.kind());
    }

    /// Records a decision of this kind.
    pub fn decided_kind(&self, current: &str) {
        self.decisions.with_label_values(&[current]).inc();
        for kind in self.kinds {
            let value = i64::from(*kind == current);
            self.last_decision.with_label_values(&[kind]).set(value);
        }
    }

    /// Records the local replica's role.
    pub fn set_role(&self, local: &Local) {
        let current = match local {
            Local::Up(state) => match state.ag.as_ref().map(|ag| ag.role) {
                Some(Role::Primary) => "primary",
                Some(Role::Secondary) => "secondary",
                Some(Role::Resolving) => "resolving",
                None => "unknown",
            },
            Local::Unreachable => "unknown",
        };
        for r in ROLES {
            self.role
                .with_label_values(&[r])
                .set(i64::from(r == current));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mssql::decide::Reason;

    #[test]
    fn last_decision_is_one_hot_and_counts_accumulate() {
        let m = Metrics::new().unwrap();
        m.decided(&Action::RenewLease);
        m.decided(&Action::Wait(Reason::Serving));
        m.decided(&Action::RenewLease);
        assert_eq!(m.decisions.with_label_values(&["renew_lease"]).get(), 2);
        assert_eq!(m.decisions.with_label_values(&["wait"]).get(), 1);
        let hot: Vec<_> = Action::KINDS
            .iter()
            .filter(|k| m.last_decision.with_label_values(&[**k]).get() == 1)
            .collect();
        assert_eq!(hot, [&"renew_lease"]);
        m.set_role(&Local::Unreachable);
        assert_eq!(m.role.with_label_values(&["unknown"]).get(), 1);
        assert_eq!(m.role.with_label_values(&["primary"]).get(), 0);
    }
}
