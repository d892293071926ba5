//! What every HTTP client of the action shares: one client setup, one
//! structured [`Failure`], and two rules about answers it cannot trust,
//! applied in one place so that no client can forget them:
//!
//! - **A credential never leaves its origin.** A URL taken from an answer
//!   (a redirect's `Location`, GitHub's pagination `Link`) is followed only
//!   when it has the scheme, host and port of the request it answers (and,
//!   for GitHub pagination, the API's path prefix). Anything else is not
//!   followed at all: the foreign server gets no request, so neither a
//!   bearer token, a basic password, SigV4 headers (the session token among
//!   them) nor the body can reach it.
//! - **A body is read only as far as it is useful.** Error answers are read
//!   up to [`ERROR_BODY_LIMIT`] (enough to say what went wrong), success
//!   answers up to a limit per kind of answer; reading stops there and the
//!   connection is dropped, so a server that sends 200 MB, or never stops,
//!   costs a few kilobytes (or the limit) of memory, not the whole body.

use std::time::Duration;

use reqwest::redirect::{Action, Attempt, Policy};
use reqwest::{Client, StatusCode, Url};

/// How requests to a remote store (remote-write, its query API)
/// authenticate. `S` is what SigV4 needs at each stage: the inputs know at
/// most a region (`Auth<Option<String>>`), the sink holds the region and the
/// credentials. One type, so the choice made from the inputs reaches the
/// sink unchanged but for that.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth<S> {
    None,
    /// `Authorization: Bearer …` (Mimir/Thanos behind a gateway, Grafana Cloud tokens).
    Bearer(String),
    /// HTTP basic auth (Grafana Cloud, a reverse proxy).
    Basic {
        username: String,
        password: String,
    },
    /// AWS SigV4 for service `aps` (Amazon Managed Service for Prometheus).
    SigV4(S),
}

impl<S> Auth<S> {
    /// The kind, as the summary and errors name it.
    pub fn name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer token",
            Auth::Basic { .. } => "basic auth",
            Auth::SigV4(_) => "SigV4",
        }
    }

    /// The same choice for another stage: `Err` with the SigV4 part (which
    /// the caller completes), `Ok` for every other kind, carried over as is.
    pub fn other_than_sigv4<T>(self) -> Result<Auth<T>, S> {
        match self {
            Auth::None => Ok(Auth::None),
            Auth::Bearer(token) => Ok(Auth::Bearer(token)),
            Auth::Basic { username, password } => Ok(Auth::Basic { username, password }),
            Auth::SigV4(s) => Err(s),
        }
    }
}

/// Secrets never show: a token or a password is `***`.
impl<S: std::fmt::Debug> std::fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::SigV4(s) => write!(f, "SigV4({s:?})"),
        }
    }
}

/// What went wrong talking to an outside system, as data: the HTTP status
/// when the system answered (none for a transport failure, a malformed
/// answer, or a refusal by something in between such as the Kubernetes API
/// server in front of a proxied service), the message shown to the user
/// (one line, naming the request), and the transport error it came from.
///
/// Each outside system's [`crate::Error`] variant carries one, so a caller
/// decides on the status (a rejected push is cleaned up only after a 4xx)
/// instead of reading its own error text back.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub status: Option<StatusCode>,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure that is only words: a malformed answer, a local check.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            status: None,
            message: message.into(),
            source: None,
        }
    }

    /// The system answered with `status`; `message` says what it said.
    pub fn answered(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status: Some(status),
            ..Failure::new(message)
        }
    }

    /// The request got no usable answer (refused, timed out, cut off):
    /// [`describe`] words the cause; [`Failure::context`] names the request.
    pub fn transport(e: reqwest::Error) -> Self {
        Failure {
            status: None,
            message: describe(&e),
            source: Some(Box::new(e)),
        }
    }

    /// The same failure, its message with `prefix: ` in front.
    pub fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::new(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::new(message)
    }
}

/// A reqwest error in one line, with its cause (reqwest's own text omits it).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(url) = e.url() {
        text.push_str(&format!(" to {}", url.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// How much of an error answer is read: its first lines say what went wrong.
pub const ERROR_BODY_LIMIT: usize = 8 * 1024;

/// Same-origin redirects followed in a row at most.
const MAX_REDIRECTS: usize = 5;

/// Whether `next` has the scheme, host and port of `base` (the default port
/// of the scheme counts as given).
pub fn same_origin(base: &Url, next: &Url) -> bool {
    base.scheme() == next.scheme()
        && base.host_str() == next.host_str()
        && base.port_or_known_default() == next.port_or_known_default()
}

/// Whether `next` stays under `base`: the same origin, and a path that starts
/// with `base`'s path (a GitHub Enterprise `/api/v3/` prefix is kept).
pub fn under(base: &Url, next: &Url) -> bool {
    let prefix = base.path();
    let prefix = if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    same_origin(base, next)
        && (next.path() == prefix.trim_end_matches('/') || next.path().starts_with(&prefix))
}

/// `scheme://host:port` of a URL, for messages: never its path, query or credentials.
pub fn origin(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

/// The redirect rule: follow a redirect to the same origin as the first
/// request (a handful in a row), stop at any other. A stopped redirect comes
/// back to the caller as the 3xx answer it is, which every client treats as
/// a refusal (see [`redirect_note`]); nothing is sent to the other origin.
fn redirect_policy(attempt: Attempt) -> Action {
    let stays = attempt
        .previous()
        .first()
        .is_some_and(|first| same_origin(first, attempt.url()));
    if stays && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// The HTTP client every outside system is reached with (GitHub, the
/// Pushgateway, remote-write, STS, EKS, the OIDC endpoint): the redirect rule
/// above, and a connect timeout so an unreachable host fails fast.
pub fn client() -> reqwest::Result<Client> {
    Client::builder()
        .user_agent(concat!("dora-action/", env!("CARGO_PKG_VERSION")))
        .redirect(Policy::custom(redirect_policy))
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// For a 3xx answer (a redirect the client did not follow): where it points,
/// as words for the error message. `None` for any other answer.
pub fn redirect_note(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Option<String> {
    if !status.is_redirection() {
        return None;
    }
    let to = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Url::parse(v).ok())
        .map(|u| origin(&u))
        .unwrap_or_else(|| "elsewhere".into());
    Some(format!(
        "redirected to {to}, another origin: not followed (no credential leaves the URL it was given for)"
    ))
}

/// A body read up to a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    pub bytes: Vec<u8>,
    /// Whether the body ended within the limit (else `bytes` is its first `limit` bytes).
    pub complete: bool,
}

impl Capped {
    /// The text, lossily (for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads `response`'s body as it arrives, up to `limit` bytes; stops there
/// (the rest is never read: dropping the response closes the connection).
pub async fn read_capped(mut response: reqwest::Response, limit: usize) -> reqwest::Result<Capped> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Capped {
                bytes,
                complete: false,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Capped {
        bytes,
        complete: true,
    })
}

/// The body of an answer as text, bounded: up to `success_limit` bytes of a
/// 2xx (more is an error: no such answer is this large), up to
/// [`ERROR_BODY_LIMIT`] of anything else (cut: it only feeds a message).
/// `Err` is the attempt's outcome when the answer cannot be used: a redirect
/// to another origin (final), a body that stopped coming (retried), a 2xx
/// over the limit (final). `what` starts each message.
pub async fn answer_text<T>(
    response: reqwest::Response,
    what: &str,
    success_limit: usize,
) -> Result<String, crate::retry::Attempt<T>> {
    use crate::retry::Attempt;
    let status = response.status();
    if let Some(note) = redirect_note(status, response.headers()) {
        return Err(Attempt::Fail(Failure::answered(
            status,
            format!("{what}: HTTP {status}: {note}"),
        )));
    }
    let limit = if status.is_success() {
        success_limit
    } else {
        ERROR_BODY_LIMIT
    };
    match read_capped(response, limit).await {
        Err(e) => Err(Attempt::Retry(Failure::transport(e).context(what))),
        Ok(body) if status.is_success() && !body.complete => Err(Attempt::Fail(Failure::answered(
            status,
            format!(
                "{what}: the answer is larger than {}: not read further",
                size(limit)
            ),
        ))),
        Ok(body) => Ok(body.text()),
    }
}

/// The first line of an error answer, cut to `chars` characters: enough to
/// say what went wrong, short enough for one annotation.
pub fn first_line(text: &str, chars: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// "larger than 16 MiB" and the like, for messages about a cut answer.
pub fn size(limit: usize) -> String {
    if limit >= 1 << 20 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit >> 10)
    }
}

/// Sends `request` as one attempt of a retried call: a request that could
/// not be built is final, one that got no answer (connection, timeout) is
/// retried; an answer is the caller's to judge.
pub async fn attempt<T>(
    request: crate::Result<reqwest::RequestBuilder>,
) -> std::result::Result<reqwest::Response, crate::retry::Attempt<T>> {
    use crate::retry::Attempt;
    match request {
        Err(e) => Err(Attempt::Fail(e.to_string().into())),
        Ok(request) => request
            .send()
            .await
            .map_err(|e| Attempt::Retry(Failure::transport(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn an_auth_shows_its_kind_but_no_secret_and_keeps_all_but_sigv4() {
        let basic: Auth<Option<String>> = Auth::Basic {
            username: "grafana".into(),
            password: "hunter2".into(),
        };
        let bearer: Auth<Option<String>> = Auth::Bearer("glc_secret".into());
        assert_eq!(format!("{basic:?}"), "Basic(grafana, ***)");
        assert_eq!(format!("{bearer:?}"), "Bearer(***)");
        assert_eq!(bearer.name(), "bearer token");
        assert_eq!(
            basic.clone().other_than_sigv4::<u8>().unwrap(),
            Auth::Basic {
                username: "grafana".into(),
                password: "hunter2".into(),
            }
        );
        let sigv4: Auth<Option<String>> = Auth::SigV4(Some("eu-west-1".into()));
        assert_eq!(
            sigv4.other_than_sigv4::<u8>(),
            Err(Some("eu-west-1".into()))
        );
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let base = url("https://api.github.com/");
        for (other, same) in [
            ("https://api.github.com:443/repositories/1?page=2", true),
            ("http://api.github.com/x", false),
            ("https://api.github.com:8443/x", false),
            ("https://evil.example/x", false),
            ("https://api.github.com.evil.example/x", false),
            ("https://user@evil.example/x", false),
        ] {
            assert_eq!(same_origin(&base, &url(other)), same, "{other}");
        }
    }

    #[test]
    fn pagination_stays_under_the_api_prefix() {
        let ghe = "https://ghe.example/api/v3/";
        let dotcom = "https://api.github.com/";
        for (prefix, next, inside) in [
            (
                ghe,
                "https://ghe.example/api/v3/repositories/1/actions/runs?page=2",
                true,
            ),
            (ghe, "https://ghe.example/api/v30/x", false),
            (ghe, "https://ghe.example/login?page=2", false),
            (ghe, "https://ghe.example:444/api/v3/x", false),
            (dotcom, "https://api.github.com/repositories/1?page=2", true),
            (dotcom, "https://evil.example/repositories/1?page=2", false),
        ] {
            assert_eq!(under(&url(prefix), &url(next)), inside, "{prefix} {next}");
        }
    }

    #[test]
    fn messages_name_the_origin_only() {
        assert_eq!(
            origin(&url("https://u:p@evil.example:8443/a?b=c")),
            "https://evil.example:8443"
        );
        assert_eq!(first_line("  boom\nmore", 10), "boom");
        assert_eq!(first_line("abcdef", 3), "abc…");
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(8 << 10), "8 KiB");
    }
}
