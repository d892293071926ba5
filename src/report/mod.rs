//! What a run tells people: the step outputs and the job summary
//! (GitHub-flavoured Markdown). Pure rendering; `run` decides the content.

use crate::actions;
use crate::dora::{Band, Deploy, Status, Tally, by_source, tally};
use crate::duration::human;

mod charts;
mod incidents;
pub mod json;
mod markdown;

use markdown::{cell, code_block, is_repository, link, message};

/// Event rows (and per-source rows, and warnings) shown in the summary; the
/// rest are counted.
const MAX_ROWS: usize = 50;

/// Events a table shows open below the charts; a longer one is collapsed.
const COLLAPSE_ROWS: usize = 10;

/// The share of the summary the dry-run exposition may take, in bytes. With
/// [`MAX_ROWS`] rows of [`MAX_CELL`](markdown::MAX_CELL) cells and the messages, the whole
/// summary stays far under the 1 MiB GitHub keeps of a step's summary.
const MAX_EXPOSITION: usize = 256 * 1024;

/// What happened in a run, as the summary and outputs show it.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Deployments recorded (or, in a dry run, that would have been).
    pub recorded: Vec<Deploy>,
    /// Why nothing was recorded, when nothing was.
    pub skipped: Option<String>,
    /// Where the events went: a Pushgateway URL, or `None` in a dry run.
    pub destination: Option<String>,
    pub job: String,
    pub dry_run: bool,
    /// Groups deleted because their event was older than `retention`.
    pub pruned: usize,
    /// An event-mode run that did not read what is stored, and so neither
    /// pruned nor upgraded (all but one event in 16, see `dora::plan::upkeep_due`).
    pub upkeep_skipped: bool,
    /// Groups stored by the previous version (`branch`, no `ref`) rewritten
    /// with `ref`, their events and values unchanged.
    pub upgraded: usize,
    /// The retention in force (seconds), `None` = forever.
    pub retention: Option<u64>,
    /// The exposition a dry run would have pushed.
    pub exposition: Option<String>,
    /// Warnings already printed as annotations, repeated in the summary.
    pub warnings: Vec<String>,
    /// A delivery failure that `fail-on-error: false` turned into a warning.
    pub failure: Option<String>,
    /// GitHub REST calls made.
    pub github_calls: usize,
    /// `GITHUB_SERVER_URL`, for commit links.
    pub server_url: String,
    /// The EKS check, when `cluster-name` was set.
    pub cluster: Option<ClusterState>,
    /// Events pushed by this run (or, in a dry run, that would be).
    pub new_events: usize,
    /// Events that were already in the Pushgateway, left as they were.
    pub already_recorded: usize,
    /// The window the events were read from (workflows mode's `lookback`), seconds.
    pub window: Option<u64>,
    /// Flagger canary phases (state groups) pushed.
    pub canary_phases: usize,
    /// A source the cluster refused (RBAC, or a failed list): the run fails
    /// with it after the other sources' events were delivered.
    pub refusal: Option<String>,
    /// What remote-write did, when `remote-write-url` is set (not in a dry run).
    pub remote_write: Option<RemoteWriteState>,
    /// What the store's query API said it holds, when it was asked.
    pub remote_query: Option<RemoteQueryState>,
    /// Incidents recorded or updated by this run, each with its link.
    pub incidents: Vec<crate::dora::incident::Pinned>,
    /// Whether the summary draws the charts (workflows and cluster mode:
    /// a history, not one event).
    pub charts: bool,
    /// Where the JSON report was written (`report-file`), when it was.
    pub report_file: Option<std::path::PathBuf>,
    /// Issues that are no incidents any more, whose groups were deleted.
    pub withdrawn: Vec<crate::dora::incident::Withdrawn>,
    /// Reverts found in the commits this run's deployments shipped.
    pub reverts: Vec<crate::dora::revert::Revert>,
}

/// The store's answer to "which of these events do you hold?".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteQueryState {
    /// The query API's URL, without credentials.
    pub url: String,
    /// Where the URL came from (`remote-query-url`, or derived from which).
    pub origin: &'static str,
    /// Whether it answered; if not, the run looked every event up (a warning says why).
    pub answered: bool,
}

/// The remote-write part of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteWriteState {
    /// The URL, without credentials.
    pub url: String,
    /// Events and canary phases the store accepted.
    pub accepted: usize,
    /// Events the store already held (it refused them as duplicates).
    pub already_stored: usize,
    /// Requests sent, retries and splits included.
    pub requests: usize,
}

/// What the EKS check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub region: String,
    /// Whether the cluster exists and is usable (ACTIVE or UPDATING).
    pub exists: bool,
    /// `ACTIVE`, `missing`, or the status EKS reported.
    pub status: String,
}

/// The step outputs, one field per output declared in `action.yml` (the
/// drift test compares [`Outputs::pairs`] with it). Unknown values are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub skipped: String,
    pub cluster_exists: String,
    pub events: String,
    pub deployments: String,
    pub failures: String,
    pub lead_time_seconds: String,
    pub recovery_seconds: String,
    pub incidents: String,
    pub report_file: String,
}

impl Outputs {
    /// The outputs as `(name, value)` pairs, named as in `action.yml`.
    pub fn pairs(&self) -> Vec<(String, String)> {
        [
            ("skipped", &self.skipped),
            ("cluster-exists", &self.cluster_exists),
            ("events", &self.events),
            ("deployments", &self.deployments),
            ("failures", &self.failures),
            ("lead-time-seconds", &self.lead_time_seconds),
            ("recovery-seconds", &self.recovery_seconds),
            ("incidents", &self.incidents),
            ("report-file", &self.report_file),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }
}

impl Report {
    /// What was delivered: a failed delivery counts nothing.
    fn delivered(&self) -> Tally {
        if self.failure.is_some() {
            Tally::default()
        } else {
            tally(&self.recorded)
        }
    }

    /// The step outputs of this run.
    pub fn outputs(&self) -> Outputs {
        let t = self.delivered();
        Outputs {
            skipped: self.skipped.is_some().to_string(),
            // Empty when no cluster was checked: unknown is not `false`.
            cluster_exists: self
                .cluster
                .as_ref()
                .map(|c| c.exists.to_string())
                .unwrap_or_default(),
            events: t.events.to_string(),
            deployments: t.deployments.to_string(),
            failures: t.failures.to_string(),
            lead_time_seconds: t
                .lead_time_median
                .map(|s| s.to_string())
                .unwrap_or_default(),
            recovery_seconds: t.recovery_median.map(|s| s.to_string()).unwrap_or_default(),
            incidents: if self.failure.is_some() {
                "0".into()
            } else {
                self.incidents.len().to_string()
            },
            report_file: self
                .report_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// The job summary.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let t = tally(&self.recorded);
        let verb = if self.dry_run {
            "to record (dry run)"
        } else {
            "recorded"
        };
        if let Some(reason) = &self.skipped {
            md.push_str("### DORA metrics: nothing recorded\n\n");
            md.push_str(&format!("Skipped: {}.\n", message(reason)));
        } else {
            let plural = if t.events == 1 { "" } else { "s" };
            let over = self
                .window
                .map(|w| format!(" over the last {}", human(w as i64)))
                .unwrap_or_default();
            md.push_str(&format!(
                "### DORA metrics: {} event{plural} {verb}{over}\n\n",
                t.events
            ));
            if self.already_recorded > 0 {
                let store = match self.remote_query {
                    Some(_) if self.destination.is_none() => "the store",
                    _ => "the Pushgateway",
                };
                md.push_str(&format!(
                    "{} new, {} already in {store} (left as they were).\n\n",
                    self.new_events, self.already_recorded
                ));
            }
            if self.window.is_some() {
                md.push_str(&self.keys_table());
            }
            let pictures = self.pictures();
            md.push_str(&pictures);
            // Below a picture, a long table is detail: collapsed.
            let collapsed = !pictures.is_empty() && self.recorded.len() > COLLAPSE_ROWS;
            if collapsed {
                md.push_str(&format!(
                    "<details><summary>All {} events</summary>\n\n",
                    self.recorded.len()
                ));
            }
            md.push_str("| source | status | commit | ref | environment | finished | lead time | recovery |\n");
            md.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
            let mut newest: Vec<&Deploy> = self.recorded.iter().collect();
            newest.sort_by_key(|d| std::cmp::Reverse(d.time));
            for d in newest.iter().take(MAX_ROWS) {
                md.push_str(&self.row(d));
            }
            if newest.len() > MAX_ROWS {
                md.push_str(&format!(
                    "\n… and {} older events.\n",
                    newest.len() - MAX_ROWS
                ));
            }
            md.push('\n');
            if collapsed {
                md.push_str("</details>\n\n");
            }
            if let Some(lead) = t
                .lead_time_median
                .filter(|_| t.deployments > 1 && self.window.is_none())
            {
                md.push_str(&format!("Median lead time: {}.\n\n", human(lead)));
            }
        }
        md.push_str(&self.incidents_section());
        for w in self.warnings.iter().take(MAX_ROWS) {
            md.push_str(&format!("> [!WARNING]\n> {}\n\n", message(w)));
        }
        if self.warnings.len() > MAX_ROWS {
            md.push_str(&format!(
                "… and {} more warnings (in the log).\n\n",
                self.warnings.len() - MAX_ROWS
            ));
        }
        if let Some(r) = &self.refusal {
            md.push_str(&format!("> [!CAUTION]\n> {}\n\n", message(r)));
        }
        if let Some(f) = &self.failure {
            md.push_str(&format!(
                "> [!CAUTION]\n> Not delivered (`fail-on-error: false`): {}\n\n",
                message(f)
            ));
        }
        md.push_str(&self.where_it_went());
        if let Some(text) = &self.exposition {
            md.push_str("\n<details><summary>Exposition that would be pushed</summary>\n\n");
            md.push_str(&code_block(&actions::log_text(text, MAX_EXPOSITION)));
            md.push_str("\n</details>\n");
        }
        md
    }

    /// The charts of the recorded history ([`charts::charts`]), over the
    /// window up to the newest event (or from the oldest one).
    fn pictures(&self) -> String {
        let times = || self.recorded.iter().map(|d| d.time);
        let (Some(oldest), Some(newest)) = (times().min(), times().max()) else {
            return String::new();
        };
        if !self.charts {
            return String::new();
        }
        let from = self
            .window
            .and_then(|w| jiff::Timestamp::from_second(newest.as_second() - w as i64).ok())
            .map_or(oldest, |start| start.min(oldest));
        charts::charts(&self.recorded, from, newest)
    }

    /// The four keys per source over the window, each with its DORA 2024 band.
    fn keys_table(&self) -> String {
        let window = self.window.unwrap_or_default();
        let mut md = String::from(
            "| source | deployments | failures | change failure rate | deployment frequency | lead time (median) | recovery time (median) | rework |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        let sources = by_source(&self.recorded, Some(window));
        let more = sources.len().saturating_sub(MAX_ROWS);
        for s in sources.into_iter().take(MAX_ROWS) {
            let band = |b: Band| format!(" ({})", b.as_str());
            let rate = s
                .failure_rate
                .map(|r| format!("{:.0} %{}", r * 100.0, band(Band::of_failure_rate(r))))
                .unwrap_or_else(|| "—".into());
            let freq = s
                .per_day
                .map(|f| format!("{f:.2}/day{}", band(Band::of_frequency(f))))
                .unwrap_or_else(|| "—".into());
            let lead = s
                .lead_time_median
                .map(|l| format!("{}{}", human(l), band(Band::of_lead_time(l))))
                .unwrap_or_else(|| "—".into());
            let recovery = s
                .recovery_median
                .map(|r| format!("{}{}", human(r), band(Band::of_recovery(r))))
                .unwrap_or_else(|| "—".into());
            let rework = if s.deployments > 0 {
                format!("{} of {}", s.rework, s.deployments)
            } else {
                "—".into()
            };
            md.push_str(&format!(
                "| {} | {} | {} | {rate} | {freq} | {lead} | {recovery} | {rework} |\n",
                cell(&s.source),
                s.deployments,
                s.failures
            ));
        }
        if more > 0 {
            md.push_str(&format!("\n… and {more} more sources.\n"));
        }
        md.push('\n');
        md
    }

    fn row(&self, d: &Deploy) -> String {
        let status = match d.status {
            Status::Success => "✅ success",
            Status::Failure => "❌ failure",
            Status::NotReady => "⏳ not ready",
        };
        let short: String = d.sha.chars().take(7).collect();
        let is_sha =
            (7..=64).contains(&d.sha.len()) && d.sha.bytes().all(|b| b.is_ascii_hexdigit());
        let commit = if d.sha.is_empty() {
            "—".to_string()
        } else if is_sha && is_repository(&d.repository) {
            link(
                &format!("`{short}`"),
                &format!(
                    "{}/{}/commit/{}",
                    self.server_url.trim_end_matches('/'),
                    d.repository,
                    d.sha
                ),
            )
        } else {
            cell(&short)
        };
        let source = match &d.url {
            Some(url) => link(&cell(&d.source), url),
            None => cell(&d.source),
        };
        let lead = match (&d.history.changes, d.best_lead_time_seconds()) {
            (Some(c), Some(l)) if c.median_lead_seconds.is_some() => {
                let plural = if c.count == 1 { "" } else { "s" };
                format!("{} ({} change{plural})", human(l), c.count)
            }
            (_, l) => l.map(human).unwrap_or_else(|| "—".into()),
        };
        let recovery = match (d.history.recovery_seconds, &d.history.recovered_by) {
            (Some(r), Some(by)) => format!("{} (by Flux {})", human(r), cell(by)),
            (Some(r), None) => human(r),
            (None, _) => "—".into(),
        };
        format!(
            "| {source} | {status} | {commit} | {} | {} | {} | {lead} | {recovery} |\n",
            cell(&d.branch),
            cell(&d.environment),
            d.time.strftime("%Y-%m-%d %H:%M:%SZ"),
        )
    }

    fn where_it_went(&self) -> String {
        let mut text = String::new();
        if let Some(c) = &self.cluster {
            text.push_str(&format!(
                "EKS cluster {} ({}): {}. ",
                cell(&c.name),
                cell(&c.region),
                cell(&c.status)
            ));
        }
        text += &match (&self.destination, self.dry_run) {
            (_, true) => "Dry run: nothing was pushed or deleted.".to_string(),
            (Some(url), false) if self.skipped.is_none() => format!(
                "Pushed to the Pushgateway at {} (job {}), one group per event.",
                cell(url),
                cell(&self.job)
            ),
            (None, false) if self.remote_write.is_some() => String::new(),
            _ => "Nothing was pushed.".to_string(),
        };
        if let Some(rw) = self.remote_write.as_ref().filter(|_| !self.dry_run) {
            text.push_str(&format!(
                "{}Remote-write to {}: {} written ({} already stored) in {} request{}, each sample at its event's time.",
                if text.is_empty() || text.ends_with(' ') { "" } else { " " },
                cell(&rw.url),
                rw.accepted,
                rw.already_stored,
                rw.requests,
                if rw.requests == 1 { "" } else { "s" }
            ));
        }
        if let Some(q) = self.remote_query.as_ref().filter(|_| !self.dry_run) {
            text.push_str(&format!(
                " Asked the store what it holds at {} ({}): {}.",
                cell(&q.url),
                q.origin,
                if q.answered {
                    "events it holds were not looked up again"
                } else {
                    "no answer, so every event was looked up"
                }
            ));
        }
        if !self.dry_run && self.destination.is_some() && self.upkeep_skipped {
            text.push_str(&format!(
                " Pruning and upgrades: not on this event (one event in {} does them, and every workflows or cluster run).",
                crate::dora::plan::UPKEEP_EVERY
            ));
        } else if !self.dry_run && self.destination.is_some() {
            let kept = match self.retention {
                Some(s) => format!("older than {}", human(s as i64)),
                None => "none: retention is 0 (keep forever)".into(),
            };
            text.push_str(&format!(
                " Pruned {} group{} ({kept}).",
                self.pruned,
                if self.pruned == 1 { "" } else { "s" }
            ));
        }
        if self.upgraded > 0 {
            text.push_str(&format!(
                " Upgraded {} group{} stored before the `ref` label (values unchanged).",
                self.upgraded,
                if self.upgraded == 1 { "" } else { "s" }
            ));
        }
        if self.canary_phases > 0 {
            text.push_str(&format!(" Canary phases updated: {}.", self.canary_phases));
        }
        if self.github_calls > 0 {
            text.push_str(&format!(" GitHub API calls: {}.", self.github_calls));
        }
        text.push('\n');
        text
    }
}

/// The summary of a run that failed: the error, neutralised like every
/// other value shown.
pub fn failed_markdown(error: &str) -> String {
    format!("### DORA metrics: failed\n\n{}\n", message(error))
}

/// The Markdown checks of the process tests (`tests/support/commands.rs`),
/// shared so the unit tests read the summary with the same parser.
#[cfg(test)]
#[path = "../../tests/support/commands.rs"]
#[allow(dead_code)] // its stdout checks serve the process tests
mod test_markdown;

#[cfg(test)]
mod tests {
    use super::markdown::MAX_MESSAGE;
    use super::*;

    fn report(recorded: Vec<Deploy>) -> Report {
        Report {
            recorded,
            destination: Some("http://127.0.0.1:9091/".into()),
            job: "dora".into(),
            retention: Some(90 * 86_400),
            server_url: "https://github.com".into(),
            ..Report::default()
        }
    }

    #[test]
    fn outputs_count_what_was_recorded() {
        let o = report(vec![Deploy::success(), Deploy::failure()]).outputs();
        assert_eq!(o.skipped, "false");
        assert_eq!(
            (
                o.events.as_str(),
                o.deployments.as_str(),
                o.failures.as_str()
            ),
            ("2", "1", "1")
        );
        assert_eq!(o.lead_time_seconds, "1800");
        assert_eq!(o.recovery_seconds, "");
        let names: Vec<String> = o.pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "skipped",
                "cluster-exists",
                "events",
                "deployments",
                "failures",
                "lead-time-seconds",
                "recovery-seconds",
                "incidents",
                "report-file"
            ]
        );
    }

    #[test]
    fn a_failed_delivery_counts_nothing() {
        let r = Report {
            failure: Some("pushgateway: 500".into()),
            ..report(vec![Deploy::success()])
        };
        assert_eq!(r.outputs().events, "0");
        assert!(r.markdown().contains("Not delivered"));
    }

    #[test]
    fn summary_links_the_commit_and_shows_lead_time() {
        let md = report(vec![Deploy::success()]).markdown();
        assert!(md.starts_with("### DORA metrics: 1 event recorded"), "{md}");
        assert!(md.contains("[`9f8e7d6`](https://github.com/octo-org/shop/commit/9f8e7d6c5b4a39281706f5e4d3c2b1a098765432)"), "{md}");
        assert!(md.contains("| ✅ success |"), "{md}");
        assert!(md.contains("| 30m |"), "{md}");
        // The deployed ref under the series label's name (a tag or a sha is no branch).
        assert!(md.contains("| commit | ref | environment |"), "{md}");
        assert!(md.contains("| main | production |"), "{md}");
        assert!(md.contains("Pruned 0 groups (older than 90d)."), "{md}");
    }

    #[test]
    fn table_cells_are_escaped() {
        let d = Deploy {
            source: "a|b\nc".into(),
            ..Deploy::success()
        };
        let md = report(vec![d]).markdown();
        assert!(md.contains("| a\\|b\\\\nc |"), "{md}");
    }

    #[test]
    fn a_skip_says_why() {
        let r = Report {
            skipped: Some("conclusion `cancelled` is not a deployment outcome".into()),
            ..report(vec![])
        };
        let md = r.markdown();
        assert!(md.contains("nothing recorded"), "{md}");
        assert!(
            // The action's own quotes are code, as in the log.
            md.contains("Skipped: conclusion `cancelled` is not a deployment outcome."),
            "{md}"
        );
        assert_eq!(r.outputs().skipped, "true");
        assert_eq!(r.outputs().events, "0");
    }

    #[test]
    fn a_dry_run_shows_the_exposition_collapsed() {
        let r = Report {
            dry_run: true,
            destination: None,
            exposition: Some("x 1\n".into()),
            ..report(vec![Deploy::success()])
        };
        let md = r.markdown();
        assert!(md.contains("1 event to record (dry run)"), "{md}");
        assert!(
            md.contains(
                "<details><summary>Exposition that would be pushed</summary>\n\n```text\nx 1\n```"
            ),
            "{md}"
        );
        assert!(md.contains("Dry run: nothing was pushed"));
    }

    /// The summary as GitHub reads it: the same parser the process tests use.
    use super::test_markdown::parse_markdown as parse_md;

    const HOSTILE: &str = "x|y\r::error::pwned\n<img src=x onerror=alert(1)>`code`](http://evil/) &amp; *em* \u{2028}::warning::w\u{85}\u{0}\u{1b}[31m";

    /// The inline code spans and the HTML of `md`, as a CommonMark reader sees them.
    fn code_spans_and_html(md: &str) -> (Vec<String>, usize) {
        use pulldown_cmark::{Event, Parser};
        let (mut code, mut html) = (vec![], 0);
        for event in Parser::new(md) {
            match event {
                Event::Code(c) => code.push(c.to_string()),
                Event::Html(_) | Event::InlineHtml(_) => html += 1,
                _ => {}
            }
        }
        (code, html)
    }

    #[test]
    fn the_actions_own_quotes_are_code_and_what_they_quote_stays_inert() {
        let md = message("input `incident-window`: invalid value `<b>1d</b> *x*`: not a duration");
        let (code, html) = code_spans_and_html(&md);
        assert_eq!(code, ["incident-window", "<b>1d</b> *x*"], "{md}");
        assert_eq!(html, 0, "{md}");
        // A quoted value holding backticks cannot open or close a span of its
        // own: at worst the pairing shifts, and each piece is still inert.
        for text in [
            "branch `a`b` is not a deploy branch",
            "value `` is empty",
            "`unclosed <img src=x onerror=alert(1)>",
            "ref `x\n::error::y` and `[l](javascript:alert(1))`",
            HOSTILE,
        ] {
            let md = message(text);
            let (code, html) = code_spans_and_html(&md);
            assert_eq!(html, 0, "{text}: {md}");
            assert!(!md.contains('\n'), "{text}: {md}");
            let p = parse_md(&md);
            assert!(p.links.is_empty(), "{text}: {md}");
            let shown = actions::one_line(text);
            for c in code {
                assert!(
                    shown.contains(&c),
                    "{text}: span {c:?} is not text of the message"
                );
            }
        }
        assert_eq!(
            code_spans_and_html(&message("value `` is empty")).0.len(),
            0
        );
        // A quote the runner would read as a legacy command (`##[` anywhere
        // on a line, when a local run prints its summary) is no code span:
        // its text is escaped like the rest.
        for text in ["skipped: `##[error]pwned`", "`a ##[warning]b` c"] {
            let md = message(text);
            assert!(!md.contains("##["), "{text}: {md}");
            assert!(code_spans_and_html(&md).0.is_empty(), "{text}: {md}");
        }
        // Long messages are still cut.
        let long = format!("`{}`", "x".repeat(5_000));
        assert!(message(&long).chars().count() < MAX_MESSAGE + 40);
    }

    #[test]
    fn hostile_values_stay_in_their_cells_and_bring_no_html() {
        let d = Deploy {
            source: HOSTILE.into(),
            branch: HOSTILE.into(),
            environment: HOSTILE.into(),
            sha: HOSTILE.into(),
            url: Some("https://github.com/o/r/actions/runs/1?a=|b)(c)[d]<e>`f\"".into()),
            ..Deploy::success()
        };
        let r = Report {
            warnings: vec![HOSTILE.into()],
            skipped: None,
            ..report(vec![d])
        };
        let md = r.markdown();
        let parsed = parse_md(&md);
        assert_eq!(
            parsed.rows,
            [8, 8],
            "one header and one row of 8 cells:\n{md}"
        );
        assert!(parsed.html.is_empty(), "raw HTML: {:?}\n{md}", parsed.html);
        for bad in ['\r', '\u{2028}', '\u{85}', '\u{0}', '\u{1b}'] {
            assert!(!md.contains(bad), "{bad:?} in\n{md}");
        }
        assert!(
            !md.lines().any(|l| l.trim_start().starts_with("::")),
            "{md}"
        );
        assert_eq!(
            parsed.links.len(),
            1,
            "only the run link: {:?}",
            parsed.links
        );
        let link = &parsed.links[0];
        assert!(
            link.starts_with(
                "https://github.com/o/r/actions/runs/1?a=%7Cb%29%28c%29%5Bd%5D%3Ce%3E%60f%22"
            ),
            "{link}"
        );
    }

    #[test]
    fn only_http_links_reach_the_summary() {
        for url in [
            "javascript:alert(1)",
            "data:text/html,<script>",
            "ftp://h/x",
            "/relative",
            "https://",
            "https://h/\r\n",
        ] {
            let d = Deploy {
                url: Some(url.into()),
                ..Deploy::success()
            };
            let parsed = parse_md(&report(vec![d]).markdown());
            assert!(
                parsed
                    .links
                    .iter()
                    .all(|l| l.starts_with("https://github.com/")),
                "{url}: {:?}",
                parsed.links
            );
        }
        let d = Deploy {
            url: Some("https://user:pw@example.test/log".into()),
            ..Deploy::success()
        };
        assert!(
            parse_md(&report(vec![d]).markdown())
                .links
                .contains(&"https://example.test/log".to_string())
        );
        // A repository name that is not `owner/name` gets no commit link.
        let d = Deploy {
            repository: "o/r)(javascript:x".into(),
            ..Deploy::success()
        };
        assert!(parse_md(&report(vec![d]).markdown()).links.is_empty());
    }

    #[test]
    fn the_exposition_cannot_close_its_code_block() {
        let text = "a{w=\"```\"} 1\n````\nb{w=\"\r::error::x\"} 1\n</details><script>\n";
        let r = Report {
            dry_run: true,
            destination: None,
            exposition: Some(text.into()),
            ..report(vec![Deploy::success()])
        };
        let md = r.markdown();
        let parsed = parse_md(&md);
        assert_eq!(parsed.code.len(), 1, "{md}");
        assert_eq!(
            parsed.code[0],
            "a{w=\"```\"} 1\n````\nb{w=\"\\r::error::x\"} 1\n</details><script>\n"
        );
        assert!(md.ends_with("`````\n\n</details>\n"), "{md}");
        assert!(!md.contains('\r'));
    }

    #[test]
    fn values_are_cut_and_the_summary_stays_small() {
        let huge = "w".repeat(20_000_000);
        let d = Deploy {
            source: huge.clone(),
            branch: huge.clone(),
            environment: huge.clone(),
            ..Deploy::success()
        };
        let r = Report {
            dry_run: true,
            destination: None,
            warnings: vec!["w".repeat(5_000); 500],
            exposition: Some(format!("a{{w=\"{huge}\"}} 1\n").repeat(5)),
            window: Some(86_400),
            ..report(
                std::iter::once(d)
                    .chain(vec![Deploy::success(); 59])
                    .collect(),
            )
        };
        let md = r.markdown();
        assert!(md.len() < 700_000, "{} bytes", md.len());
        assert!(
            md.contains("… (19999800 more characters)"),
            "a cell says what was cut"
        );
        assert!(md.contains("… and 450 more warnings"));
        assert!(md.contains("… and 10 older events."));
        let code = &parse_md(&md).code;
        assert_eq!(code.len(), 1);
        assert!(
            code[0].len() < 20_000 && code[0].contains("more characters)"),
            "{}",
            code[0].len()
        );
    }

    #[test]
    fn a_failure_summary_is_neutralised() {
        let md = failed_markdown("payload: bad `x`\r::error::y <b>|");
        assert!(parse_md(&md).html.is_empty(), "{md}");
        assert!(!md.contains('\r') && md.contains("bad `x`"), "{md}");
        assert!(md.contains("&lt;b&gt;\\|"), "{md}");
    }
}
