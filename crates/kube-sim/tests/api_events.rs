//! core/v1 and events.k8s.io/v1 Events are one resource: what is written through one API version
//! is listed, read, watched and selected through the other, and kubectl describe shows Events
//! that a kube-rs `Recorder` published.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::start;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn config_map(client: kube::Client, name: &str) -> ConfigMap {
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm).await.unwrap()
}

async fn record(client: kube::Client, about: &ObjectReference, reason: &str, note: &str) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "test-operator".into(),
            instance: Some("test-operator-0".into()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, about).await.unwrap();
}

/// The field selector kubectl describe lists an object's Events with.
fn describe_selector(cm: &ConfigMap, uid: &str) -> String {
    format!(
        "involvedObject.name={},involvedObject.namespace=default,involvedObject.kind=ConfigMap,involvedObject.uid={uid}",
        cm.name_any()
    )
}

fn core_event(name: &str, about: &ObjectReference, message: &str) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        involved_object: about.clone(),
        message: Some(message.into()),
        reason: Some("Synced".into()),
        type_: Some("Normal".into()),
        count: Some(4),
        ..Default::default()
    }
}

#[tokio::test]
async fn recorder_events_are_listed_and_selected_as_core_events() {
    let sim = start().await;
    let cm = config_map(sim.client(), "settings").await;
    let uid = cm.uid().unwrap();
    record(
        sim.client(),
        &cm.object_ref(&()),
        "BadConfig",
        "key x is missing",
    )
    .await;

    let core: Api<CoreEvent> = Api::default_namespaced(sim.client());
    let listed = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{listed:?}");
    let ev = &listed.items[0];
    assert_eq!(ev.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(ev.involved_object.name.as_deref(), Some("settings"));
    assert_eq!(ev.involved_object.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(ev.message.as_deref(), Some("key x is missing"));
    assert_eq!(ev.reason.as_deref(), Some("BadConfig"));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.reporting_component.as_deref(), Some("test-operator"));
    assert_eq!(ev.reporting_instance.as_deref(), Some("test-operator-0"));
    assert!(ev.event_time.is_some());

    // The selector kubectl describe uses, and one that must not match.
    let selected = core
        .list(&ListParams::default().fields(&describe_selector(&cm, &uid)))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let other = core
        .list(&ListParams::default().fields(&describe_selector(&cm, "another-uid")))
        .await
        .unwrap();
    assert!(other.items.is_empty(), "{other:?}");

    // events.k8s.io selectors are rewritten too.
    let v1: Api<EventsV1> = Api::default_namespaced(sim.client());
    for (selector, want) in [
        ("regarding.name=settings", 1),
        ("regarding.name=other", 0),
        ("reportingController=test-operator", 1),
        ("type=Normal", 0),
    ] {
        let got = v1
            .list(&ListParams::default().fields(selector))
            .await
            .unwrap();
        assert_eq!(got.items.len(), want, "{selector}");
    }

    // Both views show one object with one resourceVersion.
    let name = ev.name_any();
    let through_v1 = v1.get(&name).await.unwrap();
    assert_eq!(through_v1.resource_version(), ev.resource_version());
    assert_eq!(through_v1.note.as_deref(), Some("key x is missing"));
}

#[tokio::test]
async fn repeated_recorder_events_update_the_core_event_series() {
    let sim = start().await;
    let cm = config_map(sim.client(), "repeat").await;
    let recorder = Recorder::new(
        sim.client(),
        Reporter {
            controller: "test-operator".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Tick".into(),
        note: Some("again".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = cm.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The second publish is a merge patch through events.k8s.io that adds a series.
    recorder.publish(&event, &reference).await.unwrap();

    let core: Api<CoreEvent> = Api::default_namespaced(sim.client());
    let listed = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{listed:?}");
    let series = listed.items[0].series.as_ref().expect("series");
    assert_eq!(series.count, Some(2));
    assert_eq!(listed.items[0].message.as_deref(), Some("again"));
}

#[tokio::test]
async fn core_events_are_read_and_written_through_events_k8s_io() {
    let sim = start().await;
    let cm = config_map(sim.client(), "direct").await;
    let core: Api<CoreEvent> = Api::default_namespaced(sim.client());
    let created = core
        .create(
            &PostParams::default(),
            &core_event("direct.1", &cm.object_ref(&()), "all good"),
        )
        .await
        .unwrap();

    let v1: Api<EventsV1> = Api::default_namespaced(sim.client());
    let mut ev = v1.get("direct.1").await.unwrap();
    let regarding = ev.regarding.clone().expect("regarding");
    assert_eq!(regarding.name.as_deref(), Some("direct"));
    assert_eq!(regarding.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(ev.note.as_deref(), Some("all good"));
    assert_eq!(ev.reason.as_deref(), Some("Synced"));
    assert_eq!(ev.deprecated_count, Some(4));
    assert_eq!(ev.resource_version(), created.resource_version());
    let listed = v1.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // A replace through events.k8s.io is seen by core clients, with a new resourceVersion.
    ev.note = Some("changed".into());
    let replaced = v1
        .replace("direct.1", &PostParams::default(), &ev)
        .await
        .unwrap();
    assert_eq!(replaced.note.as_deref(), Some("changed"));
    let after = core.get("direct.1").await.unwrap();
    assert_eq!(after.message.as_deref(), Some("changed"));
    assert_eq!(after.resource_version(), replaced.resource_version());
    assert_ne!(after.resource_version(), created.resource_version());

    // A delete through one view removes it from both.
    core.delete("direct.1", &Default::default()).await.unwrap();
    let gone = v1.get_opt("direct.1").await.unwrap();
    assert!(gone.is_none(), "{gone:?}");
}

#[tokio::test]
async fn watches_see_events_written_through_the_other_version() {
    let sim = start().await;
    let cm = config_map(sim.client(), "watched").await;
    let core: Api<CoreEvent> = Api::default_namespaced(sim.client());
    let v1: Api<EventsV1> = Api::default_namespaced(sim.client());
    let core_rv = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut core_watch = core
        .watch(&WatchParams::default(), &core_rv)
        .await
        .unwrap()
        .boxed();
    let mut v1_watch = v1
        .watch(
            &WatchParams::default().fields("regarding.name=watched"),
            &core_rv,
        )
        .await
        .unwrap()
        .boxed();

    // Written through events.k8s.io, seen by the core watch.
    record(
        sim.client(),
        &cm.object_ref(&()),
        "Recorded",
        "via events.k8s.io",
    )
    .await;
    let seen = tokio::time::timeout(TIMEOUT, core_watch.try_next())
        .await
        .expect("a core watch event")
        .unwrap();
    match seen {
        Some(WatchEvent::Added(ev)) => {
            assert_eq!(ev.message.as_deref(), Some("via events.k8s.io"));
            assert_eq!(ev.involved_object.name.as_deref(), Some("watched"));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    let seen = tokio::time::timeout(TIMEOUT, v1_watch.try_next())
        .await
        .expect("an events.k8s.io watch event")
        .unwrap();
    assert!(
        matches!(&seen, Some(WatchEvent::Added(ev)) if ev.note.as_deref() == Some("via events.k8s.io")),
        "{seen:?}"
    );

    // Written through core/v1, seen by the events.k8s.io watch as regarding/note.
    core.create(
        &PostParams::default(),
        &core_event("watched.core", &cm.object_ref(&()), "via core"),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(TIMEOUT, v1_watch.try_next())
        .await
        .expect("an events.k8s.io watch event")
        .unwrap();
    match seen {
        Some(WatchEvent::Added(ev)) => {
            assert_eq!(ev.note.as_deref(), Some("via core"));
            assert_eq!(
                ev.regarding.and_then(|r| r.name).as_deref(),
                Some("watched")
            );
            assert_eq!(ev.deprecated_count, Some(4));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
}

fn kubectl() -> PathBuf {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/kubectl");
    if tools.exists() {
        tools
    } else {
        PathBuf::from("kubectl")
    }
}

/// Runs kubectl against the in-process server off the runtime thread, with a private HOME.
async fn run_kubectl(kubeconfig: PathBuf, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let home = std::env::temp_dir().join(format!("kube-sim-events-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let out = std::process::Command::new(kubectl())
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn kubectl_describe_shows_recorded_events() {
    let sim = start().await;
    let cm = config_map(sim.client(), "described").await;
    record(
        sim.client(),
        &cm.object_ref(&()),
        "SecretMissing",
        "waiting for secret db-auth",
    )
    .await;
    let kubeconfig = sim.kubeconfig_path().to_owned();

    let described = run_kubectl(kubeconfig.clone(), &["describe", "configmap", "described"]).await;
    assert!(
        described.contains("SecretMissing") && described.contains("waiting for secret db-auth"),
        "{described}"
    );
    assert!(described.contains("Warning"), "{described}");
    assert!(!described.contains("Events:  <none>"), "{described}");

    let listed = run_kubectl(kubeconfig, &["get", "events"]).await;
    assert!(
        listed.contains("SecretMissing") && listed.contains("configmap/described"),
        "{listed}"
    );
}
