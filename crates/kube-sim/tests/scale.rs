//! Scale measurement (ignored by default; run with
//! `cargo test -p kube-sim --release --test scale -- --ignored --nocapture`):
//! 10,000 objects and 100 open watches against the `kube-sim` binary; reports the server's RSS,
//! list latency and watch-event latency. The figures are recorded in docs/testing.md.

#[path = "common/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use process::Server;
use serde_json::json;

const OBJECTS: usize = 10_000;
const WATCHES: usize = 100;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check; see docs/testing.md"]
async fn ten_thousand_objects_and_a_hundred_watches() {
    let server = Server::start("scale", &["--no-sim"]);
    let pid = server.child.id();
    let client = kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    println!("idle RSS: {:.1} MiB", rss_mib(pid));

    let t = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("cm-{i:05}")),
                        labels: Some(BTreeMap::from([
                            ("shard".into(), (i % 100).to_string()),
                            ("app".into(), "bench".into()),
                        ])),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([("payload".into(), "x".repeat(200))])),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let create = t.elapsed();
    println!(
        "created {OBJECTS} ConfigMaps in {create:.2?} ({:.0}/s); RSS {:.1} MiB",
        OBJECTS as f64 / create.as_secs_f64(),
        rss_mib(pid)
    );

    let mut full = Vec::new();
    let mut selected = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await.unwrap();
        full.push(t.elapsed());
        assert_eq!(list.items.len(), OBJECTS);
        let t = Instant::now();
        let list = api
            .list(&ListParams::default().labels("shard=7"))
            .await
            .unwrap();
        selected.push(t.elapsed());
        assert_eq!(list.items.len(), OBJECTS / 100);
    }
    println!(
        "list of {OBJECTS}: median {:.1?}, p90 {:.1?}",
        percentile(full.clone(), 0.5),
        percentile(full, 0.9)
    );
    println!(
        "list with a label selector (100 of {OBJECTS}): median {:.1?}",
        percentile(selected, 0.5)
    );

    // 100 watches from the current resourceVersion.
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    for w in 0..WATCHES {
        let stream = api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await
            .unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                if let WatchEvent::Modified(cm) = ev {
                    let _ = tx.send((w, cm.metadata.name.unwrap(), Instant::now()));
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("with {WATCHES} watches open: RSS {:.1} MiB", rss_mib(pid));

    let mut first = Vec::new();
    let mut last = Vec::new();
    for i in 0..20 {
        let name = format!("cm-{:05}", i * 37);
        let t = Instant::now();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"n": i.to_string()}})),
        )
        .await
        .unwrap();
        let mut seen = 0;
        let mut first_at = None;
        while seen < WATCHES {
            let (_, got, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, name);
            first_at.get_or_insert(at);
            seen += 1;
            if seen == WATCHES {
                last.push(at - t);
            }
        }
        first.push(first_at.unwrap() - t);
    }
    println!(
        "watch event latency (patch sent -> event received): first watcher median {:.1?}, all {WATCHES} watchers median {:.1?}, max {:.1?}",
        percentile(first, 0.5),
        percentile(last.clone(), 0.5),
        percentile(last, 1.0)
    );
    println!("final RSS: {:.1} MiB", rss_mib(pid));
}
