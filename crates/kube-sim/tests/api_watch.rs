//! kube-rs watches against kube-sim: raw watch events, `watcher` + reflector through changes,
//! a forced 410 Gone relist, the streaming-list form and dropped watches.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{start, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_sim::FaultSpec;
use serde_json::json;

fn cm(name: &str, app: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".into(), app.into())])),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn raw_watch_from_a_resource_version() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let first = api
        .create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("b", "y"))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    // Replays what happened after `rv`, filtered by the label selector.
    let wp = WatchParams::default().labels("app=x").timeout(2);
    let events: Vec<_> = api
        .watch(&wp, &rv)
        .await
        .unwrap()
        .take(2)
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.as_deref().unwrap()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.as_deref().unwrap()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["MODIFIED a", "DELETED a"]);

    // Too old: after compaction the server answers 410 Gone (as an ERROR event).
    sim.compact();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed() {
    let sim = kube_sim::KubeSim::start(kube_sim::KubeSimOptions {
        bookmark_interval: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let list = api.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        Some(Ok(WatchEvent::Bookmark(b))) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn reflector_follows_changes_and_relists_after_410() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let (reader, writer) = reflector::store::<ConfigMap>();
    let (init_tx, mut init_rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api.clone(), watcher::Config::default().labels("app=r")).default_backoff();
    let task = tokio::spawn(
        stream
            .inspect_ok(move |ev| {
                if matches!(ev, watcher::Event::InitDone) {
                    let _ = init_tx.send(());
                }
            })
            .reflect(writer)
            .applied_objects()
            .for_each(|_| async {}),
    );
    tokio::time::timeout(Duration::from_secs(5), init_rx.recv())
        .await
        .unwrap()
        .unwrap();

    let names = |r: &reflector::Store<ConfigMap>| {
        let mut n: Vec<String> = r
            .state()
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        n.sort();
        n
    };
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), "r"))
            .await
            .unwrap();
    }
    api.create(&PostParams::default(), &cm("other", "s"))
        .await
        .unwrap();
    api.delete("c0", &DeleteParams::default()).await.unwrap();
    wait_for(
        "reflector sees 4 objects",
        Duration::from_secs(5),
        || async { (names(&reader) == ["c1", "c2", "c3", "c4"]).then_some(()) },
    )
    .await;
    // Relabelling out of the selector removes it from the store.
    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "s"}}})),
    )
    .await
    .unwrap();
    wait_for("c1 leaves the selector", Duration::from_secs(5), || async {
        (names(&reader) == ["c2", "c3", "c4"]).then_some(())
    })
    .await;

    // Cut the watch and keep it from reconnecting while changes happen and the history is
    // compacted: the resumed watch then gets 410 Gone and the watcher relists.
    sim.add_fault(FaultSpec {
        verb: Some("watch".into()),
        code: Some(500),
        ..Default::default()
    });
    sim.add_fault(FaultSpec {
        drop_watches: true,
        resource: Some("configmaps".into()),
        ..Default::default()
    });
    api.delete("c2", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("c9", "r"))
        .await
        .unwrap();
    sim.compact();
    sim.clear_faults();
    tokio::time::timeout(Duration::from_secs(10), init_rx.recv())
        .await
        .expect("a relist after 410")
        .unwrap();
    wait_for("store after relist", Duration::from_secs(5), || async {
        (names(&reader) == ["c3", "c4", "c9"]).then_some(())
    })
    .await;
    let gone = sim
        .requests()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource == "configmaps")
        .map(|r| r.count)
        .sum::<u64>();
    assert_eq!(gone, 2, "one initial list and one relist");
    task.abort();
    sim.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    api.create(&PostParams::default(), &cm("before", "r"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = watcher(api.clone(), watcher::Config::default().streaming_lists());
    let task = tokio::spawn(
        stream
            .reflect(writer)
            .applied_objects()
            .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.unwrap();
    assert_eq!(reader.state().len(), 1);
    api.create(&PostParams::default(), &cm("after", "r"))
        .await
        .unwrap();
    wait_for("streamed change", Duration::from_secs(5), || async {
        (reader.state().len() == 2).then_some(())
    })
    .await;
    task.abort();
    let watches = sim
        .requests()
        .into_iter()
        .filter(|r| r.verb == "watch" && r.resource == "configmaps")
        .map(|r| r.count)
        .sum::<u64>();
    let lists = sim
        .requests()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource == "configmaps")
        .count();
    assert!(watches >= 1);
    assert_eq!(lists, 0, "the streaming list uses a watch, not a list");
    sim.shutdown().await;
}

#[tokio::test]
async fn metadata_requests_and_metadata_watcher() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    api.create(&PostParams::default(), &cm("m1", "x"))
        .await
        .unwrap();
    let meta = api.get_metadata("m1").await.unwrap();
    assert_eq!(meta.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(meta.metadata.labels.unwrap()["app"], "x");
    let list = api.list_metadata(&Default::default()).await.unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.items.len(), 1);

    let (reader, writer) = reflector::store();
    let task = tokio::spawn(
        watcher(
            Api::<kube::core::PartialObjectMeta<ConfigMap>>::default_namespaced(sim.client()),
            watcher::Config::default(),
        )
        .reflect(writer)
        .applied_objects()
        .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.unwrap();
    api.create(&PostParams::default(), &cm("m2", "y"))
        .await
        .unwrap();
    wait_for("metadata watch event", Duration::from_secs(5), || async {
        (reader.state().len() == 2).then_some(())
    })
    .await;
    assert!(reader.state().iter().all(|m| {
        m.types
            .as_ref()
            .is_some_and(|t| t.kind == "PartialObjectMetadata")
    }));
    task.abort();
    sim.shutdown().await;
}

#[tokio::test]
async fn watches_end_at_their_timeout() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let started = std::time::Instant::now();
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends");
    assert!(events.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    sim.shutdown().await;
}
