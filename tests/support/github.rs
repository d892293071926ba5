//! The one GitHub REST mock: a [`wiremock::MockServer`] answering for the
//! test repository `octo-org/shop` with real-shaped objects.
//!
//! Build what it answers with [`GitHub`], then start it:
//!
//! ```ignore
//! let gh = GitHub::new()
//!     .runs("deploy.yml", &runs)
//!     .any_compare(compare_body(1, vec![]))
//!     .start()
//!     .await;
//! ```
//!
//! Anything not routed answers 404 (wiremock's default), which the action
//! treats like GitHub's own 404. A [`GitHubMock`] derefs to its
//! `MockServer`, so `uri()`, `received_requests()` and `verify()` work as on
//! wiremock's own, and [`GitHubMock::mount`] adds a special answer (a rate
//! limit, a 502) to a running one.

use std::ops::Deref;
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{any, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::fixtures::{fixture_json, run_list};

/// The REST path of the test repository.
pub const REPO_PATH: &str = "/repos/octo-org/shop";

/// `…/actions/workflows/{workflow}/runs` of the test repository
/// (`workflow` is a file name or a numeric id).
pub fn runs_path(workflow: &str) -> String {
    format!("{REPO_PATH}/actions/workflows/{workflow}/runs")
}

/// What a [`GitHubMock`] will answer, route by route.
#[derive(Default)]
pub struct GitHub {
    mocks: Vec<Mock>,
}

impl GitHub {
    /// A GitHub that knows nothing yet: every call a 404.
    pub fn new() -> GitHub {
        GitHub::default()
    }

    /// `GET …/workflows/{workflow}/runs?status=completed…` lists `runs`
    /// (one page: no `Link`).
    pub fn runs(self, workflow: &str, runs: &[Value]) -> Self {
        self.slow_runs(workflow, runs, Duration::ZERO)
    }

    /// [`GitHub::runs`], answered only after `delay` (so that runs overlap).
    pub fn slow_runs(self, workflow: &str, runs: &[Value], delay: Duration) -> Self {
        self.mock(
            Mock::given(method("GET"))
                .and(path(runs_path(workflow)))
                .and(query_param("status", "completed"))
                .respond_with(json(run_list(runs)).set_delay(delay)),
        )
    }

    /// Every workflow's run listing is empty: no earlier runs.
    pub fn no_runs(self) -> Self {
        self.any_runs(&[])
    }

    /// Every workflow's run listing is `runs`.
    pub fn any_runs(self, runs: &[Value]) -> Self {
        self.get(
            path_regex(r"^/repos/octo-org/shop/actions/workflows/[^/]+/runs$"),
            json(run_list(runs)),
        )
    }

    /// `GET …/compare/{base}...{head}` answers `body` (see
    /// [`super::fixtures::compare_body`]), ahead of [`GitHub::any_compare`].
    pub fn compare(self, base: &str, head: &str, body: Value) -> Self {
        self.mock(
            Mock::given(method("GET"))
                .and(path(format!("{REPO_PATH}/compare/{base}...{head}")))
                .respond_with(json(body))
                .with_priority(1),
        )
    }

    /// Every other compare answers `body`.
    pub fn any_compare(self, body: Value) -> Self {
        self.get(path_regex("^/repos/octo-org/shop/compare/"), json(body))
    }

    /// `GET …/commits/{sha}` answers `body`.
    pub fn commit(self, sha: &str, body: Value) -> Self {
        self.get(path(format!("{REPO_PATH}/commits/{sha}")), json(body))
    }

    /// `GET …/commits/{any sha}` answers `body`.
    pub fn any_commit(self, body: Value) -> Self {
        self.get(
            path_regex("^/repos/octo-org/shop/commits/[0-9a-f]+$"),
            json(body),
        )
    }

    /// Every commit look-up answers the fixture commit
    /// (`github/commit.json`, committed 2026-11-20T10:00:00Z).
    pub fn fixture_commit(self) -> Self {
        self.any_commit(fixture_json("github/commit.json"))
    }

    /// Every call, of any method and path, answers `response`.
    pub fn every_call(self, response: ResponseTemplate) -> Self {
        self.mock(Mock::given(any()).respond_with(response))
    }

    /// Every `GET` answers `response`.
    pub fn every_get(self, response: ResponseTemplate) -> Self {
        self.mock(Mock::given(method("GET")).respond_with(response))
    }

    /// Any other route, as a wiremock [`Mock`].
    pub fn mock(mut self, mock: Mock) -> Self {
        self.mocks.push(mock);
        self
    }

    fn get(self, matcher: impl wiremock::Match + 'static, response: ResponseTemplate) -> Self {
        self.mock(
            Mock::given(method("GET"))
                .and(matcher)
                .respond_with(response),
        )
    }

    /// Starts the mock on a free loopback port with these routes.
    pub async fn start(self) -> GitHubMock {
        let server = MockServer::start().await;
        for mock in self.mocks {
            server.register(mock).await;
        }
        GitHubMock { server }
    }
}

/// A 200 with `body` as JSON.
fn json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A running GitHub REST mock; stops when dropped.
pub struct GitHubMock {
    server: MockServer,
}

impl GitHubMock {
    /// A GitHub answering nothing (every look-up a 404).
    pub async fn empty() -> GitHubMock {
        GitHub::new().start().await
    }

    /// A GitHub answering every call, of any path, with an empty run
    /// listing: no history, and every call counted.
    pub async fn quiet() -> GitHubMock {
        GitHubMock::answering(json(run_list(&[]))).await
    }

    /// A GitHub answering every call, of any method and path, with `response`.
    pub async fn answering(response: ResponseTemplate) -> GitHubMock {
        GitHub::new().every_call(response).start().await
    }

    /// Adds a route to the running mock.
    pub async fn mount(&self, mock: Mock) {
        self.server.register(mock).await;
    }

    /// How many requests had `path_part` in their path.
    pub async fn calls(&self, path_part: &str) -> usize {
        self.received_requests()
            .await
            .expect("the mock records requests")
            .iter()
            .filter(|r| r.url.path().contains(path_part))
            .count()
    }
}

impl Deref for GitHubMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}
