//! What a deployment's neighbours say about it: recovery time and the
//! previous success, from the same source's other deployments.

use jiff::Timestamp;

use super::*;

/// Fills in [`History`] for every deployment from the others of the same
/// repository, source and branch, in event-time order: recovery time (the
/// first failure after the last success → the next success) and the
/// previous success's sha. Deployments are not reordered.
pub fn annotate(deploys: &mut [Deploy]) {
    let mut order: Vec<usize> = (0..deploys.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&deploys[a], &deploys[b]);
        (a.stream(), a.time).cmp(&(b.stream(), b.time))
    });
    let mut first_failure: Option<Timestamp> = None;
    let mut last_success: Option<String> = None;
    let mut stream = None;
    for i in order {
        let this = deploys[i].stream();
        let d = &mut deploys[i];
        if stream.as_ref() != Some(&this) {
            stream = Some(this);
            first_failure = None;
            last_success = None;
        }
        d.history.previous_success_sha = last_success.clone();
        match d.status {
            Status::Failure => {
                first_failure.get_or_insert(d.time);
            }
            Status::Success => {
                d.history.recovery_seconds = first_failure
                    .take()
                    .map(|f| d.time.as_second() - f.as_second());
                last_success = Some(d.sha.clone());
            }
            Status::NotReady => {}
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn recovery_runs_from_the_first_failure_of_a_streak_to_the_next_success() {
        let mut d = vec![
            Deploy::success().at("2026-11-20T09:00:00Z").sha("a"),
            Deploy::failure().at("2026-11-20T10:00:00Z").sha("b"),
            Deploy::failure().at("2026-11-20T10:20:00Z").sha("c"),
            Deploy::success().at("2026-11-20T11:30:00Z").sha("d"),
            Deploy::success().at("2026-11-20T12:00:00Z").sha("e"),
            // Another source: its own stream.
            Deploy {
                source: "Other".into(),
                ..Deploy::success().at("2026-11-20T11:00:00Z").sha("x")
            },
        ];
        // Order of input does not matter.
        d.reverse();
        annotate(&mut d);
        d.reverse();
        assert_eq!(d[0].history, History::default());
        assert_eq!(d[1].history.previous_success_sha.as_deref(), Some("a"));
        assert_eq!(d[3].history.recovery_seconds, Some(5_400), "11:30 − 10:00");
        assert!(d[3].is_rework());
        assert_eq!(d[3].history.previous_success_sha.as_deref(), Some("a"));
        assert_eq!(d[4].history.recovery_seconds, None);
        assert_eq!(d[4].history.previous_success_sha.as_deref(), Some("d"));
        assert_eq!(d[5].history, History::default());
        let t = tally(&d);
        assert_eq!((t.recovery_median, t.rework), (Some(5_400), 1));
    }
}
