//! Memory and CPU time of a process, read from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use anyhow::Context as _;

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub peak: u64,
    /// Current resident set size (`VmRSS`).
    pub current: u64,
}

/// One sample of a process: its memory and the CPU time it has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Resident memory.
    pub memory: Memory,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
}

/// Reads `VmHWM` and `VmRSS` from the text of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("no {name} line in /proc status"))?;
        let mut parts = line.split_whitespace();
        let value: u64 = parts
            .next()
            .with_context(|| format!("{name} has no value"))?
            .parse()
            .with_context(|| format!("{name} is not a number"))?;
        match parts.next() {
            Some("kB") => Ok(value * 1024),
            other => anyhow::bail!("{name} has unit {other:?}, expected kB"),
        }
    };
    Ok(Memory {
        peak: field("VmHWM")?,
        current: field("VmRSS")?,
    })
}

/// Reads `utime + stime` (fields 14 and 15, in clock ticks) from the text of `/proc/<pid>/stat`.
/// The command name (field 2) may contain spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(text: &str) -> anyhow::Result<u64> {
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' after the command name in /proc stat")?;
    // After ")": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |index: usize, name: &str| -> anyhow::Result<u64> {
        fields
            .get(index)
            .with_context(|| format!("/proc stat has no {name} field"))?
            .parse()
            .with_context(|| format!("/proc stat {name} is not a number"))
    };
    Ok(tick(11, "utime")? + tick(12, "stime")?)
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Samples a running process.
pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(Sample {
        memory: parse_status(&status)?,
        cpu_seconds: parse_stat_ticks(&stat)? as f64 / ticks_per_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprovisioner\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";

    #[test]
    fn status_fields_are_read_in_bytes() {
        assert_eq!(
            parse_status(STATUS).unwrap(),
            Memory {
                peak: 20480 * 1024,
                current: 10240 * 1024
            }
        );
    }

    #[test]
    fn status_errors_name_the_problem() {
        let cases = [
            ("VmRSS:\t1 kB\n", "no VmHWM line"),
            ("VmHWM:\t1 kB\n", "no VmRSS line"),
            ("VmHWM:\tx kB\nVmRSS:\t1 kB\n", "VmHWM is not a number"),
            ("VmHWM:\t1 MB\nVmRSS:\t1 kB\n", "VmHWM has unit"),
            ("VmHWM:\t\nVmRSS:\t1 kB\n", "VmHWM has no value"),
        ];
        for (text, want) in cases {
            let err = parse_status(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_field_name_prefix_is_not_taken_for_the_field() {
        // "VmRSSx" must not satisfy "VmRSS".
        let err = parse_status("VmHWM:\t1 kB\nVmRSSx:\t2 kB\n").unwrap_err();
        assert!(err.to_string().contains("no VmRSS line"), "{err}");
    }

    #[test]
    fn stat_ticks_sum_utime_and_stime() {
        let cases = [
            (
                "1234 (provisioner) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 4 0 5 0 0",
                281,
            ),
            // A command name with spaces and a parenthesis.
            (
                "77 (a b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 9 0 0",
                10,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat_ticks(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn stat_errors_name_the_problem() {
        assert!(
            parse_stat_ticks("1 provisioner S")
                .unwrap_err()
                .to_string()
                .contains("no ')'")
        );
        assert!(
            parse_stat_ticks("1 (p) S 1 2")
                .unwrap_err()
                .to_string()
                .contains("no utime")
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.memory.current > 0 && s.memory.peak >= s.memory.current);
        assert!(s.cpu_seconds >= 0.0);
    }
}
