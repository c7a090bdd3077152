//! Publishing `events.k8s.io/v1` Events about ops requests (best effort: a failure is logged).
//!
//! Note for the lead: `operator_common::events` (being added by the provisioner helper) offers the
//! same; switch to it once it is committed.

use kube::Resource;
use kube::runtime::events::{Event, Recorder, Reporter};

pub use kube::runtime::events::EventType;

/// One Event about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub type_: EventType,
    /// Short PascalCase reason.
    pub reason: String,
    /// Short PascalCase action.
    pub action: String,
    /// Human-readable message.
    pub note: String,
}

impl EventSpec {
    /// A Normal event.
    pub fn normal(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            action: action.to_owned(),
            note: note.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            ..Self::normal(reason, action, note)
        }
    }
}

/// Publishes Events as one reporting controller.
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (and `instance`, usually the pod name).
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes `event` about `object`; failures are logged.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, object: &K, event: EventSpec) {
        let mut note = event.note;
        if note.len() > 1024 {
            let mut end = 1024;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        let ev = Event {
            type_: event.type_,
            reason: event.reason.clone(),
            note: Some(note),
            action: event.action,
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&ev, &object.object_ref(&())).await {
            tracing::warn!(%error, reason = %event.reason, "cannot publish event");
        }
    }
}
