//! The text exposition read back by hand: an independent check of what the
//! action writes, shared by the property tests and the `labels` fuzz target
//! (which includes this file by path, so it uses nothing but `std`).

use std::collections::BTreeMap;

/// The labels of the first sample line of `exposition` (every sample line of
/// a group carries the same series labels), unescaped as Prometheus'
/// text format escapes them (`\\`, `\"`, `\n`).
pub fn sample_labels(exposition: &str) -> BTreeMap<String, String> {
    let line = exposition
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a sample line");
    let Some((_, body)) = line.split_once('{') else {
        return BTreeMap::new();
    };
    let mut labels = BTreeMap::new();
    let mut chars = body.chars();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || name.starts_with('}') {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("{line}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_string(), value);
    }
    labels
}
