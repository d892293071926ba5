//! Pictures for the job summary, as GitHub renders them in Markdown:
//! Mermaid `xychart-beta` blocks (no image host, no JavaScript of ours).
//! Deployments and failed deployments per day (a bar each, the failures
//! drawn over the attempts), and the median lead time per day (a line).
//! Long windows are bucketed by week, then month, then year, so a chart has at most
//! [`MAX_BUCKETS`] bars whatever the window (1 to 500 days and more).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::dora::{Deploy, Status, median};

/// The most bars a chart has: readable at a summary's width.
pub const MAX_BUCKETS: usize = 40;

/// The most days drawn a bar each: a month, whose `mm-dd` labels fit side by side.
const MAX_DAYS: i64 = 31;

/// How the window is cut into bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    /// The finest bucket that keeps `days` within [`MAX_BUCKETS`] bars.
    pub fn for_days(days: i64) -> Bucket {
        if days <= MAX_DAYS {
            Bucket::Day
        } else if days <= 7 * (MAX_BUCKETS as i64 - 1) {
            Bucket::Week
        } else if days <= 30 * (MAX_BUCKETS as i64 - 2) {
            Bucket::Month
        } else {
            Bucket::Year
        }
    }

    fn word(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
            Bucket::Year => "year",
        }
    }

    /// The first day of the bucket holding `day` (weeks start on Monday).
    fn start(self, day: Date) -> Date {
        match self {
            Bucket::Day => day,
            Bucket::Week => day
                .checked_sub(
                    jiff::Span::new().days(i64::from(day.weekday().to_monday_zero_offset())),
                )
                .unwrap_or(day),
            Bucket::Month => day.first_of_month(),
            Bucket::Year => day.first_of_year(),
        }
    }

    /// The first day of the next bucket.
    fn next(self, start: Date) -> Date {
        let span = match self {
            Bucket::Day => jiff::Span::new().days(1),
            Bucket::Week => jiff::Span::new().weeks(1),
            Bucket::Month => jiff::Span::new().months(1),
            Bucket::Year => jiff::Span::new().years(1),
        };
        start.checked_add(span).unwrap_or(start)
    }

    /// A bar's label, short enough for the bars side by side and unique
    /// within a chart (Mermaid puts bars of the same label in one place):
    /// `11-20`, the ISO week `W47`, the month `11/26`, the year.
    fn label(self, start: Date) -> String {
        match self {
            Bucket::Day => format!("{:02}-{:02}", start.month(), start.day()),
            Bucket::Week => format!("W{:02}", start.iso_week_date().week()),
            Bucket::Month => format!("{:02}/{:02}", start.month(), start.year() % 100),
            Bucket::Year => format!("{:04}", start.year()),
        }
    }
}

/// One bar of the charts.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    label: String,
    attempts: usize,
    failures: usize,
    /// Median lead time of the bar's deployments, hours.
    lead_hours: Option<f64>,
}

fn day(t: Timestamp) -> Date {
    t.to_zoned(TimeZone::UTC).date()
}

/// The bars from `from` to `to` (UTC days), each with the deployments in it.
fn bars(deploys: &[Deploy], from: Timestamp, to: Timestamp) -> (Bucket, Vec<Bar>) {
    let (first, last) = (day(from), day(to));
    let days = (last - first).get_days() as i64 + 1;
    let bucket = Bucket::for_days(days.max(1));
    let mut out = Vec::new();
    let mut start = bucket.start(first);
    while start <= last && out.len() < MAX_BUCKETS {
        let end = bucket.next(start);
        let inside: Vec<&Deploy> = deploys
            .iter()
            .filter(|d| (start..end).contains(&day(d.time)))
            .collect();
        let leads = inside
            .iter()
            .filter_map(|d| d.best_lead_time_seconds())
            .collect();
        out.push(Bar {
            label: bucket.label(start),
            attempts: inside
                .iter()
                .filter(|d| matches!(d.status, Status::Success | Status::Failure))
                .count(),
            failures: inside
                .iter()
                .filter(|d| d.status == Status::Failure)
                .count(),
            lead_hours: median(leads).map(|s| s as f64 / 3_600.0),
        });
        start = end;
    }
    (bucket, out)
}

/// The two charts for `deploys` over `from`..`to`, as Markdown (empty when
/// there is no deployment attempt to draw).
pub fn charts(deploys: &[Deploy], from: Timestamp, to: Timestamp) -> String {
    let (bucket, bars) = bars(deploys, from, to);
    if bars.iter().all(|b| b.attempts == 0) {
        return String::new();
    }
    let labels = bars
        .iter()
        .map(|b| format!("\"{}\"", b.label))
        .collect::<Vec<_>>()
        .join(", ");
    let counts = |f: fn(&Bar) -> usize| {
        bars.iter()
            .map(|b| f(b).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let top = bars.iter().map(|b| b.attempts).max().unwrap_or(0).max(1);
    let per = bucket.word();
    let span = format!("{} to {}", day(from), day(to));
    let mut md = format!(
        "```mermaid\n{}\nxychart-beta\n    title \"Deployments per {per}, {span}: all (green), failed (red)\"\n    \
         x-axis [{labels}]\n    y-axis \"deployments\" 0 --> {top}\n    bar [{}]\n    bar [{}]\n```\n\n",
        init("#2da44e, #cf222e"),
        counts(|b| b.attempts),
        counts(|b| b.failures),
    );
    let leads: Vec<f64> = bars.iter().filter_map(|b| b.lead_hours).collect();
    if !leads.is_empty() {
        // A bar without a deployment repeats the line's last value, so the
        // line stays continuous (Mermaid has no gaps); the table has the detail.
        let mut last = leads[0];
        let points = bars
            .iter()
            .map(|b| {
                last = b.lead_hours.unwrap_or(last);
                format!("{last:.1}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let top = leads
            .iter()
            .copied()
            .fold(0.0_f64, f64::max)
            .ceil()
            .max(1.0);
        md.push_str(&format!(
            "```mermaid\n{}\nxychart-beta\n    title \"Lead time for changes, median per {per} (hours), {span}\"\n    \
             x-axis [{labels}]\n    y-axis \"hours\" 0 --> {top}\n    line [{points}]\n```\n\n",
            init("#0969da"),
        ));
    }
    md
}

/// The chart's size and colours: a summary's width, a third as high.
fn init(palette: &str) -> String {
    format!(
        "%%{{init: {{\"xyChart\": {{\"width\": 900, \"height\": 320, \"xAxis\": {{\"labelFontSize\": 10}}}}, \"themeVariables\": {{\"xyChart\": {{\"plotColorPalette\": \"{palette}\"}}}}}}}}%%"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::fixtures::at;

    fn deploy(t: &str, status: Status, lead_hours: i64) -> Deploy {
        let time = at(t);
        Deploy {
            status,
            time,
            commit_time: Timestamp::from_second(time.as_second() - lead_hours * 3_600).ok(),
            ..Deploy::success()
        }
    }

    #[test]
    fn buckets_grow_with_the_window() {
        assert_eq!(Bucket::for_days(1), Bucket::Day);
        assert_eq!(Bucket::for_days(31), Bucket::Day);
        assert_eq!(Bucket::for_days(32), Bucket::Week);
        assert_eq!(Bucket::for_days(273), Bucket::Week);
        assert_eq!(Bucket::for_days(500), Bucket::Month);
        assert_eq!(Bucket::for_days(3_650), Bucket::Year);
        for days in [
            1, 30, 31, 32, 90, 200, 273, 274, 500, 1_139, 1_140, 3_650, 40_000,
        ] {
            let from = at("2026-01-01T00:00:00Z");
            let to = Timestamp::from_second(from.as_second() + (days - 1) * 86_400).unwrap();
            let (_, bars) = bars(&[], from, to);
            assert!(
                bars.len() <= MAX_BUCKETS,
                "{days} days: {} bars",
                bars.len()
            );
            let labels: std::collections::BTreeSet<&str> =
                bars.iter().map(|b| b.label.as_str()).collect();
            assert_eq!(labels.len(), bars.len(), "{days} days: labels repeat");
        }
    }

    #[test]
    fn bars_count_attempts_and_failures_per_day() {
        let deploys = [
            deploy("2026-11-20T10:00:00Z", Status::Success, 2),
            deploy("2026-11-20T12:00:00Z", Status::Failure, 0),
            deploy("2026-11-22T09:00:00Z", Status::Success, 4),
            deploy("2026-11-22T10:00:00Z", Status::NotReady, 0),
        ];
        let (bucket, bars) = bars(
            &deploys,
            at("2026-11-20T00:00:00Z"),
            at("2026-11-22T23:00:00Z"),
        );
        assert_eq!(bucket, Bucket::Day);
        let got: Vec<(&str, usize, usize, Option<f64>)> = bars
            .iter()
            .map(|b| (b.label.as_str(), b.attempts, b.failures, b.lead_hours))
            .collect();
        assert_eq!(
            got,
            [
                ("11-20", 2, 1, Some(2.0)),
                ("11-21", 0, 0, None),
                ("11-22", 1, 0, Some(4.0)),
            ]
        );
        let md = charts(
            &deploys,
            at("2026-11-20T00:00:00Z"),
            at("2026-11-22T23:00:00Z"),
        );
        assert_eq!(md.matches("```mermaid\n").count(), 2, "{md}");
        assert!(
            md.contains("x-axis [\"11-20\", \"11-21\", \"11-22\"]"),
            "{md}"
        );
        assert!(md.contains("2026-11-20 to 2026-11-22"), "{md}");
        assert!(md.contains("bar [2, 0, 1]\n    bar [1, 0, 0]"), "{md}");
        assert!(md.contains("line [2.0, 2.0, 4.0]"), "{md}");
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let monday = Bucket::Week.start(Date::constant(2026, 11, 22));
        assert_eq!(monday, Date::constant(2026, 11, 16));
        assert_eq!(Bucket::Week.label(monday), "W47");
        let month = Bucket::Month.start(Date::constant(2026, 11, 22));
        assert_eq!(Bucket::Month.label(month), "11/26");
        assert_eq!(Bucket::Month.next(month), Date::constant(2026, 12, 1));
    }

    #[test]
    fn nothing_to_draw_draws_nothing() {
        let not_ready = [deploy("2026-11-20T10:00:00Z", Status::NotReady, 0)];
        assert_eq!(
            charts(
                &not_ready,
                at("2026-11-20T00:00:00Z"),
                at("2026-11-21T00:00:00Z")
            ),
            ""
        );
        assert_eq!(
            charts(&[], at("2026-11-20T00:00:00Z"), at("2026-11-21T00:00:00Z")),
            ""
        );
    }
}
