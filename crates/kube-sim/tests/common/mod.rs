//! Shared helpers of the kube-sim integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use kube_sim::{KubeSim, KubeSimOptions};

/// A bare API server (no simulated controllers).
pub async fn start() -> KubeSim {
    KubeSim::start(KubeSimOptions::default())
        .await
        .expect("kube-sim starts")
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The code of a kube API error.
pub fn api_code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}
