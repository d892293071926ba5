//! No store (a dry run): the groups a real run would push, printed to the
//! log and kept for the summary.

use crate::actions;
use crate::dora::Group;
use crate::dora::incident_plan::IncidentPlan;
use crate::dora::plan::Plan;

/// `# group: job=dora repository="…" …`, the line printed above each group.
pub fn group_header(job: &str, group: &Group) -> String {
    group
        .grouping
        .iter()
        .fold(format!("# group: job={job}"), |h, (k, v)| {
            format!("{h} {k}={v:?}")
        })
}

/// Prints every group of `plan` (its events, then its canary phases) as it
/// would be pushed, each under its [`group_header`]; returns the text.
pub fn print(plan: &Plan, job: &str) -> String {
    let text: String = plan
        .events
        .iter()
        .map(|(g, _)| g)
        .chain(&plan.phases)
        .map(|g| format!("{}\n{}", group_header(job, g), g.exposition))
        .collect::<Vec<_>>()
        .join("\n");
    actions::print(&text);
    text
}

/// Prints the incidents' and reverts' groups a real run would push, as [`print()`] does.
pub fn print_incidents(plan: &IncidentPlan, job: &str) -> String {
    let events = Plan {
        events: plan.events.clone(),
        ..Plan::default()
    };
    print(&events, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_every_grouping_label_quoted() {
        let group = Group {
            grouping: vec![
                ("repository".into(), "octo/shop".into()),
                ("run_id".into(), "7".into()),
            ],
            exposition: String::new(),
            series_labels: vec![],
            samples: vec![],
        };
        assert_eq!(
            group_header("dora", &group),
            r#"# group: job=dora repository="octo/shop" run_id="7""#
        );
    }
}
