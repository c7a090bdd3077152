//! The catalog chart renders exactly the Version objects of the reference catalog (the ones the
//! operators' tests use, `api::fixtures`), and its registry values rewrite every image.

use api::catalog::{MSSQLServerVersion, SinglestoreVersion};
use e2e::{Helm, tool, workspace_root};

async fn render(values: &[&str]) -> Vec<serde_json::Value> {
    let chart = Helm::chart("kubedb-catalog");
    let mut args = vec![
        "template".to_owned(),
        "catalog".to_owned(),
        chart.to_string_lossy().into_owned(),
    ];
    for v in values {
        args.extend(["--set".to_owned(), (*v).to_owned()]);
    }
    let output = tokio::process::Command::new(tool("helm"))
        .args(&args)
        .current_dir(workspace_root())
        .output()
        .await
        .expect("helm runs (hack/install-tools.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    text.split("\n---")
        .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
        .map(|doc| yaml_serde::from_str::<serde_json::Value>(doc).unwrap())
        .collect()
}

fn specs_of(docs: &[serde_json::Value], kind: &str) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<_> = docs
        .iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                d["spec"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn fixture_specs<K: serde::Serialize + kube::Resource>(
    objects: Vec<K>,
) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<_> = objects
        .iter()
        .map(|o| {
            let v = serde_json::to_value(o).unwrap();
            (o.meta().name.clone().unwrap(), v["spec"].clone())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn catalog_chart_matches_the_reference_catalog() {
    let docs = render(&[]).await;
    assert_eq!(
        specs_of(&docs, "MSSQLServerVersion"),
        fixture_specs::<MSSQLServerVersion>(api::fixtures::mssql_versions())
    );
    assert_eq!(
        specs_of(&docs, "SinglestoreVersion"),
        fixture_specs::<SinglestoreVersion>(api::fixtures::singlestore_versions())
    );
}

#[tokio::test]
async fn catalog_registries_rewrite_every_image() {
    let docs = render(&[
        "registries.ghcr=mirror.example/ghcr",
        "registries.microsoft=mirror.example/mcr",
        "registries.dockerHub=mirror.example/docker",
        "registries.kubernetes=mirror.example/k8s",
    ])
    .await;
    let mut images = Vec::new();
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "image" {
                        out.push(v.as_str().unwrap_or_default().to_owned());
                    } else {
                        collect(v, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    for doc in &docs {
        collect(&doc["spec"], &mut images);
    }
    assert!(images.len() > 40, "{images:?}");
    let stray: Vec<_> = images
        .iter()
        .filter(|i| !i.starts_with("mirror.example/"))
        .collect();
    assert!(stray.is_empty(), "images not rewritten: {stray:?}");
}
