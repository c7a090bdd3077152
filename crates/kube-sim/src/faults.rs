//! Fault injection: rules that fail, delay or cut off matching requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::accounting::RequestInfo;
use crate::error::ApiError;
use crate::meta::splitmix64;
use crate::registry::ResourceInfo;

/// A fault rule as set through the library or `POST /sim/faults` (JSON, camelCase).
///
/// Matching: every given field must equal the request's (`userAgent` matches as a prefix); absent
/// fields match anything. Effects: `latencyMs` delays each matching request; `code` (+ `reason`,
/// `message`) fails it; `dropWatches` closes matching open watch streams when the rule is added.
/// `times` limits the rule to the next N matching requests; `fraction` (0..1, with `seed`) applies
/// it to a deterministic pseudo-random share of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultSpec {
    /// Verb to match (get, list, watch, create, update, patch, delete, deletecollection).
    pub verb: Option<String>,
    /// API group to match.
    pub group: Option<String>,
    /// Resource (plural) to match.
    pub resource: Option<String>,
    /// Subresource to match ("" = main resource only).
    pub subresource: Option<String>,
    /// Namespace to match.
    pub namespace: Option<String>,
    /// Object name to match.
    pub name: Option<String>,
    /// User-Agent prefix to match.
    pub user_agent: Option<String>,
    /// HTTP status code to fail with.
    pub code: Option<u16>,
    /// Status reason of the failure (default derived from the code).
    pub reason: Option<String>,
    /// Message of the failure.
    pub message: Option<String>,
    /// Delay added before the request is served.
    pub latency_ms: Option<u64>,
    /// Close matching open watch streams when the rule is added.
    pub drop_watches: bool,
    /// Apply to the next N matching requests only.
    pub times: Option<u64>,
    /// Apply to this fraction of matching requests (deterministic with `seed`).
    pub fraction: Option<f64>,
    /// Seed for `fraction`.
    pub seed: Option<u64>,
}

/// A rule with its counters.
#[derive(Debug)]
pub struct FaultRule {
    /// Rule id (for removal).
    pub id: u64,
    /// The rule.
    pub spec: FaultSpec,
    applied: AtomicU64,
    seen: AtomicU64,
}

/// A rule's state as reported by `GET /sim/faults`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultStatus {
    /// Rule id.
    pub id: u64,
    /// The rule.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// How many times it was applied.
    pub applied: u64,
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn eq(want: &Option<String>, actual: &str) -> bool {
    want.as_deref().is_none_or(|w| w == actual)
}

impl FaultRule {
    fn matches(&self, r: &RequestInfo) -> bool {
        let s = &self.spec;
        eq(&s.verb, &r.verb)
            && eq(&s.group, &r.group)
            && eq(&s.resource, &r.resource)
            && eq(&s.subresource, &r.subresource)
            && eq(&s.namespace, &r.namespace)
            && eq(&s.name, &r.name)
            && s.user_agent
                .as_deref()
                .is_none_or(|ua| r.user_agent.starts_with(ua))
    }

    /// Whether an open watch of `info` in `namespace` is one this rule drops.
    pub fn matches_watch(&self, info: &ResourceInfo, namespace: Option<&str>) -> bool {
        let s = &self.spec;
        let hit = s.drop_watches
            && s.verb.as_deref().is_none_or(|v| v == "watch")
            && eq(&s.group, &info.group)
            && eq(&s.resource, &info.plural)
            && s.namespace
                .as_deref()
                .is_none_or(|ns| Some(ns) == namespace);
        if hit {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Decides whether this matching request is affected (counting `times` and `fraction`).
    fn take(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        if let Some(times) = self.spec.times
            && self.applied.load(Ordering::Relaxed) >= times
        {
            return false;
        }
        if let Some(f) = self.spec.fraction {
            let x = splitmix64(self.spec.seed.unwrap_or(0) ^ splitmix64(n));
            if (x as f64 / u64::MAX as f64) >= f {
                return false;
            }
        }
        self.applied.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// What the rules decided for one request.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Delay before serving.
    pub latency: Duration,
    /// Error to answer with instead of serving.
    pub error: Option<ApiError>,
}

/// The rule set.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<Arc<FaultRule>>>,
    next_id: AtomicU64,
    drops: broadcast::Sender<Arc<FaultRule>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            drops: broadcast::channel(64).0,
        }
    }
}

impl Faults {
    /// Adds a rule and returns its id. A `dropWatches` rule closes matching open watches now.
    pub fn add(&self, spec: FaultSpec) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rule = Arc::new(FaultRule {
            id,
            spec,
            applied: AtomicU64::new(0),
            seen: AtomicU64::new(0),
        });
        if rule.spec.drop_watches {
            let _ = self.drops.send(rule.clone());
        }
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
        id
    }

    /// Removes one rule; false if unknown.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Every rule with its counter.
    pub fn list(&self) -> Vec<FaultStatus> {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| FaultStatus {
                id: r.id,
                spec: r.spec.clone(),
                applied: r.applied.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Notifications of `dropWatches` rules, for open watch streams.
    pub fn watch_drops(&self) -> broadcast::Receiver<Arc<FaultRule>> {
        self.drops.subscribe()
    }

    /// Evaluates the rules for a request.
    pub fn check(&self, r: &RequestInfo) -> Outcome {
        let rules: Vec<Arc<FaultRule>> =
            self.rules.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Outcome::default();
        for rule in rules
            .iter()
            .filter(|rule| !rule.spec.drop_watches && rule.matches(r))
        {
            if !rule.take() {
                continue;
            }
            if let Some(ms) = rule.spec.latency_ms {
                out.latency += Duration::from_millis(ms);
            }
            if let (Some(code), None) = (rule.spec.code, &out.error) {
                let reason = rule
                    .spec
                    .reason
                    .clone()
                    .unwrap_or_else(|| reason_for(code).to_owned());
                let message = rule
                    .spec
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("injected fault: {reason} (rule {})", rule.id));
                out.error = Some(ApiError::new(code, &reason, message));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, resource: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            resource: resource.into(),
            namespace: "ns".into(),
            user_agent: "kube-sim/kubelet".into(),
            ..Default::default()
        }
    }

    #[test]
    fn fails_the_next_n_matching_requests() {
        let f = Faults::default();
        f.add(FaultSpec {
            verb: Some("get".into()),
            resource: Some("pods".into()),
            code: Some(500),
            times: Some(2),
            ..Default::default()
        });
        assert!(f.check(&req("list", "pods")).error.is_none());
        let errs: Vec<bool> = (0..4)
            .map(|_| f.check(&req("get", "pods")).error.is_some())
            .collect();
        assert_eq!(errs, [true, true, false, false]);
        let status = f.list();
        assert_eq!(status[0].applied, 2);
        assert_eq!(f.check(&req("get", "pods")).error, None);
    }

    #[test]
    fn errors_carry_code_and_reason() {
        let f = Faults::default();
        f.add(FaultSpec {
            user_agent: Some("kube-sim/".into()),
            code: Some(409),
            ..Default::default()
        });
        let e = f.check(&req("update", "pods")).error.unwrap();
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        f.clear();
        assert!(f.check(&req("update", "pods")).error.is_none());
    }

    #[test]
    fn fractions_are_deterministic() {
        let run = || {
            let f = Faults::default();
            f.add(FaultSpec {
                code: Some(503),
                fraction: Some(0.3),
                seed: Some(42),
                ..Default::default()
            });
            (0..200)
                .map(|_| f.check(&req("get", "pods")).error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|x| **x).count();
        assert!((30..90).contains(&hits), "{hits} of 200");
    }

    #[test]
    fn latency_adds_up() {
        let f = Faults::default();
        f.add(FaultSpec {
            latency_ms: Some(5),
            ..Default::default()
        });
        f.add(FaultSpec {
            latency_ms: Some(7),
            resource: Some("pods".into()),
            ..Default::default()
        });
        assert_eq!(
            f.check(&req("get", "pods")).latency,
            Duration::from_millis(12)
        );
        assert!(f.remove(1));
        assert!(!f.remove(1));
    }
}
