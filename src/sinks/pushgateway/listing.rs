//! The group listing (`GET /api/v1/metrics`), read as it arrives: tens of
//! megabytes at ten thousand groups, parsed group by group so memory holds
//! the groups' compact form and one group's JSON at a time.

use serde::Deserialize;
use serde::de::DeserializeSeed;

use crate::stored::{Keep, SmallMap, StoredGroup};

/// The listing's envelope; its groups are read one by one by [`GroupStream`].
#[derive(Deserialize)]
struct ApiResponse {
    status: String,
}

/// One group of `GET /api/v1/metrics`, read without building a JSON tree:
/// only `labels` and the families [`Keep`] names are kept, the rest (the
/// Pushgateway's own `push_time_seconds`, other jobs' metrics) is skipped as
/// it streams by. With thousands of groups that is most of the answer.
struct ApiGroup<'k>(&'k Keep);

impl<'de> DeserializeSeed<'de> for ApiGroup<'_> {
    type Value = StoredGroup;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<StoredGroup, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ApiGroup<'_> {
    type Value = StoredGroup;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Pushgateway group")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<StoredGroup, A::Error> {
        let mut group = StoredGroup::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "labels" {
                group.labels = map.next_value()?;
            } else if key == "last_push_successful" {
                // The one key besides `labels` that is no metric family.
                map.next_value::<serde::de::IgnoredAny>()?;
            } else if key.starts_with(self.0.prefix) {
                let family: ApiFamily = map.next_value()?;
                if let Some(first) = family.metrics.first().filter(|_| (self.0.labelled)(&key)) {
                    group.sample_labels.clone_from(&first.labels);
                }
                let values = family
                    .metrics
                    .iter()
                    .filter_map(|m| m.value.as_deref()?.parse::<f64>().ok())
                    .collect();
                group.metrics.insert(key, values);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(group)
    }
}

#[derive(Deserialize)]
struct ApiFamily {
    #[serde(default)]
    metrics: Vec<ApiMetric>,
}

#[derive(Deserialize)]
struct ApiMetric {
    value: Option<String>,
    #[serde(default)]
    labels: SmallMap<String>,
}

/// An incremental parser of the group listing, fed the answer in pieces as
/// they arrive. It follows the JSON's nesting (strings and escapes
/// included) only to cut out each element of the top-level `data` array;
/// an element is parsed as soon as it is complete ([`ApiGroup`] keeps only
/// what the caller needs) and its bytes dropped. What remains of the answer
/// (`{"status":"success","data":[]}`) is parsed at the end, so a truncated
/// or malformed answer is still an error.
pub(super) struct GroupStream<'k> {
    /// What of each group to keep.
    keep: &'k Keep,
    /// Keep only the group with exactly these labels.
    only: Option<&'k SmallMap<String>>,
    /// Nesting depth: 1 inside the top-level object, 2 inside `data`, 3+ inside a group.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Inside the top-level `data` array.
    in_data: bool,
    /// The answer without the elements of `data`.
    outer: Vec<u8>,
    /// The group being read (its buffer is reused from group to group).
    element: Vec<u8>,
    /// The group being read passed [`GROUP_LIMIT`].
    oversized: bool,
    groups: Vec<StoredGroup>,
    /// Groups skipped for their size.
    skipped: usize,
}

/// An answer this large without the groups is not a Pushgateway's.
const OUTER_LIMIT: usize = 1 << 20;

/// The most one group of the listing may take (its JSON). A group this
/// action writes is a few KB; a group over the cap is another job's (a
/// thousand series pushed as one group) or a hostile one. It is skipped, not
/// an error: skipping loses nothing (another job's group is never touched;
/// were it one of ours, the event would be pushed again, which replaces the
/// group with the same content, and pruning would wait for a later run),
/// while memory stays bounded by this cap whatever one group holds.
pub const GROUP_LIMIT: usize = 1 << 20;

/// The groups of `GET /api/v1/metrics`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listing {
    pub groups: Vec<StoredGroup>,
    /// Groups over [`GROUP_LIMIT`], skipped unread (the run warns about them).
    pub skipped: usize,
}

impl<'k> GroupStream<'k> {
    pub(super) fn new(keep: &'k Keep, only: Option<&'k SmallMap<String>>) -> GroupStream<'k> {
        GroupStream {
            keep,
            only,
            depth: 0,
            in_string: false,
            escaped: false,
            in_data: false,
            outer: Vec::new(),
            element: Vec::new(),
            oversized: false,
            groups: Vec::new(),
            skipped: 0,
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        for &b in chunk {
            if self.in_data && self.depth >= 3 {
                // Past the cap the group's bytes are no longer kept, only
                // followed to its end (see `GROUP_LIMIT`).
                if self.element.len() < GROUP_LIMIT {
                    self.element.push(b);
                } else {
                    self.oversized = true;
                }
                if self.scan(b) && self.depth == 2 {
                    self.group()?;
                }
                continue;
            }
            if self.in_data && self.depth == 2 && !self.in_string {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
                    b'{' => {
                        self.depth = 3;
                        self.element.push(b);
                    }
                    b']' => {
                        self.depth = 1;
                        self.in_data = false;
                        self.outer.push(b);
                    }
                    other => {
                        return Err(format!(
                            "unexpected answer: a group is not an object (`{}`)",
                            other as char
                        ));
                    }
                }
                continue;
            }
            self.outer.push(b);
            let depth = self.depth;
            if self.scan(b) && b == b'[' && depth == 1 && self.key_is_data() {
                self.in_data = true;
            }
            if self.outer.len() > OUTER_LIMIT {
                return Err("unexpected answer: not a group listing".into());
            }
        }
        Ok(())
    }

    /// Follows strings and nesting; `true` when `b` opened or closed an
    /// object or array (outside strings).
    fn scan(&mut self, b: u8) -> bool {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                self.depth += 1;
                return true;
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return true;
            }
            _ => {}
        }
        false
    }

    /// Whether the array just opened (the last byte of `outer`) is the value of `"data"`.
    fn key_is_data(&self) -> bool {
        let before = &self.outer[..self.outer.len() - 1];
        let before = before.trim_ascii_end();
        before
            .strip_suffix(b":")
            .is_some_and(|k| k.trim_ascii_end().ends_with(b"\"data\""))
    }

    /// One complete group: parsed, kept if it has labels, its bytes dropped.
    fn group(&mut self) -> std::result::Result<(), String> {
        if std::mem::take(&mut self.oversized) {
            self.element.clear();
            self.skipped += 1;
            return Ok(());
        }
        let mut json = serde_json::Deserializer::from_slice(&self.element);
        let group = ApiGroup(self.keep)
            .deserialize(&mut json)
            .and_then(|g| json.end().map(|()| g))
            .map_err(|e| format!("unexpected answer: {e}"))?;
        self.element.clear();
        if !group.labels.is_empty() && self.only.is_none_or(|only| *only == group.labels) {
            self.groups.push(group);
        }
        Ok(())
    }

    /// The groups, once the whole answer has been fed.
    pub(super) fn finish(self) -> std::result::Result<Listing, String> {
        let response: ApiResponse =
            serde_json::from_slice(&self.outer).map_err(|e| format!("unexpected answer: {e}"))?;
        if response.status != "success" {
            return Err(format!("status `{}`", response.status));
        }
        Ok(Listing {
            groups: self.groups,
            skipped: self.skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::FAMILIES;

    /// Parses `GET /api/v1/metrics` (`{"status":"success","data":[group, ...]}`;
    /// each group an object with `labels` and one key per metric family) in one go.
    fn parse_groups(body: &[u8]) -> std::result::Result<Vec<StoredGroup>, String> {
        let mut stream = GroupStream::new(&FAMILIES, None);
        stream.feed(body)?;
        stream.finish().map(|l| l.groups)
    }

    #[test]
    fn groups_are_parsed_with_their_metric_values() {
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","run_id":"1"},"last_push_successful":true,
            "dora_workflow_deploy_timestamp":{"time_stamp":"2026-11-26T23:18:49Z","type":"GAUGE","help":"h","metrics":[{"labels":{"job":"dora"},"value":"1.7e+09"}]},
            "push_time_seconds":{"type":"GAUGE","metrics":[{"labels":{},"value":"1.79e+09"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels["run_id"], "1");
        assert_eq!(
            groups[0].metrics["dora_workflow_deploy_timestamp"],
            vec![1.7e9]
        );
        assert_eq!(groups[0].event_time(), Some(1.7e9));
        assert!(parse_groups(b"<html>").is_err());
        // A Flux revision's environment, from its `dora_flux_ready` series:
        // a stored revision can end a canary's recovery in its environment.
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","kustomization":"apps","revision":"main@sha1:abc"},
            "dora_flux_ready":{"metrics":[{"labels":{"environment":"prod","ready":"true"},"value":"1"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups[0].sample_labels["environment"], "prod");
        // A workflow run's series labels, from its `dora_workflow_deploy_event`:
        // tells a group stored before `ref` (with `branch`) from today's.
        let body = r#"{"status":"success","data":[{"labels":{"job":"dora","run_id":"1"},
            "dora_workflow_deploy_event":{"metrics":[{"labels":{"job":"dora","run_id":"1","branch":"main","status":"success"},"value":"1"}]}}]}"#;
        let groups = parse_groups(body.as_bytes()).unwrap();
        assert_eq!(groups[0].sample_labels["branch"], "main");
        assert_eq!(groups[0].metrics["dora_workflow_deploy_event"], vec![1.0]);
    }

    #[test]
    fn the_listing_is_parsed_the_same_whatever_pieces_it_arrives_in() {
        // Braces, brackets, quotes and a `"data":[` inside strings must not
        // confuse the cutting; nor may whitespace between the pieces.
        let body = br#"{ "status" : "success" , "data" : [
            {"labels":{"job":"dora","canary":"a}]\"data\":[{","phase":"x\\"},
             "dora_flagger_canary_phase":{"metrics":[{"labels":{"phase":"Failed"},"value":"1"}]},
             "push_time_seconds":{"metrics":[{"labels":{},"value":"1.7e9"}]}} ,
            {"labels":{}},
            {"labels":{"job":"other","run_id":"2"},"dora_workflow_deploy_timestamp":{"metrics":[{"value":"5"},{"value":"7"}]}}
        ] }"#;
        let whole = parse_groups(body).unwrap();
        assert_eq!(whole.len(), 2, "the group without labels is dropped");
        assert_eq!(whole[0].labels["canary"], "a}]\"data\":[{");
        assert_eq!(whole[0].labels["phase"], "x\\");
        assert_eq!(whole[0].sample_labels["phase"], "Failed");
        assert_eq!(whole[1].event_time(), Some(7.0));
        for size in [1, 2, 3, 7, 64] {
            let mut stream = GroupStream::new(&FAMILIES, None);
            for piece in body.chunks(size) {
                stream.feed(piece).unwrap();
            }
            assert_eq!(
                stream.finish().unwrap().groups,
                whole,
                "pieces of {size} bytes"
            );
        }
    }

    #[test]
    fn a_group_over_the_cap_is_skipped_and_counted() {
        let huge = "x".repeat(GROUP_LIMIT + 10);
        let body = format!(
            r#"{{"status":"success","data":[{{"labels":{{"job":"other","g":"1"}},"big":{{"metrics":[{{"labels":{{"v":"{huge}"}},"value":"1"}}]}}}},{{"labels":{{"job":"dora","run_id":"2"}},"dora_workflow_deploy_timestamp":{{"metrics":[{{"value":"5"}}]}}}}]}}"#
        );
        let mut stream = GroupStream::new(&FAMILIES, None);
        for piece in body.as_bytes().chunks(64 * 1024) {
            stream.feed(piece).unwrap();
            assert!(
                stream.element.capacity() <= 2 * GROUP_LIMIT,
                "memory stays bounded"
            );
        }
        let listing = stream.finish().unwrap();
        assert_eq!(listing.skipped, 1);
        assert_eq!(listing.groups.len(), 1);
        assert_eq!(listing.groups[0].labels["run_id"], "2");
    }

    #[test]
    fn a_truncated_or_foreign_listing_is_an_error() {
        let body = br#"{"status":"success","data":[{"labels":{"job":"dora"}},{"labels":{"job":"#;
        for end in [body.len(), 40, 30, 5] {
            assert!(parse_groups(&body[..end]).is_err(), "cut at {end}");
        }
        assert!(parse_groups(br#"{"status":"error","data":[]}"#).is_err());
        assert!(parse_groups(br#"{"status":"success","data":[1]}"#).is_err());
        assert!(parse_groups(br#"{"status":"success","data":[{"labels":7}]}"#).is_err());
        assert!(parse_groups(b"").is_err());
        assert_eq!(
            parse_groups(br#"{"status":"success","data":[]}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn every_family_of_one_group_can_be_kept() {
        let every = Keep {
            prefix: "",
            labelled: |_| false,
        };
        let body = br#"{"status":"success","data":[
            {"labels":{"job":"dora","run_id":"1"},"last_push_successful":false,
             "push_failure_time_seconds":{"metrics":[{"value":"1.7e9"}]},
             "push_time_seconds":{"metrics":[{"value":"0"}]}},
            {"labels":{"job":"dora","run_id":"2"},"last_push_successful":true,
             "dora_workflow_deploy_timestamp":{"metrics":[{"value":"5"}]}}]}"#;
        let only: SmallMap<String> = [("job", "dora".to_string()), ("run_id", "1".to_string())]
            .into_iter()
            .collect();
        let mut stream = GroupStream::new(&every, Some(&only));
        stream.feed(body).unwrap();
        let groups = stream.finish().unwrap().groups;
        assert_eq!(groups.len(), 1, "only the group asked for");
        assert_eq!(groups[0].labels, only);
        let names: Vec<&str> = groups[0].metrics.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["push_failure_time_seconds", "push_time_seconds"]);
    }
}
