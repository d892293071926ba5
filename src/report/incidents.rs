//! The summary's incidents: each incident recorded or updated with the
//! deployment it is pinned on and the evidence in words, the reverts found,
//! the issues that are no incidents any more.

use super::{MAX_ROWS, Report, cell, human, link};

impl Report {
    /// The incidents recorded or updated, each with the deployment it is
    /// pinned on and why; the reverts found; the issues withdrawn.
    pub(super) fn incidents_section(&self) -> String {
        let mut md = String::new();
        let time = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        let span = |s: Option<i64>| s.map(human).unwrap_or_else(|| "—".into());
        if !self.incidents.is_empty() {
            md.push_str("| incident | title | opened | resolved | pinned on | evidence | time to restore | recovery |\n");
            md.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        }
        for p in self.incidents.iter().take(MAX_ROWS) {
            let i = &p.incident;
            let number = format!("#{}", i.number);
            let number = i
                .url
                .as_deref()
                .map_or(number.clone(), |u| link(&number, u));
            let pinned = match &p.deploy {
                Some(d) => format!(
                    "{} `{}` ({})",
                    cell(&d.source),
                    cell(&d.sha.chars().take(7).collect::<String>()),
                    cell(&d.environment)
                ),
                None => "— (counts for time to restore, not change failure rate)".into(),
            };
            md.push_str(&format!(
                "| {number} | {} | {} | {} | {pinned} | {} ({}) | {} | {} |\n",
                cell(&i.title),
                time(i.opened),
                i.resolved.map_or("open".to_string(), time),
                cell(&p.evidence),
                p.link.as_str(),
                span(p.restore_seconds()),
                span(p.recovery_seconds()),
            ));
        }
        if !self.incidents.is_empty() {
            md.push('\n');
        }
        for r in self.reverts.iter().take(MAX_ROWS) {
            let short = |s: &str| cell(&s.chars().take(7).collect::<String>());
            md.push_str(&format!(
                "Revert: `{}` (deployed {}) reverts `{}`: the {} deployment of `{}` failed as a change, recovered in {}.\n\n",
                short(&r.commit),
                time(r.by.time),
                short(&r.reverted),
                cell(&r.failed.environment),
                short(&r.failed.sha),
                human(r.recovery_seconds())
            ));
        }
        for w in self.withdrawn.iter().take(MAX_ROWS) {
            md.push_str(&format!(
                "Issue #{} of {} is no incident ({}): its group was deleted.\n\n",
                w.number,
                cell(&w.repository),
                cell(&w.reason)
            ));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use crate::dora::incident::{Pinned, Withdrawn};
    use crate::dora::{Deploy, revert::Revert};
    use crate::report::Report;

    fn pinned(title: &str) -> Pinned {
        let mut p = Pinned::example();
        p.incident.number = 41;
        p.incident.title = title.into();
        p.incident.url = Some("https://github.com/octo-org/shop/issues/41".into());
        p
    }

    #[test]
    fn an_incident_row_links_the_issue_and_says_why_it_is_pinned() {
        let r = Report {
            incidents: vec![pinned("Checkout down")],
            ..Report::default()
        };
        let md = r.incidents_section();
        assert!(
            md.contains("| [#41](https://github.com/octo-org/shop/issues/41) | Checkout down | 2026-11-20 11:10:00Z | 2026-11-20 12:40:00Z | Deploy `9f8e7d6` (production) | latest production deploy 40m before (window) | 1h 30m | 2h 10m |"),
            "{md}"
        );
    }

    #[test]
    fn a_hostile_title_stays_inside_its_cell() {
        let title = "a\r\n| b | `c` <img src=x onerror=alert(1)> **d**\n# e";
        let r = Report {
            incidents: vec![pinned(title)],
            ..Report::default()
        };
        let md = r.incidents_section();
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| [#41]")).collect();
        assert_eq!(rows.len(), 1, "{md}");
        assert_eq!(md.lines().count(), 4, "header, rule, row, blank: {md}");
        assert!(!md.contains("<img") && !md.contains("`c`"), "{md}");
        assert_eq!(
            rows[0].matches(" | ").count(),
            7,
            "eight cells: {}",
            rows[0]
        );
    }

    #[test]
    fn reverts_and_withdrawn_issues_are_said_in_words() {
        let failed = Deploy::success().sha("b2b2b2b2b2b2");
        let r = Report {
            reverts: vec![Revert {
                by: Deploy::success().at("2026-11-21T10:30:00Z").sha("c3c3c3c3"),
                failed,
                commit: "c3c3c3c3c3c3".into(),
                reverted: "b2b2b2b2b2b2".into(),
            }],
            withdrawn: vec![Withdrawn {
                repository: "octo-org/shop".into(),
                number: 45,
                reason: "closed as not planned".into(),
            }],
            ..Report::default()
        };
        let md = r.incidents_section();
        assert!(md.contains("Revert: `c3c3c3c` (deployed 2026-11-21 10:30:00Z) reverts `b2b2b2b`: the production deployment of `b2b2b2b` failed as a change, recovered in 1d."), "{md}");
        assert!(md.contains("Issue #45 of octo-org/shop is no incident (closed as not planned): its group was deleted."), "{md}");
    }
}
