//! Runs the real `bench` binary end to end with tiny settings against the debug `kube-sim`,
//! `provisioner` and `ops-manager` binaries next to it, and checks the Markdown it writes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaries `bench` starts, looked up in its own directory.
const SIBLINGS: [&str; 3] = ["kube-sim", "provisioner", "ops-manager"];

/// One Markdown table of the output: its column headings and rows of trimmed cells.
#[derive(Debug)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The text between the table and the next heading.
    notes: String,
}

impl Table {
    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header))
    }

    fn row(&self, first: &[&str]) -> &[String] {
        self.rows
            .iter()
            .find(|r| r.iter().zip(first).all(|(cell, want)| cell == want))
            .unwrap_or_else(|| panic!("no row starting with {first:?} in {:?}", self.rows))
    }
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect()
}

/// The table under the `### ` heading that starts with `title`, if any.
fn table(markdown: &str, title: &str) -> Option<Table> {
    let start = markdown.find(&format!("### {title}"))?;
    let section = &markdown[start..];
    let section = section[4..]
        .find("\n### ")
        .map_or(section, |end| &section[..end + 4]);
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    let header = cells(lines.next()?);
    let rows = lines
        .skip(1) // the |---| line
        .map(cells)
        .collect();
    let notes = section
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    Some(Table {
        header,
        rows,
        notes,
    })
}

fn seconds(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("{cell:?} is not a number of seconds"))
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tiny_run_writes_convergence_steady_state_and_startup_tables() {
    let bench = Path::new(env!("CARGO_BIN_EXE_bench"));
    let bin_dir = bench.parent().expect("the bench binary has a directory");
    let missing: Vec<&str> = SIBLINGS
        .into_iter()
        .filter(|name| !bin_dir.join(name).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing in {}: run `cargo build --workspace --bins` first",
        missing.join(", "),
        bin_dir.display()
    );
    let scratch = Scratch(std::env::temp_dir().join(format!("bench-e2e-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    std::fs::create_dir_all(&scratch.0).unwrap();
    let out = scratch.0.join("results.md");

    let run = Command::new(bench)
        .env_remove("BENCH_KEEP")
        .envs([
            ("BENCH_QUICK", "1"),
            ("BENCH_RUNS", "1"),
            ("BENCH_SIZES", "0,3"),
            ("BENCH_MIX", "0"),
            ("BENCH_ONLY", "startup,scale"),
            ("BENCH_STEADY_SECS", "2"),
        ])
        .env("BENCH_OUT", &out)
        .env("BENCH_BIN_DIR", bin_dir)
        .output()
        .expect("running the bench binary");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "bench failed ({}):\n{stderr}",
        run.status
    );
    let md = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no output at {}: {e}\n{stderr}", out.display()));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        md,
        "stdout and BENCH_OUT differ"
    );

    let convergence = table(&md, "1. Convergence").unwrap_or_else(|| panic!("no table 1:\n{md}"));
    let row = convergence.row(&["N = 3 standalone"]);
    assert_eq!(
        row[convergence.column("Ready (of DBs)")],
        "3 (of 3)",
        "{md}"
    );
    assert_eq!(row[convergence.column("pods Running")], "3", "{md}");
    let ready = seconds(&row[convergence.column("all Ready s")]);
    assert!(ready > 0.0, "{md}");
    // The report settle waited for (and found) a Provisioned Event of each of the 3 databases.
    let settle = seconds(&row[convergence.column("reports settle s")]);
    assert!(settle < 30.0, "{md}");
    assert!(!convergence.notes.contains("still had no"), "{md}");
    // Convergence counts the provisioner's Event creates (at least one Provisioned per database).
    let writes = table(&md, "1b.").unwrap_or_else(|| panic!("no table 1b:\n{md}"));
    let events = writes.row(&["create events"]);
    assert!(seconds(&events[1]) >= 1.0, "{md}");

    let steady = table(&md, "2. Steady state").unwrap_or_else(|| panic!("no table 2:\n{md}"));
    for operator in ["provisioner", "ops-manager"] {
        let row = steady.row(&["N = 3 standalone", operator]);
        assert_eq!(row[steady.column("window s")], "2", "{md}");
        seconds(&row[steady.column("writes/min (no Leases)")]);
    }
    // The transition Events were all out before the window opened.
    assert!(
        !steady.notes.contains("provisioner: create events"),
        "Event creates in the steady-state window:\n{md}"
    );

    let startup = table(&md, "5. Start-up").unwrap_or_else(|| panic!("no table 5:\n{md}"));
    for operator in ["provisioner", "ops-manager"] {
        let row = startup.row(&[operator]);
        for column in ["Lease acquired", "first list (controllers started)"] {
            let s = seconds(&row[startup.column(column)]);
            assert!(s > 0.0 && s < 30.0, "{operator} {column}: {s}\n{md}");
        }
    }
    let first_write = seconds(
        &startup.row(&["provisioner"])[startup.column("first status write (first reconcile)")],
    );
    assert!(first_write > 0.0, "{md}");
    assert!(!md.contains("Runs that failed"), "{md}");
}

#[test]
fn tables_are_found_by_title() {
    let md = "## x\n\n### 1. A\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nnote one\n\n### 2. B\n\n| c |\n|---|\n| 3 |\n";
    let a = table(md, "1. A").unwrap();
    assert_eq!(a.header, ["a", "b"]);
    assert_eq!(a.rows, [["1", "2"]]);
    assert!(a.notes.contains("note one"));
    let b = table(md, "2. B").unwrap();
    assert_eq!(b.rows, [["3"]]);
    assert!(!b.notes.contains("note one"));
    assert!(table(md, "3.").is_none());
}
