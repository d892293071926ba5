//! `aws::sigv4_headers` (SigV4 for remote-write to Amazon Managed Service
//! for Prometheus, service `aps`) against botocore's own signer
//! (`tests/botocore_sigv4.py`, run with the repo's `.venv` python at a
//! frozen time), for the exact request remote-write sends: POST, the
//! protocol headers, a snappy body. The headers must agree byte for byte.
//!
//! Needs `.venv` with botocore: `scripts/test.sh setup`. A missing venv is a
//! failure, not a skip.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use dora_action::aws::{Credentials, sigv4_headers};
use dora_action::sinks::remote_write::{PROTOCOL_HEADERS, TimeSeries, encode};

const TIME: &str = "20261126T120000Z";

fn signing_time() -> SystemTime {
    let ts = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", TIME)
        .and_then(|t| t.to_datetime())
        .and_then(|dt| jiff::tz::Offset::UTC.to_timestamp(dt))
        .expect("TIME parses");
    SystemTime::from(ts)
}

fn botocore(creds: &Credentials, region: &str, url: &str, body: &[u8]) -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `scripts/test.sh setup`",
        python.display()
    );
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("tests/botocore_sigv4.py"))
        .arg(format!("--region={region}"))
        .arg("--service=aps")
        .arg("--method=POST")
        .arg(format!("--url={url}"))
        .arg(format!("--access-key-id={}", creds.access_key_id))
        .arg(format!("--secret-access-key={}", creds.secret_access_key))
        .arg(format!("--time={TIME}"));
    if let Some(token) = &creds.session_token {
        cmd.arg(format!("--session-token={token}"));
    }
    for (name, value) in PROTOCOL_HEADERS {
        cmd.arg(format!("--header={name}:{value}"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run botocore_sigv4.py");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "botocore_sigv4.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("botocore_sigv4.py prints JSON")
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
