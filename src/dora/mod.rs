//! The pure core: deployment events in; Pushgateway groups, retention
//! decisions and the summary's numbers out. No I/O and no knowledge of how
//! any outside system is reached.
//!
//! Each event is its own Pushgateway group, keyed by what makes the event
//! unique, and every timestamp metric holds the event's own time as its
//! value: dashboards count by value, backfill lands at once, re-runs are
//! no-ops, and concurrent matrix legs never overwrite each other.
//!
//! The layout follows the data: [`event`] (what happened), [`history`]
//! (what its neighbours say), [`group`](mod@group) (how it is stored), [`recorded`]
//! (what the stored groups already say), [`plan`] (what a run changes),
//! [`stats`] (what it reports).

pub mod event;
pub mod group;
pub mod held;
pub mod history;
pub mod incident;
pub mod incident_plan;
pub mod plan;
pub mod recorded;
pub mod revert;
pub mod stats;

pub use event::*;
pub use group::*;
pub use history::*;
pub use recorded::*;
pub use stats::*;

pub use crate::stored::{SmallMap, StoredGroup};

#[cfg(test)]
pub(crate) mod fixtures;
