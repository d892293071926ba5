//! The URL inputs (`pushgateway-url`, `remote-write-url`) and the
//! `remote-write-*` inputs that go with the second. A URL's credentials are
//! found even in a URL too broken to parse (so they can be masked before
//! anything is validated) and never appear in a message.

use reqwest::Url;

use super::parse::{invalid, parse_token};
use super::{QuerySource, QueryTarget, RemoteAuth, RemoteWriteTarget, defaults};
use crate::{Error, Result};

/// The inputs that hold a URL. Their credentials are masked before any
/// input is validated ([`url_credentials`]), and no message shows them
/// (`without_userinfo`).
pub const URL_INPUTS: [&str; 2] = ["pushgateway-url", "remote-write-url"];

/// The secret part of a URL as typed, found without parsing it (an invalid
/// URL still gets its password masked): in the user info between `://` and
/// the last `@` of the authority, the password, or a lone user name (a token
/// is often put there); as typed and percent-decoded.
pub fn url_credentials(v: &str) -> Vec<String> {
    let Some(userinfo) = userinfo(v) else {
        return Vec::new();
    };
    let mut parts = vec![match userinfo.split_once(':') {
        Some((_, password)) => password.to_string(),
        None => userinfo.to_string(),
    }];
    let decoded: Vec<String> = parts
        .iter()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    parts.extend(decoded);
    parts.retain(|p| !p.is_empty());
    parts.sort();
    parts.dedup();
    parts
}

/// The user info of a URL as typed (`user:pw` of `http://user:pw@host/`).
fn userinfo(v: &str) -> Option<&str> {
    let start = v.find("://")? + 3;
    let rest = &v[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// A URL as typed, for a message: its user info replaced by `***`.
fn without_userinfo(v: &str) -> String {
    match userinfo(v) {
        Some(info) => {
            let start = v.find("://").map_or(0, |i| i + 3);
            format!("{}***{}", &v[..start], &v[start + info.len()..])
        }
        None => v.to_string(),
    }
}

/// Characters a URL may hold as typed (RFC 3986: unreserved, reserved, and
/// `%` of a percent-encoding): a space or a quote is a typo the URL parser
/// would silently encode into another path.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

pub(super) fn parse_url(name: &str, v: &str) -> Result<Url> {
    let shown = without_userinfo(v);
    let shown = shown.as_str();
    if let Some(bad) = v.chars().find(|c| !is_url_char(*c)) {
        return Err(invalid(
            name,
            shown,
            &format!(
                "{:?} is not allowed in a URL (percent-encode it, e.g. a space as %20)",
                bad
            ),
        ));
    }
    let bytes = v.as_bytes();
    let bad_percent = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_percent {
        return Err(invalid(
            name,
            shown,
            "a `%` must start a percent-encoding such as %20",
        ));
    }
    let url = Url::parse(v).map_err(|e| invalid(name, shown, &format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(name, shown, "expected an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(name, shown, "the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            name,
            shown,
            "the URL must not have a query or fragment",
        ));
    }
    Ok(url)
}

/// The `remote-write-*` inputs. `auto` picks the auth from what is set:
/// a bearer token, a username (basic auth), an Amazon Managed Service for
/// Prometheus URL (SigV4), else none. Credentials that the chosen auth would
/// not use are refused, never silently ignored.
pub(super) fn parse_remote_write(
    url: Option<String>,
    auth: &str,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    query: Option<String>,
) -> Result<Option<RemoteWriteTarget>> {
    let credentials = Credentials {
        token,
        username,
        password,
    };
    let Some(v) = url else {
        for (name, set) in [
            ("remote-write-bearer-token", credentials.token.is_some()),
            ("remote-write-username", credentials.username.is_some()),
            ("remote-write-password", credentials.password.is_some()),
            ("remote-write-auth", auth != defaults::REMOTE_WRITE_AUTH),
            ("remote-query-url", query.is_some()),
        ] {
            if set {
                return Err(Error::input(
                    name,
                    "is only used with `remote-write-url`, which is not set",
                ));
            }
        }
        return Ok(None);
    };
    // Credentials in the URL are refused, and never shown.
    if userinfo(&v).is_some() {
        return Err(invalid(
            "remote-write-url",
            &without_userinfo(&v),
            "put credentials in `remote-write-username`/`remote-write-password`, not in the URL",
        ));
    }
    let url = parse_url("remote-write-url", &v)?;
    let amp_region = amp_region(&url);
    let kind = auth_kind(auth, &credentials, amp_region.is_some())?;
    let auth = remote_auth(kind, credentials, amp_region)?;
    let query = match query {
        Some(v) => Some(QueryTarget {
            url: query_base(parse_secretless_url("remote-query-url", &v)?),
            source: QuerySource::Input,
        }),
        None => derived_query(&url),
    };
    Ok(Some(RemoteWriteTarget { url, auth, query }))
}

/// A URL input that must not carry credentials (they go in their own inputs).
fn parse_secretless_url(name: &str, v: &str) -> Result<Url> {
    if userinfo(v).is_some() {
        return Err(invalid(
            name,
            &without_userinfo(v),
            "put credentials in `remote-write-username`/`remote-write-password`, not in the URL",
        ));
    }
    parse_url(name, v)
}

/// `url` with a trailing `/`, so `api/v1/query` joins below its path.
fn query_base(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    url
}

/// The query API of the store `write` names, where that is unambiguous:
/// an Amazon Managed Service for Prometheus workspace
/// (`…/workspaces/<id>/api/v1/remote_write` → `…/workspaces/<id>/`), or a
/// write path of `/api/v1/write` (Prometheus' receiver, VictoriaMetrics),
/// whose query API is at the same prefix. Others (Mimir's `/api/v1/push`,
/// Thanos' `/api/v1/receive`) put it elsewhere: `remote-query-url` says where.
fn derived_query(write: &Url) -> Option<QueryTarget> {
    let (prefix, source) = match write.path().strip_suffix("/api/v1/remote_write") {
        Some(prefix) if amp_region(write).is_some() && prefix.starts_with("/workspaces/") => {
            (prefix, QuerySource::AmpWorkspace)
        }
        _ => (
            write.path().strip_suffix("/api/v1/write")?,
            QuerySource::WritePath,
        ),
    };
    let mut url = write.clone();
    url.set_path(prefix);
    Some(QueryTarget {
        url: query_base(url),
        source,
    })
}

/// The credential inputs of remote-write, as typed (trimmed, empty = unset).
struct Credentials {
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The region of an Amazon Managed Service for Prometheus URL
/// (`https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/remote_write`).
fn amp_region(url: &Url) -> Option<String> {
    url.host_str()
        .and_then(|h| h.strip_prefix("aps-workspaces."))
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .filter(|r| !r.is_empty() && !r.contains('.'))
        .map(String::from)
}

/// `remote-write-auth` as one of `none`, `bearer`, `basic`, `sigv4`: `auto`
/// becomes the first that what is set calls for.
fn auth_kind<'a>(auth: &'a str, credentials: &Credentials, amp: bool) -> Result<&'a str> {
    match auth {
        "auto" => Ok(match (&credentials.token, &credentials.username, amp) {
            (Some(_), _, _) => "bearer",
            (None, Some(_), _) => "basic",
            (None, None, true) => "sigv4",
            (None, None, false) => "none",
        }),
        "none" | "bearer" | "basic" | "sigv4" => Ok(auth),
        other => Err(invalid(
            "remote-write-auth",
            other,
            "expected `auto`, `none`, `bearer`, `basic` or `sigv4`",
        )),
    }
}

/// The auth of `kind` from the credentials; one the auth would not use is refused.
fn remote_auth(
    kind: &str,
    credentials: Credentials,
    amp_region: Option<String>,
) -> Result<RemoteAuth> {
    let Credentials {
        token,
        username,
        password,
    } = credentials;
    let unused = |name: &str| {
        Error::input(
            name,
            format!("is not used with `remote-write-auth: {kind}`: remove it or change the auth"),
        )
    };
    match kind {
        "bearer" => {
            if username.is_some() {
                return Err(unused("remote-write-username"));
            }
            if password.is_some() {
                return Err(unused("remote-write-password"));
            }
            let token = token.ok_or_else(|| {
                Error::input(
                    "remote-write-bearer-token",
                    "required with `remote-write-auth: bearer`",
                )
            })?;
            Ok(RemoteAuth::Bearer(parse_token(
                "remote-write-bearer-token",
                token,
            )?))
        }
        "basic" => {
            if token.is_some() {
                return Err(unused("remote-write-bearer-token"));
            }
            basic_auth(username, password)
        }
        _ => {
            for (name, set) in [
                ("remote-write-bearer-token", token.is_some()),
                ("remote-write-username", username.is_some()),
                ("remote-write-password", password.is_some()),
            ] {
                if set {
                    return Err(unused(name));
                }
            }
            Ok(if kind == "sigv4" {
                RemoteAuth::SigV4(amp_region)
            } else {
                RemoteAuth::None
            })
        }
    }
}

/// Basic auth: both halves required, neither able to break the header.
fn basic_auth(username: Option<String>, password: Option<String>) -> Result<RemoteAuth> {
    let username = username.ok_or_else(|| {
        Error::input(
            "remote-write-username",
            "required with `remote-write-auth: basic`",
        )
    })?;
    let password = password.ok_or_else(|| {
        Error::input(
            "remote-write-password",
            "required with basic auth (`remote-write-username` is set)",
        )
    })?;
    // Basic auth joins them with `:`: a user name with one would split elsewhere.
    if username.contains(':') || username.chars().any(crate::actions::is_unsafe_char) {
        return Err(invalid(
            "remote-write-username",
            &crate::actions::one_line(&username),
            "a basic-auth user name cannot hold `:`, control characters or line breaks",
        ));
    }
    if password.chars().any(crate::actions::is_unsafe_char) {
        return Err(Error::input(
            "remote-write-password",
            "holds a control character or a line break (the value is not shown: it is a secret)",
        ));
    }
    Ok(RemoteAuth::Basic { username, password })
}

#[cfg(test)]
mod tests {
    use super::super::tests::Says::{Contains, Exactly, StartsWith};
    use super::super::tests::{Case, assert_errors, assert_refused, error, parse};
    use super::*;

    #[test]
    fn the_amp_region_comes_from_the_workspace_host_only() {
        let amp = |v: &str| amp_region(&Url::parse(v).unwrap());
        assert_eq!(
            amp(
                "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
            )
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(amp("https://aps-workspaces..amazonaws.com/x"), None);
        assert_eq!(amp("https://aps-workspaces.a.b.amazonaws.com/x"), None);
        assert_eq!(
            amp("https://aps-workspaces.eu-west-1.amazonaws.com.evil/x"),
            None
        );
        assert_eq!(amp("https://mimir.example/api/v1/push"), None);
    }

    #[test]
    fn the_query_api_is_derived_only_where_the_write_url_makes_it_unambiguous() {
        let query = |write: &str, query: Option<&str>| {
            let mut pairs = vec![("INPUT_REMOTE-WRITE-URL", write)];
            pairs.extend(query.map(|q| ("INPUT_REMOTE-QUERY-URL", q)));
            parse(&pairs)
                .unwrap()
                .remote_write
                .unwrap()
                .query
                .map(|q| (q.url.to_string(), q.source))
        };
        let amp = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1";
        for (write, want) in [
            (
                format!("{amp}/api/v1/remote_write"),
                Some((format!("{amp}/"), QuerySource::AmpWorkspace)),
            ),
            (
                "http://vm:8428/api/v1/write".into(),
                Some(("http://vm:8428/".into(), QuerySource::WritePath)),
            ),
            (
                "https://prom.example/store/api/v1/write".into(),
                Some(("https://prom.example/store/".into(), QuerySource::WritePath)),
            ),
            ("https://mimir.example/api/v1/push".into(), None),
            ("https://thanos.example/api/v1/receive".into(), None),
            // `remote_write` off AMP's host says nothing about a query API.
            (
                "https://example.com/workspaces/ws-1/api/v1/remote_write".into(),
                None,
            ),
        ] {
            assert_eq!(query(&write, None), want, "{write}");
        }
        assert_eq!(
            query(
                "https://mimir.example/api/v1/push",
                Some("https://mimir.example/prometheus")
            ),
            Some((
                "https://mimir.example/prometheus/".into(),
                QuerySource::Input
            )),
            "the input wins, with a trailing slash for joining"
        );
    }

    #[test]
    fn a_query_url_alone_or_with_credentials_is_refused() {
        let e = parse(&[("INPUT_REMOTE-QUERY-URL", "http://vm:8428")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input `remote-query-url`: is only used with `remote-write-url`, which is not set"
        );
        let e = parse(&[
            ("INPUT_REMOTE-WRITE-URL", "http://vm:8428/api/v1/write"),
            ("INPUT_REMOTE-QUERY-URL", "http://u:secret@vm:8428"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("input `remote-query-url`: invalid value"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
        for bad in ["not a url", "ftp://vm:8428", "http://vm:8428/?q=1"] {
            let e = parse(&[
                ("INPUT_REMOTE-WRITE-URL", "http://vm:8428/api/v1/write"),
                ("INPUT_REMOTE-QUERY-URL", bad),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with("input `remote-query-url`: invalid value"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn auto_picks_the_auth_what_is_set_calls_for() {
        let creds = |t: Option<&str>, u: Option<&str>| Credentials {
            token: t.map(String::from),
            username: u.map(String::from),
            password: None,
        };
        let kind = |c: &Credentials, amp: bool| auth_kind("auto", c, amp).unwrap();
        assert_eq!(kind(&creds(Some("t"), Some("u")), true), "bearer");
        assert_eq!(kind(&creds(None, Some("u")), true), "basic");
        assert_eq!(kind(&creds(None, None), true), "sigv4");
        assert_eq!(kind(&creds(None, None), false), "none");
        // An explicit auth is kept as it is, whatever is set.
        for auth in ["none", "bearer", "basic", "sigv4"] {
            assert_eq!(
                auth_kind(auth, &creds(Some("t"), None), false).unwrap(),
                auth
            );
        }
        let e = auth_kind("Bearer", &creds(None, None), false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("input `remote-write-auth`: invalid value `Bearer`")
        );
    }

    #[test]
    fn userinfo_is_what_lies_before_the_authoritys_last_at() {
        assert_eq!(userinfo("http://u:p@h/"), Some("u:p"));
        assert_eq!(userinfo("http://a@b@h:1/x"), Some("a@b"));
        assert_eq!(userinfo("http://h/a@b"), None);
        assert_eq!(userinfo("http://h?a@b"), None);
        assert_eq!(userinfo("http://h#a@b"), None);
        assert_eq!(userinfo("u:p@h"), None);
    }

    #[test]
    fn remote_write_auth_follows_what_is_set() {
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        let auth = |pairs: &[(&str, &str)]| parse(pairs).unwrap().remote_write.unwrap().auth;
        assert_eq!(auth(&[url]), RemoteAuth::None);
        assert_eq!(
            auth(&[url, ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t0k")]),
            RemoteAuth::Bearer("t0k".into())
        );
        assert_eq!(
            auth(&[
                url,
                ("INPUT_REMOTE-WRITE-USERNAME", "u"),
                ("INPUT_REMOTE-WRITE-PASSWORD", "p")
            ]),
            RemoteAuth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let amp =
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write";
        assert_eq!(
            auth(&[("INPUT_REMOTE-WRITE-URL", amp)]),
            RemoteAuth::SigV4(Some("eu-west-1".into()))
        );
        // SigV4 elsewhere (a proxy in front of AMP) takes the region from `aws-region`.
        let i = parse(&[
            url,
            ("INPUT_REMOTE-WRITE-AUTH", "sigv4"),
            ("INPUT_AWS-REGION", "us-east-2"),
        ])
        .unwrap();
        assert_eq!(i.remote_write.unwrap().auth, RemoteAuth::SigV4(None));
        assert_eq!(i.aws_region.as_deref(), Some("us-east-2"));
        // No remote-write, no Pushgateway is fine only with a URL to write to.
        let i = parse(&[url, ("INPUT_PUSHGATEWAY-SERVICE", "none")]).unwrap();
        assert_eq!(i.pushgateway_service, None);
        // `retention` is the Pushgateway's: does this run use one?
        assert!(!i.uses_pushgateway());
        assert!(
            !parse(&[url]).unwrap().uses_pushgateway(),
            "no cluster: no in-cluster service"
        );
        assert!(
            parse(&[url, ("INPUT_CLUSTER-NAME", "prod")])
                .unwrap()
                .uses_pushgateway()
        );
        assert!(
            parse(&[url, ("INPUT_PUSHGATEWAY-URL", "http://pg:9091")])
                .unwrap()
                .uses_pushgateway()
        );
        assert!(parse(&[]).unwrap().uses_pushgateway());
    }

    #[test]
    fn remote_write_inputs_that_would_be_ignored_are_refused() {
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t")], Exactly("input `remote-write-bearer-token`: is only used with `remote-write-url`, which is not set")),
            (&[url, ("INPUT_REMOTE-WRITE-AUTH", "bearer")], StartsWith("input `remote-write-bearer-token`: required")),
            (&[url, ("INPUT_REMOTE-WRITE-AUTH", "kerberos")], Contains("expected `auto`, `none`")),
            (&[url, ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "t"), ("INPUT_REMOTE-WRITE-USERNAME", "u")], StartsWith("input `remote-write-username`: is not used with `remote-write-auth: bearer`")),
            (&[url, ("INPUT_REMOTE-WRITE-USERNAME", "u")], StartsWith("input `remote-write-password`: required")),
            (&[url, ("INPUT_REMOTE-WRITE-AUTH", "none"), ("INPUT_REMOTE-WRITE-PASSWORD", "p")], StartsWith("input `remote-write-password`: is not used")),
            (&[("INPUT_REMOTE-WRITE-URL", "mimir:9009")], StartsWith("input `remote-write-url`")),
            (&[("INPUT_PUSHGATEWAY-SERVICE", "none")], StartsWith("input `pushgateway-service`: `none` leaves nowhere")),
        ];
        assert_errors(cases);
        // Credentials in the URL: refused, and the password never echoed.
        let e = error(&[(
            "INPUT_REMOTE-WRITE-URL",
            "https://u:hunter2@mimir.example/push",
        )]);
        assert!(
            e.contains("not in the URL") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn url_inputs_with_characters_a_url_cannot_hold_are_refused() {
        for name in URL_INPUTS {
            assert_refused(
                name,
                &[
                    "http://pg:9091/a b/",
                    "http://pg:9091/a\"b",
                    "http://pg:9091/<x>",
                    "http://pg:9091/a`b",
                    "http://pg:9091/a\\b",
                    "http://pg:9091/a{b}",
                    "http://pg:9091/a%zz",
                    "http://pg:9091/a%4",
                    "http://pg:9091/é",
                    "http://pg:9091/a\u{0}",
                    "http://pg:9091/a\u{7f}",
                    "http://pg:9091/#frag",
                    "http://pg:9091/?q=1",
                    "http://pg:99999/",
                    "http://:9091/",
                    "ftp://pg/",
                    "file:///etc/passwd",
                    "javascript:alert(1)",
                    "pg:9091",
                ],
            );
        }
        assert!(parse(&[("INPUT_PUSHGATEWAY-URL", "http://pg:9091/a%20b/")]).is_ok());
        // The remote-write URL takes no credentials at all.
        assert_refused("remote-write-url", &["https://tok@mimir.example/push"]);
    }

    #[test]
    fn url_credentials_are_found_in_urls_too_broken_to_parse() {
        assert_eq!(url_credentials("http://user:pw@host:99999/"), ["pw"]);
        assert_eq!(url_credentials("ftp://u:p%40ss@h/x?y"), ["p%40ss", "p@ss"]);
        assert_eq!(url_credentials("https://ghp_token@h/"), ["ghp_token"]);
        assert_eq!(url_credentials("http://a:b@c@h/"), ["b@c"]);
        assert!(url_credentials("http://user:@h/").is_empty());
        assert!(url_credentials("http://h/path@x").is_empty());
        assert!(url_credentials("not a url").is_empty());
        assert_eq!(
            without_userinfo("http://user:pw@host:99999/"),
            "http://***@host:99999/"
        );
        assert_eq!(without_userinfo("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn invalid_url_messages_never_show_the_password() {
        for name in URL_INPUTS {
            let key = format!("INPUT_{}", name.to_uppercase());
            for url in [
                "http://user:hunter2@host:99999/",
                "http://user:hunter2@host/?q=1",
                "ftp://user:hunter2@host/",
                "http://user:hunter2@host/a b",
                "http://user:hunter2@/",
                "http://user:hunter2@host/#f",
            ] {
                let e = error(&[(&key, url)]);
                assert!(e.starts_with(&format!("input `{name}`")), "{e}");
                assert!(!e.contains("hunter2") && !e.contains("user:"), "{e}");
            }
        }
    }
}
