//! GitHub REST (`GITHUB_API_URL`, so GitHub Enterprise works too). Knows the
//! API, not DORA.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::http;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Failure, Result};

/// A GitHub REST client; counts its calls so the summary can report them.
#[derive(Debug)]
pub struct GitHub {
    api: Url,
    token: Option<String>,
    http: Client,
    calls: AtomicUsize,
    backoff: Backoff,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of one successful answer is read: a page of 100 runs is under
/// 1 MB, a compare of 250 commits a few MB; more is no GitHub answer.
const PAGE_LIMIT: usize = 16 << 20;

#[derive(Deserialize)]
struct CommitResponse {
    #[serde(default)]
    sha: String,
    commit: CommitDetail,
}

#[derive(Deserialize)]
struct CommitDetail {
    committer: Option<Signature>,
    author: Option<Signature>,
    #[serde(default)]
    message: Option<String>,
}

/// What a compare says: each listed commit's time (where it has one), the
/// total GitHub counted (it lists at most 250), and each listed commit's
/// sha and message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compared {
    pub times: Vec<Timestamp>,
    pub total: u64,
    pub commits: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Signature {
    date: Option<String>,
}

impl CommitDetail {
    /// The committer date (when the change landed on its branch), else the author date.
    fn date(self) -> Option<String> {
        self.committer
            .and_then(|s| s.date)
            .or_else(|| self.author.and_then(|s| s.date))
    }
}

impl GitHub {
    /// A client for the API at `api` (e.g. `https://api.github.com`).
    pub fn new(mut api: Url, token: Option<String>, http: Client) -> GitHub {
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        GitHub {
            api,
            token,
            http,
            calls: AtomicUsize::new(0),
            backoff: Backoff::GITHUB,
        }
    }

    /// The same client with another retry policy (history is worth waiting longer for).
    pub fn with_backoff(mut self, backoff: Backoff) -> GitHub {
        self.backoff = backoff;
        self
    }

    /// The repository's default branch (`GET /repos/{owner}/{repo}`).
    pub async fn default_branch(&self, repository: &str) -> Result<String> {
        let url = self.repo_url(repository, &[])?;
        let (body, _) = self.get_page(&url).await?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::GitHub(format!("GET {url}: unexpected answer: {e}").into()))?;
        v.get("default_branch")
            .and_then(|b| b.as_str())
            .map(String::from)
            .ok_or_else(|| {
                Error::GitHub(format!("GET {url}: no `default_branch` in the answer").into())
            })
    }

    /// Completed runs of `workflow` (a file name such as `deploy.yml`, or an
    /// id) created at or after `since`, newest first, following `Link`
    /// pagination up to `max_pages` pages of 100: ⌈runs/100⌉ calls. The runs are returned as GitHub sent
    /// them, so they map exactly like a `workflow_run` event's run.
    pub async fn workflow_runs(
        &self,
        repository: &str,
        workflow: &str,
        since: Timestamp,
        branch: Option<&str>,
        max_pages: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let mut url = self.repo_url(repository, &["actions", "workflows", workflow, "runs"])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("status", "completed")
                .append_pair(
                    "created",
                    &format!(">={}", since.strftime("%Y-%m-%dT%H:%M:%SZ")),
                )
                .append_pair("per_page", "100");
            if let Some(branch) = branch {
                q.append_pair("branch", branch);
            }
        }
        self.pages(url, max_pages, |body| {
            serde_json::from_str::<RunsPage>(body).map(|p| p.workflow_runs)
        })
        .await
    }

    /// Issues of `repository` carrying `label`, open or closed, updated at
    /// or after `since`, following `Link` pagination up to `max_pages`
    /// pages of 100. As GitHub sends them: pull requests among them (an
    /// item with `pull_request`), which the caller leaves out.
    pub async fn issues(
        &self,
        repository: &str,
        label: &str,
        since: Timestamp,
        max_pages: usize,
    ) -> Result<Vec<serde_json::Value>> {
        let mut url = self.repo_url(repository, &["issues"])?;
        url.query_pairs_mut()
            .append_pair("labels", label)
            .append_pair("state", "all")
            .append_pair("since", &since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .append_pair("per_page", "100");
        self.pages(url, max_pages, |body| serde_json::from_str(body))
            .await
    }

    /// Every item of up to `max_pages` pages from `first` on, following
    /// `Link: rel="next"`; `items` reads one page's body. The token goes
    /// with each request, so a next page off the API's origin is refused.
    async fn pages(
        &self,
        first: Url,
        max_pages: usize,
        items: impl Fn(&str) -> serde_json::Result<Vec<serde_json::Value>>,
    ) -> Result<Vec<serde_json::Value>> {
        let mut all = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take().filter(|_| pages < max_pages) {
            pages += 1;
            let (body, link) = self.get_page(&url).await?;
            let page = items(&body)
                .map_err(|e| Error::GitHub(format!("GET {url}: unexpected answer: {e}").into()))?;
            all.extend(page);
            // The token goes with the next request: only to the API itself.
            if let Some(link) = link.as_ref().filter(|_| pages < max_pages)
                && !http::under(&self.api, link)
            {
                return Err(Error::GitHub(format!(
                    "GET {url}: the next page is on {}, outside the API at {}: not followed (the token is only sent to the API)",
                    http::origin(link),
                    http::origin(&self.api)
                ).into()));
            }
            next = link;
        }
        Ok(all)
    }

    /// The commits `head` has and `base` has not (one compare call; GitHub
    /// lists at most 250 commits, and says so in `total_commits`, which is
    /// returned beside them): their times, shas and messages.
    pub async fn compare(&self, repository: &str, base: &str, head: &str) -> Result<Compared> {
        let url = self.repo_url(repository, &["compare", &format!("{base}...{head}")])?;
        let (body, _) = self.get_page(&url).await?;
        let parsed: Compare = serde_json::from_str(&body)
            .map_err(|e| Error::GitHub(format!("GET {url}: unexpected answer: {e}").into()))?;
        let mut times = Vec::new();
        let mut commits = Vec::new();
        for c in parsed.commits {
            let message = c.commit.message.clone().unwrap_or_default();
            commits.push((c.sha, message));
            if let Some(t) = c.commit.date().and_then(|d| d.parse().ok()) {
                times.push(t);
            }
        }
        let total = parsed.total_commits.unwrap_or(times.len() as u64);
        Ok(Compared {
            times,
            total,
            commits,
        })
    }

    /// `repos/{owner}/{name}/…` under the API base (a GHE `/api/v3` prefix
    /// kept), each part one percent-encoded path segment: values from a
    /// payload (a sha, a workflow) can never change which endpoint the token
    /// is sent to, whatever they contain (`../`, `?`, `#`).
    fn repo_url(&self, repository: &str, rest: &[&str]) -> Result<Url> {
        let parts: Vec<&str> = repository.split('/').collect();
        let bad = |s: &str| s.is_empty() || s == "." || s == "..";
        if parts.len() != 2 || parts.iter().any(|p| bad(p)) || rest.iter().any(|p| bad(p)) {
            return Err(Error::GitHub(
                format!("not a repository path: `{repository}` / {rest:?}").into(),
            ));
        }
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| Error::GitHub(format!("API URL {} cannot take a path", self.api).into()))?
            .pop_if_empty()
            .push("repos")
            .extend(parts)
            .extend(rest);
        Ok(url)
    }

    /// How many HTTP requests this client has sent.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The time of commit `sha` in `repository` (`owner/name`): the committer
    /// date (when the change landed on its branch), else the author date.
    pub async fn commit_time(&self, repository: &str, sha: &str) -> Result<Timestamp> {
        let url = self.repo_url(repository, &["commits", sha])?;
        let (body, _) = self.get_page(&url).await?;
        let parsed: CommitResponse = serde_json::from_str(&body)
            .map_err(|e| Error::GitHub(format!("GET {url}: unexpected answer: {e}").into()))?;
        let date = parsed
            .commit
            .date()
            .ok_or_else(|| Error::GitHub(format!("GET {url}: the commit has no date").into()))?;
        date.parse().map_err(|_| {
            Error::GitHub(format!("GET {url}: commit date `{date}` is not RFC 3339").into())
        })
    }

    /// One GET: the body and the `Link: rel="next"` URL. 5xx and connection
    /// errors are retried; a rate limit (403/429 with `x-ratelimit-remaining:
    /// 0` or `retry-after`) waits as long as GitHub asks, within the budget.
    async fn get_page(&self, url: &Url) -> Result<(String, Option<Url>)> {
        retry(self.backoff, || async {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .get(url.clone())
                .timeout(REQUEST_TIMEOUT)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(Failure::transport(e)),
            };
            let status = response.status();
            let headers = response.headers().clone();
            // A body that stops coming (the request timeout covers it) is no
            // answer, to be retried, not an empty and so "malformed" one.
            // Bounded: a page of runs is a few hundred KB; an error says
            // what it is in its first line.
            let limit = if status.is_success() {
                PAGE_LIMIT
            } else {
                http::ERROR_BODY_LIMIT
            };
            let body = match http::read_capped(response, limit).await {
                Ok(body) => body,
                Err(e) => return Attempt::Retry(Failure::transport(e)),
            };
            if status.is_success() && !body.complete {
                return Attempt::Fail(Failure::answered(
                    status,
                    format!(
                        "GET {url}: the answer is larger than {}: not read further",
                        http::size(PAGE_LIMIT)
                    ),
                ));
            }
            let body = match String::from_utf8(body.bytes) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            let detail = || match http::redirect_note(status, &headers) {
                Some(note) => format!("GET {url}: HTTP {status}: {note}"),
                None => format!("GET {url}: HTTP {status}: {}", http::first_line(&body, 200)),
            };
            if let Some(wait) = rate_limit_wait(status, &headers, SystemTime::now()) {
                return Attempt::RetryAfter(
                    Failure::answered(status, format!("GET {url}: rate limited (HTTP {status})")),
                    wait,
                );
            }
            match status {
                s if s.is_success() => Attempt::Done((body, next_link(&headers))),
                s if s.is_server_error() => Attempt::Retry(Failure::answered(status, detail())),
                StatusCode::NOT_FOUND => Attempt::Fail(Failure::answered(
                    status,
                    format!(
                        "{} (is `github-token` allowed to read this repository?)",
                        detail()
                    ),
                )),
                _ => Attempt::Fail(Failure::answered(status, detail())),
            }
        })
        .await
        .map_err(Error::GitHub)
    }
}

#[derive(Deserialize)]
struct RunsPage {
    #[serde(default)]
    workflow_runs: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Compare {
    total_commits: Option<u64>,
    #[serde(default)]
    commits: Vec<CommitResponse>,
}

/// How long GitHub asks to wait, if this answer is a rate limit: the primary
/// limit (`x-ratelimit-remaining: 0`, until `x-ratelimit-reset`) or a
/// secondary one (`retry-after` seconds).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(seconds) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())?;
        let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
        // One second more: the reset time is rounded down.
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    None
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<Url> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| Url::parse(url.trim().trim_start_matches('<').trim_end_matches('>')).ok())
            .flatten()
    })
}

/// Fetches the job's GitHub OIDC token for `audience` (the runner's
/// `ACTIONS_ID_TOKEN_REQUEST_URL`, which already carries a query).
///
/// The token exists only to be exchanged for AWS credentials, so a failure
/// is an [`Error::Aws`]: like any credentials failure it fails the run
/// (`fail-on-error: false` covers delivery, not access).
pub async fn oidc_token(
    http: &Client,
    request_url: &str,
    request_token: &str,
    audience: &str,
) -> Result<String> {
    let mut url = Url::parse(request_url).map_err(|e| {
        Error::input(
            "role-to-assume",
            format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"),
        )
    })?;
    url.query_pairs_mut().append_pair("audience", audience);
    #[derive(Deserialize)]
    struct TokenResponse {
        value: String,
    }
    let body = retry(Backoff::AWS, || async {
        let response = match http
            .get(url.clone())
            .bearer_auth(request_token)
            .timeout(crate::aws::REQUEST_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry(Failure::transport(e).context("GitHub OIDC token request"));
            }
        };
        let status = response.status();
        // A token is a few KB; the endpoint comes from the environment, but
        // what it answers is bounded all the same.
        let body = match http::answer_text(
            response,
            "GitHub OIDC token request",
            crate::aws::ANSWER_LIMIT,
        )
        .await
        {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        match status {
            s if s.is_success() => Attempt::Done(body),
            s if s.is_server_error() => Attempt::Retry(Failure::answered(
                s,
                format!("GitHub OIDC token request: HTTP {s}"),
            )),
            s => Attempt::Fail(Failure::answered(
                s,
                format!(
                    "GitHub OIDC token request: HTTP {s}: {}",
                    body.trim().chars().take(200).collect::<String>()
                ),
            )),
        }
    })
    .await
    .map_err(Error::Aws)?;
    let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| {
        Error::Aws(format!("GitHub OIDC token request: unexpected answer: {e}").into())
    })?;
    Ok(parsed.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn payload_values_stay_inside_their_path_segment() {
        let gh = GitHub::new(
            Url::parse("https://ghe.example/api/v3").unwrap(),
            None,
            Client::new(),
        );
        let url = |repo: &str, rest: &[&str]| gh.repo_url(repo, rest).map(|u| u.to_string());
        assert_eq!(
            url("octo-org/shop", &["commits", "9f8e7d"]).unwrap(),
            "https://ghe.example/api/v3/repos/octo-org/shop/commits/9f8e7d"
        );
        assert_eq!(
            url("octo-org/shop", &["commits", "../../user?x=1#f"]).unwrap(),
            "https://ghe.example/api/v3/repos/octo-org/shop/commits/..%2F..%2Fuser%3Fx=1%23f"
        );
        assert_eq!(
            url("octo-org/shop", &["compare", "a1...b2"]).unwrap(),
            "https://ghe.example/api/v3/repos/octo-org/shop/compare/a1...b2"
        );
        for (repo, rest) in [
            ("octo-org", &["commits"][..]),
            ("octo-org/shop/extra", &[]),
            ("../shop", &[]),
            ("octo-org/shop", &["commits", ".."]),
            ("octo-org/shop", &["commits", ""]),
        ] {
            assert!(url(repo, rest).is_err(), "{repo} {rest:?}");
        }
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        for (status, answer, wait) in [
            (StatusCode::FORBIDDEN, primary.clone(), Some(31)),
            (
                StatusCode::TOO_MANY_REQUESTS,
                headers(&[("retry-after", "7")]),
                Some(7),
            ),
            // A 403 that is not a rate limit (no permission) is not waited for.
            (
                StatusCode::FORBIDDEN,
                headers(&[("x-ratelimit-remaining", "4999")]),
                None,
            ),
            (StatusCode::OK, primary, None),
        ] {
            assert_eq!(
                rate_limit_wait(status, &answer, now),
                wait.map(Duration::from_secs),
                "{status} {answer:?}"
            );
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let h = headers(&[(
            "link",
            r#"<https://api.github.com/repositories/1/actions/workflows/deploy.yml/runs?page=2>; rel="next", <https://api.github.com/repositories/1/actions/workflows/deploy.yml/runs?page=5>; rel="last""#,
        )]);
        assert_eq!(
            next_link(&h).unwrap().as_str(),
            "https://api.github.com/repositories/1/actions/workflows/deploy.yml/runs?page=2"
        );
        let last = headers(&[(
            "link",
            r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#,
        )]);
        assert_eq!(next_link(&last), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
