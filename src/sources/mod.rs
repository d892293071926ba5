//! Where events come from: one module per source, each turning its outside
//! system's answers into [`crate::dora::Deploy`] events.
//!
//! - [`payload`]: the triggering event's payload (`workflow_run`,
//!   `deployment_status`), read from `GITHUB_EVENT_PATH`: pure parsing.
//! - [`event`]: event mode, the payload's deployment with what its
//!   workflow's recent runs say about it (GitHub REST).
//! - [`workflows`]: workflows mode, every completed run of the deploy
//!   workflows in the lookback window (GitHub REST).
//! - [`cluster`]: cluster mode, Flux Kustomizations and Flagger Canaries
//!   (the Kubernetes API), mapped by [`cluster::objects`].
//! - [`lookups`]: what completes a new event once it is known to be new:
//!   the commits a deployment shipped, a Flux revision's commit time.
//!
//! Adding a source is adding a file here and a line in [`crate::app`].

pub mod cluster;
pub mod event;
pub mod incidents;
pub mod lookups;
pub mod payload;
pub mod workflows;
