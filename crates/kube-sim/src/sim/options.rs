//! Command-line and library options of the simulated cluster.

use std::str::FromStr;
use std::time::Duration;

/// Options of the simulated cluster (`kube-sim serve` flags from issue 4).
///
/// `SimOptions::default()` equals what clap produces when no flag is given.
#[derive(clap::Args, Clone, Debug)]
pub struct SimOptions {
    /// Time a scheduled pod spends in Pending (ContainerCreating) before its containers run,
    /// e.g. `500ms`, `2s`, `1m`.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub pod_start_delay: Duration,

    /// Image glob (`*` any run of characters, `?` one character) that can never be pulled:
    /// such pods wait with ErrImagePull, then ImagePullBackOff, and never become Ready. Repeatable.
    #[arg(long = "unpullable-image", value_name = "PATTERN")]
    pub unpullable_images: Vec<String>,

    /// Do not install the cert-manager stand-in (its CRDs and issuing controller).
    #[arg(long)]
    pub no_cert_manager: bool,

    /// `IMAGE=COMMAND`: run a real local process for containers whose image matches the glob
    /// IMAGE. COMMAND is split on whitespace; the container's args are appended. Repeatable.
    #[arg(long = "run-image", value_name = "IMAGE=COMMAND")]
    pub run_images: Vec<RunImage>,

    /// Seed of every random choice the simulation makes, so runs are reproducible.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Name of the single simulated node pods are scheduled to.
    #[arg(long, default_value = "kube-sim-node")]
    pub node_name: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            pod_start_delay: Duration::ZERO,
            unpullable_images: Vec::new(),
            no_cert_manager: false,
            run_images: Vec::new(),
            seed: 0,
            node_name: "kube-sim-node".to_owned(),
        }
    }
}

/// One `--run-image IMAGE=COMMAND` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunImage {
    /// Image glob the rule applies to.
    pub image: String,
    /// Program followed by its fixed arguments.
    pub command: Vec<String>,
}

impl FromStr for RunImage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (image, command) = s
            .split_once('=')
            .ok_or_else(|| format!("expected IMAGE=COMMAND, got {s:?}"))?;
        let image = image.trim();
        let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if image.is_empty() {
            return Err(format!("empty IMAGE in {s:?}"));
        }
        if command.is_empty() {
            return Err(format!("empty COMMAND in {s:?}"));
        }
        Ok(RunImage {
            image: image.to_owned(),
            command,
        })
    }
}

/// Parses a duration such as `0`, `250ms`, `2s`, `1m30s`, `1h`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {s:?} lacks a unit (ms, s, m or h)"))?;
        if number_len == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid number in duration {s:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        total += Duration::from_secs_f64(value * seconds_per_unit);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimOptions,
    }

    #[test]
    fn parses_durations() {
        let cases = [
            ("0", Some(Duration::ZERO)),
            ("0s", Some(Duration::ZERO)),
            ("500ms", Some(Duration::from_millis(500))),
            ("2s", Some(Duration::from_secs(2))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("1h", Some(Duration::from_secs(3600))),
            ("", None),
            ("5", None),
            ("5x", None),
            ("s", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input).ok(), expected, "input {input:?}");
        }
    }

    #[test]
    fn parses_run_image() {
        let rule: RunImage = "ghcr.io/x/op:* = /bin/op run --v".parse().unwrap();
        assert_eq!(rule.image, "ghcr.io/x/op:*");
        assert_eq!(rule.command, ["/bin/op", "run", "--v"]);
        assert!("no-equals".parse::<RunImage>().is_err());
        assert!("img=".parse::<RunImage>().is_err());
        assert!("=cmd".parse::<RunImage>().is_err());
    }

    #[test]
    fn default_matches_clap_defaults() {
        let cli = Cli::try_parse_from(["kube-sim"]).unwrap();
        let default = SimOptions::default();
        assert_eq!(cli.sim.pod_start_delay, default.pod_start_delay);
        assert_eq!(cli.sim.no_cert_manager, default.no_cert_manager);
        assert_eq!(cli.sim.seed, default.seed);
        assert_eq!(cli.sim.node_name, default.node_name);
        assert!(cli.sim.unpullable_images.is_empty() && cli.sim.run_images.is_empty());
    }

    #[test]
    fn parses_all_flags() {
        let cli = Cli::try_parse_from([
            "kube-sim",
            "--pod-start-delay",
            "2s",
            "--unpullable-image",
            "bad/*",
            "--unpullable-image",
            "worse:?",
            "--no-cert-manager",
            "--run-image",
            "op:*=sh -c",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(cli.sim.pod_start_delay, Duration::from_secs(2));
        assert_eq!(cli.sim.unpullable_images, ["bad/*", "worse:?"]);
        assert!(cli.sim.no_cert_manager);
        assert_eq!(cli.sim.run_images[0].command, ["sh", "-c"]);
        assert_eq!(cli.sim.seed, 7);
    }
}
