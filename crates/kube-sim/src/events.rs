//! core/v1 and events.k8s.io/v1 Events: one resource seen through two API groups.
//!
//! As on a real API server, Events are stored once, in the core/v1 form, and converted when a
//! client uses events.k8s.io/v1: on writes (body to core), on reads and watch events (core to
//! events.k8s.io) and in field selectors (events.k8s.io paths to core paths).

use serde_json::{Map, Value};

use crate::registry::GroupResource;
use crate::selector::{FieldSelector, FieldTerm};

/// The API group of the newer Event API.
pub const EVENTS_GROUP: &str = "events.k8s.io";

/// Fields with different names: (events.k8s.io/v1, core/v1). Every other field (`type`, `reason`,
/// `action`, `eventTime`, `series`, `related`, `reportingInstance`, metadata) is shared.
const RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether a resource is the events.k8s.io view of core Events.
pub fn is_events_api(gr: &GroupResource) -> bool {
    gr.group == EVENTS_GROUP && gr.resource == "events"
}

/// Whether a resource is either view of Events.
pub fn is_event_resource(gr: &GroupResource) -> bool {
    gr.resource == "events" && (gr.group.is_empty() || gr.group == EVENTS_GROUP)
}

/// Renames fields from one form to the other. Fields that only exist under their name in the
/// other form are unknown here and dropped, as the API server drops unknown fields.
fn rename(obj: Value, to_core: bool, api_version: &str) -> Value {
    let Value::Object(fields) = obj else {
        return obj;
    };
    let from = |r: &(&'static str, &'static str)| if to_core { (r.0, r.1) } else { (r.1, r.0) };
    let mut out: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| {
            if let Some(r) = RENAMES.iter().find(|r| from(r).0 == k) {
                Some((from(r).1.to_owned(), v))
            } else if RENAMES.iter().any(|r| from(r).1 == k) {
                None
            } else {
                Some((k, v))
            }
        })
        .collect();
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in the core/v1 (storage) form.
pub fn to_core(obj: Value) -> Value {
    rename(obj, true, "v1")
}

/// A core/v1 Event as an events.k8s.io/v1 client sees it.
pub fn to_events_v1(obj: Value) -> Value {
    rename(obj, false, &format!("{EVENTS_GROUP}/v1"))
}

/// A field selector path in core/v1 terms; `from_events_api` when the request came through
/// events.k8s.io/v1. The core `source` selector means `source.component`, as on a real server.
fn core_path(path: &str, from_events_api: bool) -> String {
    let path = if from_events_api {
        let (head, rest) = path
            .split_once('.')
            .map_or((path, None), |(h, r)| (h, Some(r)));
        match RENAMES.iter().find(|r| r.0 == head) {
            Some(r) => rest.map_or_else(|| r.1.to_owned(), |rest| format!("{}.{rest}", r.1)),
            None => path.to_owned(),
        }
    } else {
        path.to_owned()
    };
    if path == "source" {
        "source.component".to_owned()
    } else {
        path
    }
}

/// A field selector of either Event view rewritten to match stored (core/v1) Events.
pub fn core_field_selector(gr: &GroupResource, selector: FieldSelector) -> FieldSelector {
    let from_events_api = is_events_api(gr);
    FieldSelector(
        selector
            .0
            .into_iter()
            .map(|t| FieldTerm {
                path: core_path(&t.path, from_events_api),
                ..t
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events_v1() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns", "resourceVersion": "7"},
            "regarding": {"kind": "ConfigMap", "name": "cm", "namespace": "ns", "uid": "u1"},
            "note": "hello", "reason": "Created", "type": "Normal", "action": "Create",
            "reportingController": "ctl", "reportingInstance": "ctl-0",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "related": {"kind": "Pod", "name": "p"},
            "deprecatedSource": {"component": "old"},
            "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-01-01T00:00:02Z",
            "deprecatedCount": 3,
        })
    }

    #[test]
    fn converts_every_renamed_and_shared_field() {
        let core = to_core(events_v1());
        let want = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns", "resourceVersion": "7"},
            "involvedObject": {"kind": "ConfigMap", "name": "cm", "namespace": "ns", "uid": "u1"},
            "message": "hello", "reason": "Created", "type": "Normal", "action": "Create",
            "reportingComponent": "ctl", "reportingInstance": "ctl-0",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "related": {"kind": "Pod", "name": "p"},
            "source": {"component": "old"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:02Z",
            "count": 3,
        });
        assert_eq!(core, want);
        assert_eq!(to_events_v1(core), events_v1());
    }

    #[test]
    fn fields_of_the_other_form_are_unknown_and_dropped() {
        let core = to_core(json!({"note": "kept", "message": "unknown here"}));
        assert_eq!(core, json!({"apiVersion": "v1", "message": "kept"}));
        let ev = to_events_v1(json!({"regarding": {"name": "x"}, "count": 1}));
        assert_eq!(
            ev,
            json!({"apiVersion": "events.k8s.io/v1", "deprecatedCount": 1})
        );
    }

    #[test]
    fn field_selectors_map_to_core_paths() {
        let core = GroupResource::new("", "events");
        let v1 = GroupResource::new(EVENTS_GROUP, "events");
        let cases = [
            (&v1, "regarding.name=a", "involvedObject.name"),
            (&v1, "regarding.uid=a", "involvedObject.uid"),
            (&v1, "reportingController=a", "reportingComponent"),
            (&v1, "deprecatedSource=a", "source.component"),
            (&v1, "reason=a", "reason"),
            (&v1, "metadata.name=a", "metadata.name"),
            (&core, "involvedObject.kind=a", "involvedObject.kind"),
            (&core, "source=a", "source.component"),
            (&core, "regarding.name=a", "regarding.name"),
        ];
        for (gr, sel, want) in cases {
            let got = core_field_selector(gr, FieldSelector::parse(sel).unwrap());
            assert_eq!(got.0[0].path, want, "{sel}");
            assert_eq!(got.0[0].value, "a");
        }
    }

    #[test]
    fn recognises_both_views() {
        assert!(is_events_api(&GroupResource::new(EVENTS_GROUP, "events")));
        assert!(!is_events_api(&GroupResource::new("", "events")));
        assert!(is_event_resource(&GroupResource::new("", "events")));
        assert!(!is_event_resource(&GroupResource::new("", "pods")));
    }
}
