//! What a run records: what is stored, the plan, the sinks; or, with no
//! sink, the dry-run print.

use jiff::Timestamp;

use crate::Result;
use crate::clients::Clients;
use crate::dora;
use crate::dora::incident::Observed;
use crate::dora::incident_plan::{self, IncidentPlan};
use crate::dora::plan::{self, Plan, Retention, Stored};
use crate::inputs::Inputs;
use crate::report::{RemoteQueryState, Report};
use crate::sinks::pushgateway::Listing;
use crate::sinks::{self, dry_run, pushgateway};
use crate::sources::lookups;

/// `retention`, where it applies: a remote-write store keeps its own.
pub(super) fn retention(inputs: &Inputs) -> Retention {
    Retention::new(inputs.retention, inputs.uses_pushgateway())
}

/// What the run knows of the stored groups before it records.
#[derive(Default)]
pub(super) struct Read {
    /// The listing, when the source read it beside its own calls.
    pub(super) done: Option<Result<Listing>>,
    /// Whether to read it (see [`Collected::upkeep`](super::collect::Collected::upkeep)).
    pub(super) upkeep: bool,
}

/// What the sources found besides the events, for [`record`] and [`print()`].
pub(super) struct Found<'a> {
    pub(super) phases: &'a [dora::CanaryPhase],
    pub(super) read: Read,
    /// Incidents (and issues that are none any more).
    pub(super) observed: Vec<Observed>,
    /// The run's environment, where an incident without an `environment:` label happened.
    pub(super) environment: &'a str,
}

/// The incidents' part of the plan: each pinned on this run's deployments
/// or the stored ones; the reverts this run's deployments shipped.
fn plan_incidents(
    inputs: &Inputs,
    found: Found,
    deploys: &[dora::Deploy],
    stored: &Stored,
    now: Timestamp,
) -> IncidentPlan {
    let scope = incident_plan::Scope {
        job: &inputs.job,
        environment: found.environment,
        window: inputs.incident_window,
        now,
        retention: retention(inputs),
    };
    incident_plan::plan_incidents(found.observed, deploys, stored, &scope)
}

/// Reads what is stored (unless the source did, or this is no upkeep run),
/// finds which events are new, completes them (one GitHub look-up each, see
/// [`lookups::complete`]), plans, and delivers the plan. Events already
/// stored are left as they are: re-running changes nothing.
pub(super) async fn record(
    inputs: &Inputs,
    clients: &Clients,
    deploys: &mut [dora::Deploy],
    mut found: Found<'_>,
    now: Timestamp,
    report: &mut Report,
) -> Result<()> {
    let (phases, read) = (found.phases, std::mem::take(&mut found.read));
    let listing = match (read.done, &clients.pushgateway) {
        (Some(done), _) => Some(done?),
        (None, Some(p)) if read.upkeep => Some(p.listing(&dora::FAMILIES).await?),
        (None, Some(_)) => None,
        (None, None) => Some(held(clients, deploys, read.upkeep, now, inputs, report).await),
    };
    report.upkeep_skipped = listing.is_none();
    let skipped = listing.as_ref().map_or(0, |l| l.skipped);
    if skipped > 0 {
        report.warnings.push(format!(
            "{} stored groups larger than {} were skipped unread (the groups this action writes are a few KB)",
            skipped,
            crate::http::size(pushgateway::GROUP_LIMIT)
        ));
    }
    let stored = match &listing {
        Some(listing) => Stored::new(&listing.groups),
        None => Stored::unread(),
    };
    let job = &inputs.job;
    let new = plan::new_events(deploys, &stored, job);
    lookups::complete(
        &clients.github,
        deploys,
        stored.groups,
        &new,
        &mut report.warnings,
    )
    .await;
    plan::adopt(deploys, &new, &stored, job);
    let plan = plan::plan(deploys, &new, phases, &stored, job, now, retention(inputs));
    let incidents = plan_incidents(inputs, found, deploys, &stored, now);
    let (pushgateway, remote) = (clients.pushgateway.as_ref(), clients.remote.as_ref());
    sinks::deliver(plan, pushgateway, remote, job, now, report).await?;
    sinks::deliver_incidents(incidents, pushgateway, remote, job, report).await
}

/// What the remote-write store holds of this run's events, when its query
/// API is known (`remote-query-url`) and the run reads what is stored: one
/// instant query reaching back to the oldest event. A store that does not
/// answer is a warning; the run then looks every event up, as without it.
async fn held(
    clients: &Clients,
    deploys: &[dora::Deploy],
    upkeep: bool,
    now: Timestamp,
    inputs: &Inputs,
    report: &mut Report,
) -> Listing {
    let Some(query) = clients.remote_query.as_ref().filter(|_| upkeep) else {
        return Listing::default();
    };
    let Some(oldest) = deploys.iter().map(|d| d.time).min() else {
        return Listing::default();
    };
    // A minute more than the oldest event's age, so it lies inside the range.
    let range = now.as_second() - oldest.as_second() + 60;
    let answer = query
        .instant(&dora::held::held_query(&inputs.job, range), now)
        .await;
    report.remote_query = Some(RemoteQueryState {
        url: query.display_url(),
        origin: query.origin(),
        answered: answer.is_ok(),
    });
    match answer {
        Ok(series) => Listing {
            groups: dora::held::held_groups(series),
            skipped: 0,
        },
        Err(e) => {
            report.warnings.push(format!(
                "{e}: every event is looked up as if none were stored"
            ));
            Listing::default()
        }
    }
}

/// No sink (a dry run): the events completed as a real run would, printed
/// as the groups a real run would push.
pub(super) async fn print(
    inputs: &Inputs,
    github: &crate::github::GitHub,
    deploys: &mut [dora::Deploy],
    found: Found<'_>,
    now: Timestamp,
    report: &mut Report,
) {
    let phases = found.phases;
    let all_new = vec![true; deploys.len()];
    lookups::complete(github, deploys, &[], &all_new, &mut report.warnings).await;
    let nothing = Stored::new(&[]);
    let plan: Plan = plan::plan(
        deploys,
        &all_new,
        phases,
        &nothing,
        &inputs.job,
        now,
        Retention(None),
    );
    report.canary_phases = plan.phases.len();
    report.new_events = plan.events.len();
    let mut exposition = dry_run::print(&plan, &inputs.job);
    let incidents = plan_incidents(inputs, found, deploys, &nothing, now);
    if !incidents.events.is_empty() {
        exposition.push('\n');
        exposition.push_str(&dry_run::print_incidents(&incidents, &inputs.job));
    }
    report.exposition = Some(exposition);
    report.incidents = incidents.pinned;
    report.reverts = incidents.reverts;
}
