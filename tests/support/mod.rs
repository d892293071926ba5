//! Shared harness for the integration tests: real Pushgateway and Prometheus
//! processes, the action binary run the way a runner runs it, and the
//! fixtures.
//!
//! Every integration test file includes it with `mod support;`. The rules it
//! keeps so tests can run twice, and in parallel, on one machine:
//!
//! - each service listens on a free loopback port chosen at start, and a port
//!   clash with a parallel test is detected (our own process must log that it
//!   bound the port) and retried on another port;
//! - each service and each action run gets its own [`tempfile::TempDir`];
//! - each child process is killed when its handle is dropped, which also
//!   happens when a test panics (unwinding runs `Drop`), and, as a last
//!   resort, when the test process dies without unwinding (`PR_SET_PDEATHSIG`);
//! - readiness is polled, never slept for.
//!
//! One file per concern:
//!
//! - [`process`]: a service binary on a free port, waited for, killed on drop;
//! - [`pushgateway`], [`prometheus`]: the real servers and their APIs;
//! - [`action`]: the action binary run as a runner runs it, and its [`Outcome`];
//! - [`fixtures`]: fixture paths, a fixed "now", real-shaped test objects;
//! - [`github`]: the one GitHub REST mock;
//! - [`cluster`]: the fake EKS stack (Pushgateway behind the fake API
//!   server, the EKS stub), started in one call;
//! - [`aws`] (moto, the EKS stub, SigV4), [`kube`] (the fake API server),
//!   [`oidc`], and the misbehaving servers [`front`], [`hostile`] (both a
//!   [`server::Server`]) and [`delay`];
//! - [`botocore`]: the reference SigV4 implementation, run from the venv;
//! - [`commands`]: reading workflow commands and the summary's Markdown;
//! - [`exposition`]: the text exposition read back by hand;
//! - [`report`]: the JSON report checked against its schema and the outputs.
//!
//! The items most tests use are re-exported here (`support::Action`, …).
//!
//! Not every test binary uses every item, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod action;
pub mod aws;
pub mod botocore;
pub mod cluster;
pub mod commands;
pub mod delay;
pub mod exposition;
pub mod fixtures;
pub mod front;
pub mod github;
pub mod hostile;
pub mod kube;
pub mod oidc;
pub mod process;
pub mod prometheus;
pub mod pushgateway;
pub mod report;
pub mod server;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use action::{Action, Outcome, parse_output_file};
#[allow(unused_imports)]
pub use fixtures::{
    commit_json, compare_body, fixture, fixture_json, fixture_run, rest_run, run_list, seconds_ago,
    test_now,
};
#[allow(unused_imports)]
pub use github::{GitHub, GitHubMock};
#[allow(unused_imports)]
pub use prometheus::{Prometheus, Sample, SeriesPoints};
#[allow(unused_imports)]
pub use pushgateway::{Group, Labels, Pushgateway};
