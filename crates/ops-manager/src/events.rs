//! Publishing `events.k8s.io/v1` Events about ops requests (best effort: a failure is logged).
//! The publisher is shared with the provisioner.

pub use operator_common::events::{EventPublisher, EventSpec, EventType};
