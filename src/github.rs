//! GitHub REST (`GITHUB_API_URL`, so GitHub Enterprise works too). Knows the
//! API, not DORA.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::pushgateway::describe;
use crate::retry::{Attempt, Backoff, retry};
use crate::{Error, Result};

/// A GitHub REST client; counts its calls so the summary can report them.
#[derive(Debug)]
pub struct GitHub {
    api: Url,
    token: Option<String>,
    http: Client,
    calls: AtomicUsize,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct CommitResponse {
    commit: CommitDetail,
}

#[derive(Deserialize)]
struct CommitDetail {
    committer: Option<Signature>,
    author: Option<Signature>,
}

#[derive(Deserialize)]
struct Signature {
    date: Option<String>,
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
        }
    }

    /// How many HTTP requests this client has sent.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The time of commit `sha` in `repository` (`owner/name`): the committer
    /// date (when the change landed on its branch), else the author date.
    pub async fn commit_time(&self, repository: &str, sha: &str) -> Result<Timestamp> {
        let url = self
            .api
            .join(&format!("repos/{repository}/commits/{sha}"))
            .map_err(|e| Error::GitHub(format!("bad URL for commit {sha}: {e}")))?;
        let body = self.get(&url).await?;
        let parsed: CommitResponse = serde_json::from_str(&body)
            .map_err(|e| Error::GitHub(format!("GET {url}: unexpected answer: {e}")))?;
        let date = parsed
            .commit
            .committer
            .and_then(|s| s.date)
            .or_else(|| parsed.commit.author.and_then(|s| s.date))
            .ok_or_else(|| Error::GitHub(format!("GET {url}: the commit has no date")))?;
        date.parse()
            .map_err(|_| Error::GitHub(format!("GET {url}: commit date `{date}` is not RFC 3339")))
    }

    async fn get(&self, url: &Url) -> Result<String> {
        retry(Backoff::GITHUB, || async {
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
                Err(e) => return Attempt::Retry(describe(&e)),
            };
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let detail = || format!("GET {url}: HTTP {status}: {}", first_line(&body));
            match status {
                s if s.is_success() => Attempt::Done(body),
                s if s.is_server_error() => Attempt::Retry(detail()),
                StatusCode::NOT_FOUND => Attempt::Fail(format!(
                    "{} (is `github-token` allowed to read this repository?)",
                    detail()
                )),
                _ => Attempt::Fail(detail()),
            }
        })
        .await
        .map_err(Error::GitHub)
    }
}

/// The first line of a response body, cut short: enough to say what went wrong.
fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}
