//! `dora-action`: delivery signals in, DORA metrics out.
//!
//! The crate is laid out the way the data flows, sources → plan → sinks
//! (see `README.md` and `docs/` for the user-facing side, `docs/metrics.md`
//! for the metric contract):
//!
//! - [`inputs`] parses and validates the action's inputs once, from an
//!   iterator of environment pairs, and resolves the mode and what it
//!   requires ([`inputs::resolve`]): every rule unit-tested without touching
//!   the process environment.
//! - [`sources`]: one module per source of events, each a function from its
//!   inputs and clients to [`dora::Deploy`] events: the triggering payload
//!   ([`sources::payload`], pure parsing, and [`sources::event`] with its
//!   recent history), workflow history ([`sources::workflows`]), the cluster's
//!   Flux Kustomizations and Flagger Canaries ([`sources::cluster`]), the
//!   incidents filed as GitHub issues ([`sources::incidents`]), and the
//!   look-ups that complete a new event ([`sources::lookups`]).
//! - [`dora`] is the pure core: events, their history, their groups and
//!   encoding, what the stored groups (or a store's series, [`dora::held`])
//!   already say, the [`dora::plan`] (what to push, delete, upgrade; what is
//!   recorded; what retention keeps), incidents and reverts as change
//!   failures ([`dora::incident`], [`dora::incident_plan`], [`dora::revert`])
//!   and the statistics and bands. No I/O, no outside system.
//! - [`sinks`] carry out a plan: the [`sinks::pushgateway`] (by URL, or
//!   through a tunnel such as the API server's service proxy), a
//!   [`sinks::remote_write`] store (whose query API, [`sinks::remote_query`],
//!   says what it already holds), or the [`sinks::dry_run`] printer.
//!   [`stored`] is the plain data a store reader hands the core.
//! - [`report`] renders the job summary (Markdown), the step outputs and the
//!   JSON report.
//! - [`clients`] builds the clients context once ([`clients::connect`]):
//!   GitHub, AWS and the cluster check, the Kubernetes client, the sinks.
//! - One module per outside system: [`actions`] (the GitHub Actions runtime:
//!   workflow commands, `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`), [`github`]
//!   (GitHub REST and the OIDC token), [`aws`] (credentials, STS, EKS and
//!   the EKS token), [`kubernetes`] (the API server: list calls, the service
//!   proxy).
//! - [`http`] holds what every HTTP client shares: the client setup, the
//!   structured [`Failure`] each outside system's error carries (status,
//!   message, cause), and the rules for answers it cannot trust: no
//!   credential follows a URL off its origin, no body is read past its
//!   bound. [`retry`] is the shared retry bound.
//! - [`app`] runs it all in that order (begin → connect → collect → plan →
//!   deliver → report); `main.rs` only parses arguments, guards against
//!   panics and maps the result to an exit code.

pub mod actions;
pub mod app;
pub mod aws;
pub mod clients;
pub mod dora;
pub mod duration;
pub mod github;
pub mod http;
pub mod inputs;
pub mod kubernetes;
pub mod report;
pub mod retry;
pub mod sinks;
pub mod sources;
pub mod stored;

/// Every way a run can fail, one variant per kind of cause, so `main` can
/// word the `::error::` line and tests can match on the kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input (or the runner context it depends on) is invalid: nothing was contacted.
    #[error("input `{name}`: {message}")]
    Input { name: String, message: String },
    /// The event payload could not be read or lacks what the metrics need.
    #[error("event payload {path}: {message}")]
    Payload { path: String, message: String },
    /// The Pushgateway refused or could not be reached within the retry bound.
    #[error("pushgateway: {0}")]
    Pushgateway(#[source] Failure),
    /// The remote-write store refused or could not be reached within the retry bound.
    #[error("remote-write: {0}")]
    RemoteWrite(#[source] Failure),
    /// GitHub REST failed in a way that cannot be degraded to a warning.
    #[error("github api: {0}")]
    GitHub(#[source] Failure),
    /// AWS (credentials, STS, EKS) refused or could not be reached.
    #[error("aws: {0}")]
    Aws(#[source] Failure),
    /// The Kubernetes API server refused or could not be reached.
    #[error("kubernetes: {0}")]
    Kubernetes(#[source] Failure),
    /// The action could not set up its own HTTP client (no outside system
    /// was contacted): always fatal, `fail-on-error: false` does not hide it.
    #[error("setup: {0}")]
    Setup(#[source] Failure),
    /// Writing the runner's output or summary file failed.
    #[error("runner file {path}: {message}")]
    Runner { path: String, message: String },
}

impl Error {
    /// Shorthand for an input error naming the input and what is wrong with it.
    pub fn input(name: &str, message: impl Into<String>) -> Self {
        Error::Input {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// Whether `fail-on-error: false` may turn this failure into a warning:
    /// only failures of the outside systems; bad inputs and payloads always fail.
    pub fn is_delivery_failure(&self) -> bool {
        matches!(
            self,
            Error::Pushgateway(_) | Error::RemoteWrite(_) | Error::GitHub(_)
        )
    }
}

pub use crate::http::Failure;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_setup_failure_is_never_hidden_as_a_delivery_failure() {
        // `fail-on-error: false` turns delivery failures into warnings; a
        // client the action could not even build is not one of them.
        assert!(
            !Error::Setup(Failure::new("cannot set up HTTP: no TLS roots")).is_delivery_failure()
        );
        assert!(Error::Pushgateway(Failure::new("push: HTTP 500")).is_delivery_failure());
        assert!(!Error::Aws(Failure::new("access denied")).is_delivery_failure());
    }

    #[test]
    fn an_outside_system_error_reads_as_before_and_keeps_its_status() {
        let e = Error::Pushgateway(Failure::answered(
            reqwest::StatusCode::BAD_REQUEST,
            "push: HTTP 400 Bad Request: text format parsing error",
        ));
        assert_eq!(
            e.to_string(),
            "pushgateway: push: HTTP 400 Bad Request: text format parsing error"
        );
        let Error::Pushgateway(f) = e else {
            unreachable!()
        };
        assert_eq!(f.status, Some(reqwest::StatusCode::BAD_REQUEST));
    }
}
