//! Median, minimum and maximum of repeated measurements, and how they are printed.

/// The spread of repeated measurements of one quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub runs: usize,
}

impl Summary {
    /// Summarises `values`; `None` when there are none (or any is NaN).
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs: n,
        })
    }

    /// `median (min–max)` with `decimals` digits, or just the value for a single run.
    pub fn display(&self, decimals: usize) -> String {
        if self.runs == 1 || self.min == self.max {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} ({:.*}–{:.*})",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

/// `median (min–max)` of `values`, or `n/a` when there are none.
pub fn show(values: &[f64], decimals: usize) -> String {
    Summary::of(values).map_or_else(|| "n/a".to_owned(), |s| s.display(decimals))
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        type Case<'a> = (&'a [f64], Option<(f64, f64, f64)>);
        let cases: [Case; 5] = [
            (&[], None),
            (&[2.0], Some((2.0, 2.0, 2.0))),
            (&[3.0, 1.0, 2.0], Some((2.0, 1.0, 3.0))),
            (&[4.0, 1.0, 3.0, 2.0], Some((2.5, 1.0, 4.0))),
            (&[1.0, f64::NAN], None),
        ];
        for (values, want) in cases {
            let got = Summary::of(values).map(|s| (s.median, s.min, s.max));
            assert_eq!(got, want, "{values:?}");
        }
    }

    #[test]
    fn display_shows_the_spread_only_when_there_is_one() {
        assert_eq!(show(&[1.0, 3.0, 2.0], 1), "2.0 (1.0–3.0)");
        assert_eq!(show(&[2.0, 2.0, 2.0], 0), "2");
        assert_eq!(show(&[0.25], 2), "0.25");
        assert_eq!(show(&[], 2), "n/a");
    }

    #[test]
    fn mebibytes() {
        assert_eq!(mib(3 * 1024 * 1024 / 2), 1.5);
    }
}
