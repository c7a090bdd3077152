//! Publishing `events.k8s.io/v1` Events about the objects an operator manages.
//!
//! Events are best-effort: a failure to publish is logged and never fails a reconcile. Callers
//! decide *when* to publish (on transitions only); this module only decides *how*.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, Recorder, Reporter};

pub use kube::runtime::events::EventType;

/// Publishes Events with a fixed reporting controller (e.g. `kubedb-provisioner`) and, when
/// known, the reporting instance (the pod name).
#[derive(Clone)]
pub struct EventPublisher {
    recorder: std::sync::Arc<Recorder>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher").finish_non_exhaustive()
    }
}

/// One Event to publish about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub type_: EventType,
    /// Short PascalCase reason (at most 128 characters).
    pub reason: String,
    /// Short PascalCase action the controller took or tried.
    pub action: String,
    /// Human-readable message (at most 1 kB; longer notes are cut).
    pub note: String,
    /// A second object the event is about (events.k8s.io `related`), e.g. the pod a step of an ops
    /// request acted on. It is part of the key under which repeated events are counted as one
    /// series, so steps on different pods stay separate events with their own messages.
    pub related: Option<ObjectReference>,
}

impl EventSpec {
    /// A Normal event.
    pub fn normal(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            action: action.to_owned(),
            note: note.into(),
            related: None,
        }
    }

    /// The same event, also about `related`.
    pub fn related(mut self, related: ObjectReference) -> Self {
        self.related = Some(related);
        self
    }

    /// A Warning event.
    pub fn warning(reason: &str, action: &str, note: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            ..Self::normal(reason, action, note)
        }
    }
}

/// Maximum size of an Event note accepted by the API server.
const MAX_NOTE_BYTES: usize = 1024;

/// Cuts `note` to at most [`MAX_NOTE_BYTES`] bytes on a character boundary.
pub fn truncate_note(note: &str) -> &str {
    if note.len() <= MAX_NOTE_BYTES {
        return note;
    }
    let mut end = MAX_NOTE_BYTES;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    &note[..end]
}

impl EventPublisher {
    /// A publisher reporting as `controller` (and `instance`, usually the pod name).
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance,
        };
        Self {
            recorder: std::sync::Arc::new(Recorder::new(client, reporter)),
        }
    }

    /// Publishes `event` about `object`. Failures are logged, not returned.
    pub async fn publish<K>(&self, object: &K, event: EventSpec)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_ref(&object.object_ref(&()), event).await;
    }

    /// Publishes `event` about the object `reference`. Failures are logged, not returned.
    pub async fn publish_ref(&self, reference: &ObjectReference, event: EventSpec) {
        let ev = Event {
            type_: event.type_,
            reason: event.reason.clone(),
            note: Some(truncate_note(&event.note).to_owned()),
            action: event.action,
            secondary: event.related,
        };
        if let Err(error) = self.recorder.publish(&ev, reference).await {
            tracing::warn!(%error, reason = %event.reason,
                object = reference.name.as_deref().unwrap_or_default(),
                "cannot publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_on_char_boundaries() {
        assert_eq!(truncate_note("short"), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = truncate_note(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(cut.len(), 1024);
    }

    #[test]
    fn warning_keeps_fields() {
        let ev = EventSpec::warning("Failed", "Reconcile", "boom");
        assert_eq!(ev.type_, EventType::Warning);
        assert_eq!(
            (ev.reason.as_str(), ev.action.as_str(), ev.note.as_str()),
            ("Failed", "Reconcile", "boom")
        );
    }
}
