//! The numbers a run reports: counts, the four keys per source and their
//! DORA 2024 bands.

use super::*;

/// The numbers the outputs and the summary report for a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub events: usize,
    pub deployments: usize,
    pub failures: usize,
    /// Median lead time of the successful deployments (per change where known), seconds.
    pub lead_time_median: Option<i64>,
    /// Median failed-deployment recovery time of the successes that recovered, seconds.
    pub recovery_median: Option<i64>,
    /// Successful deployments that were rework.
    pub rework: usize,
}

/// Counts the recorded deployments.
pub fn tally(deploys: &[Deploy]) -> Tally {
    Tally {
        events: deploys
            .iter()
            .filter(|d| d.status != Status::NotReady)
            .count(),
        deployments: deploys
            .iter()
            .filter(|d| d.status == Status::Success)
            .count(),
        failures: deploys
            .iter()
            .filter(|d| d.status == Status::Failure)
            .count(),
        lead_time_median: median(
            deploys
                .iter()
                .filter_map(Deploy::best_lead_time_seconds)
                .collect(),
        ),
        recovery_median: median(
            deploys
                .iter()
                .filter_map(|d| d.history.recovery_seconds)
                .collect(),
        ),
        rework: deploys.iter().filter(|d| d.is_rework()).count(),
    }
}

/// A DORA 2024 performance band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }

    /// Deployment frequency: elite on demand (daily or more), high between
    /// daily and weekly, medium between weekly and monthly, low less often.
    pub fn of_frequency(per_day: f64) -> Band {
        match per_day {
            f if f >= 1.0 => Band::Elite,
            f if f >= 1.0 / 7.0 => Band::High,
            f if f >= 1.0 / 30.0 => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Lead time for changes: elite under a day, high under a week, medium under a month.
    pub fn of_lead_time(seconds: i64) -> Band {
        match seconds {
            s if s < DAY => Band::Elite,
            s if s < 7 * DAY => Band::High,
            s if s < 30 * DAY => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Change failure rate (0–1): elite ≤ 5 %, high ≤ 20 %, medium ≤ 40 %, low above.
    /// DORA 2024's clusters sit at 5 % (elite), 20 % (high), 10 % (medium) and
    /// 40 % (low); read as ordered upper bounds, the medium cluster falls in
    /// "high", which is the honest reading of a rate that good.
    pub fn of_failure_rate(rate: f64) -> Band {
        match rate {
            r if r <= 0.05 => Band::Elite,
            r if r <= 0.20 => Band::High,
            r if r <= 0.40 => Band::Medium,
            _ => Band::Low,
        }
    }

    /// Failed-deployment recovery time: elite under an hour, high under a day, medium under a week.
    pub fn of_recovery(seconds: i64) -> Band {
        match seconds {
            s if s < 3_600 => Band::Elite,
            s if s < DAY => Band::High,
            s if s < 7 * DAY => Band::Medium,
            _ => Band::Low,
        }
    }
}

pub(crate) const DAY: i64 = 86_400;

/// The four keys (and rework) for one source over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    pub source: String,
    pub deployments: usize,
    pub failures: usize,
    /// Failed ÷ all deployments; `None` with no deployments at all.
    pub failure_rate: Option<f64>,
    /// Successful deployments per day over the window.
    pub per_day: Option<f64>,
    pub lead_time_median: Option<i64>,
    pub recovery_median: Option<i64>,
    pub rework: usize,
}

/// The keys per source, in source order; `window` (seconds) gives frequency.
pub fn by_source(deploys: &[Deploy], window: Option<u64>) -> Vec<SourceStats> {
    let mut sources: Vec<&str> = deploys.iter().map(|d| d.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .map(|source| {
            let mine: Vec<Deploy> = deploys
                .iter()
                .filter(|d| d.source == source)
                .cloned()
                .collect();
            let t = tally(&mine);
            SourceStats {
                source: source.to_string(),
                deployments: t.deployments,
                failures: t.failures,
                failure_rate: (t.events > 0).then(|| t.failures as f64 / t.events as f64),
                per_day: window
                    .filter(|w| *w > 0)
                    .map(|w| t.deployments as f64 / (w as f64 / DAY as f64)),
                lead_time_median: t.lead_time_median,
                recovery_median: t.recovery_median,
                rework: t.rework,
            }
        })
        .collect()
}

/// The median, averaging the two middle values of an even count (rounded down).
pub fn median(mut values: Vec<i64>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]).div_euclid(2)
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn bands_follow_dora_2024() {
        assert_eq!(Band::of_frequency(3.0), Band::Elite);
        assert_eq!(Band::of_frequency(0.5), Band::High);
        assert_eq!(Band::of_frequency(0.1), Band::Medium);
        assert_eq!(Band::of_frequency(0.01), Band::Low);
        assert_eq!(Band::of_lead_time(3_600), Band::Elite);
        assert_eq!(Band::of_lead_time(2 * DAY), Band::High);
        assert_eq!(Band::of_lead_time(10 * DAY), Band::Medium);
        assert_eq!(Band::of_lead_time(60 * DAY), Band::Low);
        assert_eq!(Band::of_failure_rate(0.05), Band::Elite);
        assert_eq!(Band::of_failure_rate(0.10), Band::High);
        assert_eq!(Band::of_failure_rate(0.3), Band::Medium);
        assert_eq!(Band::of_failure_rate(0.5), Band::Low);
        assert_eq!(Band::of_recovery(1_800), Band::Elite);
        assert_eq!(Band::of_recovery(5 * 3_600), Band::High);
        assert_eq!(Band::of_recovery(3 * DAY), Band::Medium);
        assert_eq!(Band::of_recovery(8 * DAY), Band::Low);
    }

    #[test]
    fn stats_per_source_over_a_window() {
        let mut d = vec![
            Deploy::success().at("2026-11-20T09:00:00Z"),
            Deploy::failure().at("2026-11-20T10:00:00Z"),
            Deploy::success()
                .at("2026-11-20T11:00:00Z")
                .committed("2026-11-20T10:40:00Z"),
            Deploy {
                source: "Other".into(),
                ..Deploy::failure()
            },
        ];
        annotate(&mut d);
        let stats = by_source(&d, Some(2 * 86_400));
        assert_eq!(stats.len(), 2);
        let s = &stats[0];
        assert_eq!(
            (s.source.as_str(), s.deployments, s.failures),
            ("Deploy", 2, 1)
        );
        assert_eq!(s.failure_rate, Some(1.0 / 3.0));
        assert_eq!(s.per_day, Some(1.0));
        // Head-commit lead times: 09:00 − 10:00 is negative (skew: unknown), 11:00 − 10:40 = 1200.
        assert_eq!(s.lead_time_median, Some(1_200));
        assert_eq!((s.recovery_median, s.rework), (Some(3_600), 1));
        assert_eq!(
            (stats[1].deployments, stats[1].failure_rate),
            (0, Some(1.0))
        );
    }

    #[test]
    fn tally_counts_and_takes_the_median_lead_time() {
        let deploys = [
            Deploy::success(),
            Deploy::success().committed("2026-11-20T09:30:00Z"),
            Deploy::success().committed("2026-11-20T10:20:00Z"),
            Deploy::failure(),
        ];
        let t = tally(&deploys);
        assert_eq!(
            t,
            Tally {
                events: 4,
                deployments: 3,
                failures: 1,
                lead_time_median: Some(1_800),
                ..Tally::default()
            }
        );
        assert_eq!(median(vec![600, 1_800]), Some(1_200));
        assert_eq!(median(vec![1, 2]), Some(1));
        assert_eq!(median(vec![]), None);
    }
}
