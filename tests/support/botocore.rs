//! botocore, the independent reference the SigV4 code is checked against:
//! `tests/botocore_*.py` run with the repo's `.venv` python at a frozen
//! time. A missing venv is a failure, not a skip, so the check cannot
//! silently disappear.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// The frozen signing time, in the form SigV4 writes it (`X-Amz-Date`).
pub const TIME: &str = "20261126T120000Z";

/// [`TIME`] as a `SystemTime`.
pub fn signing_time() -> SystemTime {
    SystemTime::from(super::aws::parse_amz_date(TIME).expect("TIME parses"))
}

fn setup_hint() -> &'static str {
    "run `scripts/test.sh setup` (it creates .venv and installs botocore)"
}

/// Credentials as the scripts take them: key id, secret, session token.
pub type Keys<'a> = (&'a str, &'a str, Option<&'a str>);

/// Runs `tests/{script}` with `args`, the credentials `keys` and
/// `--time=`[`TIME`], `stdin` on its standard input; returns its stdout.
pub fn run(script: &str, keys: Keys<'_>, args: &[String], stdin: &[u8]) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: {}",
        python.display(),
        setup_hint()
    );
    let (key, secret, token) = keys;
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("tests").join(script))
        .args(args)
        .arg(format!("--access-key-id={key}"))
        .arg(format!("--secret-access-key={secret}"))
        .arg(format!("--time={TIME}"));
    if let Some(token) = token {
        cmd.arg(format!("--session-token={token}"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {}", python.display(), setup_hint()));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin)
        .expect("write the script's stdin");
    let out = child.wait_with_output().expect("wait for the script");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'botocore'") {
        panic!("botocore is not installed in .venv: {}", setup_hint());
    }
    assert!(
        out.status.success(),
        "tests/{script} failed ({}):\n{stderr}",
        out.status
    );
    out.stdout
}
