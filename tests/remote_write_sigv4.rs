//! `aws::sigv4_headers` (SigV4 for remote-write to Amazon Managed Service
//! for Prometheus, service `aps`) against botocore's own signer
//! (`tests/botocore_sigv4.py`, run with the repo's `.venv` python at a
//! frozen time), for the exact request remote-write sends: POST, the
//! protocol headers, a snappy body. The headers must agree byte for byte.
//!
//! Needs `.venv` with botocore: `scripts/test.sh setup`. A missing venv is a
//! failure, not a skip.

mod support;

use std::collections::BTreeMap;

use dora_action::aws::{Credentials, sigv4_headers};
use dora_action::sinks::remote_write::{PROTOCOL_HEADERS, TimeSeries, encode};
use support::botocore::{self, signing_time};

fn botocore(creds: &Credentials, region: &str, url: &str, body: &[u8]) -> BTreeMap<String, String> {
    let keys = (
        creds.access_key_id.as_str(),
        creds.secret_access_key.as_str(),
        creds.session_token.as_deref(),
    );
    let mut args = vec![
        format!("--region={region}"),
        "--service=aps".to_string(),
        "--method=POST".to_string(),
        format!("--url={url}"),
    ];
    for (name, value) in PROTOCOL_HEADERS {
        args.push(format!("--header={name}:{value}"));
    }
    let out = botocore::run("botocore_sigv4.py", keys, &args, body);
    serde_json::from_slice(&out).expect("botocore_sigv4.py prints JSON")
}

#[test]
fn remote_write_sigv4_headers_match_botocore() {
    let body = encode(&[vec![TimeSeries::new(
        vec![
            ("__name__".into(), "dora_workflow_deploy_timestamp".into()),
            ("job".into(), "dora".into()),
            ("repository".into(), "octo-org/shop".into()),
        ],
        1_764_000_000.0,
        1_764_000_000_000,
    )]]);
    let cases = [
        (
            Credentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
            "eu-west-1",
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-12345678-abcd-1234-abcd-123456789012/api/v1/remote_write",
        ),
        (
            Credentials {
                access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY".into(),
                session_token: Some(
                    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+MEUCIQD/abc=".into(),
                ),
            },
            "us-east-2",
            // A proxy in front of AMP, with a port and a path that needs encoding.
            "https://amp-proxy.internal:8443/workspaces/ws-1/api/v1/remote_write",
        ),
    ];
    for (creds, region, url) in cases {
        let ours: BTreeMap<String, String> = sigv4_headers(
            &creds,
            region,
            "aps",
            "POST",
            url,
            &PROTOCOL_HEADERS,
            &body,
            signing_time(),
        )
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
        let theirs = botocore(&creds, region, url, &body);
        assert_eq!(ours, theirs, "{url}");
        assert!(ours["authorization"].contains(&format!("/{region}/aps/aws4_request")));
        assert_eq!(
            ours.contains_key("x-amz-security-token"),
            creds.session_token.is_some()
        );
    }
}
