//! `aws::eks_token` against an independent implementation: botocore's own
//! presigner, driven the way `aws eks get-token` drives it
//! (`tests/botocore_token.py`, run with the repo's `.venv` python at a frozen
//! time). The tokens must agree byte for byte; on a mismatch the two decoded
//! URLs are printed parameter by parameter.
//!
//! Needs `.venv` with botocore: `scripts/test.sh setup`. A missing venv is a
//! failure, not a skip, so the check cannot silently disappear.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dora_action::aws::{Credentials, eks_token};
use support::botocore::{self, TIME, signing_time};
use support::kube::ALLOWED_PARAMS;

const PREFIX: &str = "k8s-aws-v1.";

/// AWS's documented example keys: not real credentials.
const LONG_TERM_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const LONG_TERM_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_KEY: &str = "ASIAIOSFODNN7EXAMPLE";
const SESSION_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
/// Shaped like a real STS session token: base64, so `+`, `/` and `=`, which
/// must come out as `%2B`, `%2F` and `%3D`.
const SESSION_TOKEN: &str =
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+MEUCIQD/abc+def/ghi=jkl===";

struct Case {
    region: &'static str,
    cluster: &'static str,
    creds: Credentials,
}

fn long_term() -> Credentials {
    Credentials {
        access_key_id: LONG_TERM_KEY.into(),
        secret_access_key: LONG_TERM_SECRET.into(),
        session_token: None,
    }
}

fn temporary() -> Credentials {
    Credentials {
        access_key_id: SESSION_KEY.into(),
        secret_access_key: SESSION_SECRET.into(),
        session_token: Some(SESSION_TOKEN.into()),
    }
}

/// The token botocore produces, via `tests/botocore_token.py`.
fn botocore_token(case: &Case) -> String {
    let creds = &case.creds;
    let keys = (
        creds.access_key_id.as_str(),
        creds.secret_access_key.as_str(),
        creds.session_token.as_deref(),
    );
    let args = [
        format!("--region={}", case.region),
        format!("--cluster={}", case.cluster),
    ];
    let out = botocore::run("botocore_token.py", keys, &args, &[]);
    let token = String::from_utf8(out).expect("botocore token is UTF-8");
    token.trim_end_matches('\n').to_string()
}

/// The presigned URL inside a token.
fn decode(token: &str) -> String {
    let b64 = token
        .strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("token lacks the `{PREFIX}` prefix: {token}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap_or_else(|e| panic!("token is not unpadded base64url ({e}): {token}"));
    String::from_utf8(bytes).expect("decoded token is UTF-8")
}

/// `name=value` pairs of a URL's query, in order, undecoded.
fn query(url: &str) -> Vec<(String, String)> {
    let (_, q) = url.split_once('?').unwrap_or((url, ""));
    q.split('&')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_string(), v.to_string())
        })
        .collect()
}

/// Both URLs, then every query parameter side by side, marking those that differ.
fn side_by_side(ours: &str, botocore: &str) -> String {
    let (a, b) = (query(ours), query(botocore));
    let mut s = format!("ours:     {ours}\nbotocore: {botocore}\n\n");
    let before = |u: &str| u.split_once('?').map_or(u, |(h, _)| h).to_string();
    let (ha, hb) = (before(ours), before(botocore));
    if ha != hb {
        s.push_str(&format!(
            "!= <base>\n     ours:     {ha}\n     botocore: {hb}\n"
        ));
    }
    for i in 0..a.len().max(b.len()) {
        let show = |q: &[(String, String)]| {
            q.get(i)
                .map_or("<absent>".to_string(), |(n, v)| format!("{n}={v}"))
        };
        let (pa, pb) = (show(&a), show(&b));
        if pa == pb {
            s.push_str(&format!("== {pa}\n"));
        } else {
            s.push_str(&format!(
                "!= param #{i}\n     ours:     {pa}\n     botocore: {pb}\n"
            ));
        }
    }
    s
}

/// Ours and botocore's agree byte for byte, and have the shape EKS expects.
fn check(case: &Case) {
    let ours = eks_token(&case.creds, case.region, case.cluster, signing_time())
        .expect("eks_token succeeds");
    let reference = botocore_token(case);
    assert!(
        ours == reference,
        "EKS token differs from botocore's (region {}, cluster {}):\n{}\n\
         ours token:     {ours}\nbotocore token: {reference}",
        case.region,
        case.cluster,
        side_by_side(&decode(&ours), &decode(&reference)),
    );
    assert_shape(&ours, case);
}

/// The token's own shape, independent of botocore.
fn assert_shape(token: &str, case: &Case) {
    assert!(token.starts_with(PREFIX), "{token}");
    let b64 = &token[PREFIX.len()..];
    assert!(
        b64.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "base64url alphabet only, no `=` padding: {token}"
    );
    let url = decode(token);
    let base = format!(
        "https://sts.{}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&",
        case.region
    );
    assert!(url.starts_with(&base), "regional STS host: {url}");

    let params = query(&url);
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    // All aws-iam-authenticator allows, the session token only with a session.
    let session = case.creds.session_token.is_some();
    let expected: Vec<&str> = ALLOWED_PARAMS
        .into_iter()
        .filter(|p| session || *p != "X-Amz-Security-Token")
        .collect();
    assert_eq!(names, expected, "parameters and their order: {url}");

    let value = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {url}"))
    };
    assert_eq!(value("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    assert_eq!(
        value("X-Amz-Credential"),
        format!(
            "{}%2F{}%2F{}%2Fsts%2Faws4_request",
            case.creds.access_key_id,
            &TIME[..8],
            case.region
        )
    );
    assert_eq!(value("X-Amz-Date"), TIME);
    assert_eq!(value("X-Amz-Expires"), "60");
    assert_eq!(value("X-Amz-SignedHeaders"), "host%3Bx-k8s-aws-id");
    if let Some(t) = &case.creds.session_token {
        let encoded = t
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(value("X-Amz-Security-Token"), encoded);
    }
    let sig = value("X-Amz-Signature");
    assert!(
        sig.len() == 64 && sig.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "signature is 64 lowercase hex digits: {sig}"
    );
    assert!(
        !url.contains(case.cluster),
        "the cluster name is a signed header, not a query parameter: {url}"
    );
}

#[test]
fn long_term_keys_us_east_1_match_botocore() {
    check(&Case {
        region: "us-east-1",
        cluster: "production",
        creds: long_term(),
    });
}

#[test]
fn session_token_with_base64_specials_eu_west_1_matches_botocore() {
    check(&Case {
        region: "eu-west-1",
        cluster: "staging",
        creds: temporary(),
    });
}

#[test]
fn cluster_name_with_dash_and_underscore_matches_botocore() {
    check(&Case {
        region: "ap-southeast-2",
        cluster: "my-cluster_01",
        creds: long_term(),
    });
}

#[test]
fn the_cluster_name_is_signed() {
    // Sanity check of the comparison itself: a different cluster (or time)
    // must change the token, or the byte-for-byte match would prove little.
    let a = eks_token(&long_term(), "us-east-1", "a", signing_time()).expect("token");
    let b = eks_token(&long_term(), "us-east-1", "b", signing_time()).expect("token");
    assert_ne!(a, b);
    let later = signing_time() + std::time::Duration::from_secs(1);
    let c = eks_token(&long_term(), "us-east-1", "a", later).expect("token");
    assert_ne!(a, c);
}
