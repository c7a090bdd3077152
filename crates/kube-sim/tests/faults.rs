//! Fault injection and request accounting, through the library and the `/sim/` HTTP endpoints.

mod common;

use std::time::{Duration, Instant};

use common::{start, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_sim::{FaultSpec, KubeSim, RequestCount};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A client that does not retry 429/503/504 by itself and identifies as `agent`.
fn client(sim: &KubeSim, agent: &str) -> kube::Client {
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_namespace = "default".into();
    config.default_retry = false;
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_str(agent).unwrap(),
    ));
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn fails_exactly_n_matching_requests() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client(&sim, "kube-sim/test"));
    let other: Api<ConfigMap> = Api::default_namespaced(client(&sim, "someone-else"));
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    sim.add_fault(FaultSpec {
        verb: Some("get".into()),
        resource: Some("configmaps".into()),
        user_agent: Some("kube-sim/".into()),
        code: Some(503),
        times: Some(2),
        ..Default::default()
    });
    // Requests of another client do not match.
    other.get("a").await.unwrap();
    for _ in 0..2 {
        match api.get("a").await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (503, "ServiceUnavailable"))
            }
            other => panic!("expected the injected error, got {other:?}"),
        }
    }
    api.get("a").await.unwrap();
    assert_eq!(sim.faults()[0].applied, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_matching_requests() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    sim.add_fault(FaultSpec {
        verb: Some("list".into()),
        latency_ms: Some(300),
        ..Default::default()
    });
    let t = Instant::now();
    api.list(&Default::default()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_watch_resumes_without_losing_events() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let (reader, writer) = reflector::store::<ConfigMap>();
    let task = tokio::spawn(
        watcher(api.clone(), Default::default())
            .reflect(writer)
            .applied_objects()
            .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.unwrap();
    for round in 0..3 {
        sim.add_fault(FaultSpec {
            drop_watches: true,
            resource: Some("configmaps".into()),
            ..Default::default()
        });
        for i in 0..5 {
            api.create(&PostParams::default(), &cm(&format!("r{round}-{i}")))
                .await
                .unwrap();
        }
    }
    wait_for("all 15 objects", Duration::from_secs(10), || async {
        (reader.state().len() == 15).then_some(())
    })
    .await;
    task.abort();
    let count = |verb: &str| {
        sim.requests()
            .iter()
            .filter(|r| r.verb == verb && r.resource == "configmaps")
            .map(|r| r.count)
            .sum::<u64>()
    };
    assert_eq!(
        count("list"),
        1,
        "resumed from the resourceVersion, no relist"
    );
    assert!(count("watch") >= 2, "the watch was reopened");
    assert!(sim.faults().iter().map(|f| f.applied).sum::<u64>() >= 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_endpoints_over_http() {
    let sim = start().await;
    let c = client(&sim, "tester/1.0");
    let api: Api<ConfigMap> = Api::default_namespaced(c.clone());
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    api.get("x").await.unwrap();
    api.get("x").await.unwrap();

    let req = |method: &str, uri: &str, body: Vec<u8>| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap()
    };
    let text = c
        .request_text(req("GET", "/sim/requests", vec![]))
        .await
        .unwrap();
    let rows: Vec<RequestCount> = serde_json::from_str(&text).unwrap();
    let gets = rows
        .iter()
        .find(|r| r.verb == "get" && r.resource == "configmaps")
        .expect("gets counted");
    assert_eq!(
        (
            gets.count,
            gets.namespace.as_str(),
            gets.user_agent.as_str(),
            gets.group.as_str()
        ),
        (2, "default", "tester/1.0", "")
    );
    assert!(rows.iter().any(|r| r.verb == "create" && r.count == 1));
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(raw[0].get("userAgent").is_some() && raw[0].get("subresource").is_some());

    let rule = json!({"verb": "create", "resource": "configmaps", "code": 409, "reason": "AlreadyExists", "times": 1});
    c.request_text(req(
        "POST",
        "/sim/faults",
        serde_json::to_vec(&rule).unwrap(),
    ))
    .await
    .unwrap();
    match api.create(&PostParams::default(), &cm("y")).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("{other:?}"),
    }
    let listed: serde_json::Value = serde_json::from_str(
        &c.request_text(req("GET", "/sim/faults", vec![]))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed[0]["applied"], 1);
    c.request_text(req("DELETE", "/sim/faults", vec![]))
        .await
        .unwrap();
    assert!(sim.faults().is_empty());
    api.create(&PostParams::default(), &cm("y")).await.unwrap();
    sim.shutdown().await;
}
