//! Request accounting: cumulative counts of API requests by verb, resource and client.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What a request did, as accounting and fault rules see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource ("" if none).
    pub subresource: String,
    /// Namespace ("" if none).
    pub namespace: String,
    /// Object name ("" if none).
    pub name: String,
    /// The client's User-Agent.
    pub user_agent: String,
}

/// One row of `GET /sim/requests`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCount {
    /// Verb.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// User agent.
    pub user_agent: String,
    /// Requests since start.
    pub count: u64,
}

type Key = (String, String, String, String, String, String);

/// Cumulative request counters.
#[derive(Debug, Default)]
pub struct Accounting {
    counts: Mutex<BTreeMap<Key, u64>>,
}

impl Accounting {
    /// Counts one request.
    pub fn record(&self, r: &RequestInfo) {
        let key = (
            r.verb.clone(),
            r.group.clone(),
            r.resource.clone(),
            r.subresource.clone(),
            r.namespace.clone(),
            r.user_agent.clone(),
        );
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// Every counter, sorted by verb, group, resource, subresource, namespace, user agent.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(
                |((verb, group, resource, subresource, namespace, user_agent), count)| {
                    RequestCount {
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        subresource: subresource.clone(),
                        namespace: namespace.clone(),
                        user_agent: user_agent.clone(),
                        count: *count,
                    }
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_per_key() {
        let a = Accounting::default();
        let get = RequestInfo {
            verb: "get".into(),
            resource: "pods".into(),
            namespace: "ns".into(),
            user_agent: "t".into(),
            ..Default::default()
        };
        a.record(&get);
        a.record(&get);
        a.record(&RequestInfo {
            verb: "list".into(),
            ..get.clone()
        });
        let snap = a.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!((snap[0].verb.as_str(), snap[0].count), ("get", 2));
        assert_eq!((snap[1].verb.as_str(), snap[1].count), ("list", 1));
    }
}
