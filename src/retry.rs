//! Bounded retries with exponential backoff, shared by every HTTP client so
//! that "retried within a bound" means the same thing everywhere.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::http::Failure;

/// How long to keep trying: delays double from `first` up to `max_delay`,
/// and no new attempt starts once `budget` would be exceeded by waiting.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max_delay: Duration,
    pub budget: Duration,
}

impl Backoff {
    /// The Pushgateway's policy: about 30 s in total, then give up.
    pub const PUSHGATEWAY: Backoff = Backoff::from_half_a_second(8, 30);
    /// AWS calls (STS, EKS), the GitHub OIDC token and the cluster's list
    /// calls: a run cannot go on without them, so they get ~20 s.
    pub const AWS: Backoff = Backoff::from_half_a_second(4, 20);
    /// GitHub REST history (workflows mode): a run is worth waiting for, within a minute.
    pub const GITHUB_HISTORY: Backoff = Backoff::from_half_a_second(8, 60);
    /// GitHub REST look-ups that can degrade to a warning: give up sooner.
    pub const GITHUB: Backoff = Backoff::from_half_a_second(4, 15);
    /// The store's query API: a run without its answer falls back to
    /// looking every event up, so it is not worth more than ~15 s.
    pub const STORE_QUERY: Backoff = Backoff::from_half_a_second(4, 15);

    /// Delays doubling from 500 ms up to `max_delay` seconds, within `budget` seconds.
    const fn from_half_a_second(max_delay: u64, budget: u64) -> Backoff {
        Backoff {
            first: Duration::from_millis(500),
            max_delay: Duration::from_secs(max_delay),
            budget: Duration::from_secs(budget),
        }
    }
}

/// The outcome of one attempt.
pub enum Attempt<T> {
    Done(T),
    /// Worth trying again (connection refused, timeout, 5xx); the failure says what happened.
    Retry(Failure),
    /// The server said when to try again (a rate limit): wait that long, if the budget allows.
    RetryAfter(Failure, Duration),
    /// Trying again cannot help (4xx, malformed answer).
    Fail(Failure),
}

/// `failure` with a note about the retries appended to its message; its
/// status and cause are kept (they are the last attempt's).
fn gave_up(mut failure: Failure, note: String) -> Failure {
    failure.message = format!("{} ({note})", failure.message);
    failure
}

/// Runs `op` until it is done, fails for good, or the budget is spent. The
/// failure of the last attempt is returned, its message saying how many
/// attempts were made.
///
/// The budget is a hard bound on the whole call, not only on when the last
/// attempt may start: an attempt still running when the budget runs out
/// (a server that never answers, each attempt waiting out its own request
/// timeout) is cut there. So a documented "about 30 s" is never 40.
pub async fn retry<T, F, Fut>(policy: Backoff, mut op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let start = Instant::now();
    let mut delay = policy.first;
    let mut attempts = 0;
    let mut last_error: Option<Failure> = None;
    loop {
        attempts += 1;
        let remaining = policy.budget.saturating_sub(start.elapsed());
        let Ok(outcome) = tokio::time::timeout(remaining, op()).await else {
            let note = format!(
                "gave up after {attempts} attempts in {:.0?}: the last one did not finish within the retry budget",
                start.elapsed()
            );
            return Err(gave_up(
                last_error.unwrap_or_else(|| Failure::new("no answer")),
                note,
            ));
        };
        // What to wait before the next attempt: what the server asks, or the backoff's delay.
        let (e, wait, asked) = match outcome {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::RetryAfter(e, wait) => (e, wait, true),
            Attempt::Retry(e) => (e, delay, false),
        };
        if start.elapsed() + wait > policy.budget {
            let note = if asked {
                format!(
                    "the server asks to wait {}s, longer than this action waits",
                    wait.as_secs()
                )
            } else {
                let plural = if attempts == 1 { "" } else { "s" };
                format!(
                    "gave up after {attempts} attempt{plural} in {:.0?}",
                    start.elapsed()
                )
            };
            return Err(gave_up(e, note));
        }
        if asked {
            tracing::info!("waiting {wait:?} as the server asks: {e}");
        } else {
            tracing::debug!("retrying in {delay:?}: {e}");
            delay = (delay * 2).min(policy.max_delay);
        }
        tokio::time::sleep(wait).await;
        last_error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// `retry` under `policy` of `attempt`, which is given the attempt's
    /// number (from 1): the outcome and how many attempts were made.
    async fn counted<T, Fut>(
        policy: Backoff,
        attempt: impl Fn(usize) -> Fut,
    ) -> (Result<T, Failure>, usize)
    where
        Fut: Future<Output = Attempt<T>>,
    {
        let calls = Cell::new(0);
        let out = retry(policy, || {
            calls.set(calls.get() + 1);
            attempt(calls.get())
        })
        .await;
        (out, calls.get())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done() {
        let (out, _) = counted(Backoff::PUSHGATEWAY, |n| async move {
            if n < 3 {
                Attempt::Retry("503".into())
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(out.map_err(|e| e.message), Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let (out, calls): (Result<(), _>, _) = counted(Backoff::PUSHGATEWAY, |_| async {
            Attempt::Fail("400 bad line".into())
        })
        .await;
        assert_eq!(out.map_err(|e| e.message), Err("400 bad line".to_string()));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_as_long_as_the_server_asks_within_the_budget() {
        let start = Instant::now();
        let (out, _) = counted(Backoff::GITHUB_HISTORY, |n| async move {
            if n == 1 {
                Attempt::RetryAfter("rate limited".into(), Duration::from_secs(30))
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(out.map_err(|e| e.message), Ok(2));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        let out: Result<(), _> = retry(Backoff::GITHUB_HISTORY, || async {
            Attempt::RetryAfter("rate limited".into(), Duration::from_secs(3_600))
        })
        .await;
        assert!(out.unwrap_err().message.contains("asks to wait 3600s"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_outlasts_the_budget_is_cut_at_the_budget() {
        // A server that never answers: every attempt waits out a 10 s request timeout.
        let start = Instant::now();
        let (out, calls): (Result<(), _>, _) = counted(Backoff::PUSHGATEWAY, |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Attempt::Retry("push: timed out".into())
        })
        .await;
        // 0–10 s, 10.5–20.5 s, 21.5 s until the budget ends at 30 s (not 31.5 s).
        assert_eq!(start.elapsed(), Backoff::PUSHGATEWAY.budget);
        assert_eq!(calls, 3);
        let err = out.unwrap_err().message;
        assert!(
            err.starts_with("push: timed out (gave up after 3 attempts in 30s"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_within_the_budget() {
        let start = Instant::now();
        let (out, calls): (Result<(), _>, _) = counted(Backoff::PUSHGATEWAY, |_| async {
            Attempt::Retry("connection refused".into())
        })
        .await;
        let err = out.unwrap_err().message;
        assert!(
            err.starts_with("connection refused (gave up after"),
            "{err}"
        );
        assert!(
            start.elapsed() <= Backoff::PUSHGATEWAY.budget,
            "{:?}",
            start.elapsed()
        );
        // 0.5 + 1 + 2 + 4 + 8 + 8 = 23.5 s of waiting; the next 8 s would pass 30 s.
        assert_eq!(calls, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_answer_s_status_and_cause_survive_giving_up() {
        let out: Result<(), _> = retry(Backoff::PUSHGATEWAY, || async {
            Attempt::Retry(Failure::answered(
                reqwest::StatusCode::SERVICE_UNAVAILABLE,
                "push: HTTP 503",
            ))
        })
        .await;
        let err = out.unwrap_err();
        assert_eq!(err.status, Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
        assert!(
            err.message.starts_with("push: HTTP 503 (gave up after"),
            "{err}"
        );
    }
}
