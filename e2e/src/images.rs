//! The operators' OCI images (`make images`, `hack/build-images.sh`): where they are, unpacking
//! one with umoci, and the command that runs its binary from the unpacked root filesystem with
//! the image's own dynamic loader and libraries (no chroot, so no root needed).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};

use crate::workspace_root;

/// The images' directory: `$E2E_IMAGES_DIR`, else `<target dir>/images` as `hack/build-images.sh`
/// writes it (an OCI layout in `oci/`).
pub fn images_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("E2E_IMAGES_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("images")
}

/// The OCI layout in `dir`, if one was built there.
pub fn layout(dir: &Path) -> Option<PathBuf> {
    let layout = dir.join("oci");
    layout.join("index.json").exists().then_some(layout)
}

/// One image unpacked with `umoci unpack --rootless`.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The image's root filesystem.
    pub rootfs: PathBuf,
    /// The runtime configuration umoci generated from the image config (`config.json`).
    pub runtime_config: serde_json::Value,
}

impl Unpacked {
    /// Unpacks tag `image` of `layout` into `dest` (which must not exist yet).
    pub async fn unpack(layout: &Path, image: &str, dest: &Path) -> anyhow::Result<Self> {
        let output = tokio::process::Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{image}", layout.display()))
            .arg(dest)
            .output()
            .await
            .context("running umoci (hack/install-image-tools.sh installs it)")?;
        if !output.status.success() {
            bail!(
                "umoci unpack of {image} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let config = dest.join("config.json");
        let runtime_config = serde_json::from_slice(
            &std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?,
        )?;
        // Canonical, so it compares equal to the paths in /proc/<pid>/maps.
        let rootfs = std::fs::canonicalize(dest.join("rootfs"))?;
        Ok(Self {
            rootfs,
            runtime_config,
        })
    }

    /// The process arguments of the image (entrypoint followed by cmd).
    pub fn args(&self) -> Vec<String> {
        self.runtime_config["process"]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    }

    /// A command line that runs `path` (a path inside the image, such as its entrypoint) from
    /// the root filesystem on this machine: the image's dynamic loader with
    /// `--inhibit-cache --library-path` set to the image's library directories, so every library
    /// is the image's own. Space-separated, as kube-sim's `--run-image` takes it.
    pub fn command(&self, path: &str) -> anyhow::Result<String> {
        let rootfs = self.rootfs.to_string_lossy();
        ensure!(
            !rootfs.contains(char::is_whitespace),
            "the unpacked image's path {rootfs:?} has whitespace; kube-sim splits commands on it"
        );
        let loader = ["lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1"]
            .iter()
            .map(|l| self.rootfs.join(l))
            .find(|l| l.exists())
            .context("no dynamic loader in the image")?;
        let mut lib_dirs = Vec::new();
        for dir in [
            "lib/x86_64-linux-gnu",
            "lib/aarch64-linux-gnu",
            "lib64",
            "lib",
        ] {
            if self.rootfs.join(dir).is_dir() {
                lib_dirs.push(format!("{rootfs}/{dir}"));
            }
        }
        let binary = self.rootfs.join(path.trim_start_matches('/'));
        ensure!(binary.exists(), "{} is not in the image", binary.display());
        Ok(format!(
            "{} --inhibit-cache --library-path {} {}",
            loader.display(),
            lib_dirs.join(":"),
            binary.display()
        ))
    }
}

/// Processes of this machine whose command line has the argument `arg`, as
/// `(pid, shared objects mapped into the process)`.
pub fn processes_with_arg(arg: &Path) -> Vec<(u32, Vec<PathBuf>)> {
    let want = arg.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|b| *b == 0).any(|a| a == want) {
            continue;
        }
        let maps = std::fs::read_to_string(entry.path().join("maps")).unwrap_or_default();
        let mut objects: Vec<PathBuf> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains(".so"))
            .map(PathBuf::from)
            .collect();
        objects.sort();
        objects.dedup();
        found.push((pid, objects));
    }
    found
}
