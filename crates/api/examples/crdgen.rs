//! Writes the generated CRDs into the `kubedb-crds` chart (used by `make generate`).
//!
//! Usage: `cargo run -p api --example crdgen [-- <chart-templates-dir>]`; the default directory
//! is `charts/kubedb-crds/templates` relative to the workspace root.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/kubedb-crds/templates")
        });
    std::fs::create_dir_all(&dir)?;
    let files = [
        (
            "provisioner-crds.yaml",
            api::crds::to_yaml(&api::crds::provisioner()),
        ),
        (
            "ops-manager-crds.yaml",
            api::crds::to_yaml(&api::crds::ops_manager()),
        ),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
