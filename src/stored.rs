//! What a store holds, as a run reads it: groups with their labels and
//! metric values. Plain data, shared by the store readers (the Pushgateway
//! sink) and the core that decides what is already recorded.

use std::collections::BTreeMap;

/// A group as stored in the Pushgateway: its grouping labels and the values
/// of each metric in it. A run holds every stored group at once (ten
/// thousand and more), so the maps are [`SmallMap`]s, not `BTreeMap`s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredGroup {
    pub labels: SmallMap<String>,
    pub metrics: SmallMap<Vec<f64>>,
    /// The series labels of a group's `*_phase` or `*_ready` metric (to tell
    /// an unchanged phase from a new one, and a revision's environment) or
    /// of its `dora_workflow_deploy_event` (to tell a group stored before
    /// `ref` from today's, see `dora::upgraded`); empty otherwise.
    pub sample_labels: SmallMap<String>,
}

/// A small map from names to values, kept as one exactly-sized vector
/// sorted by name: a few entries cost a few words each, where a `BTreeMap`
/// allocates a node for eleven (about 1 KB per stored group, most of a
/// run's memory at ten thousand groups).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SmallMap<V>(Vec<(Box<str>, V)>);

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<V> SmallMap<V> {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value` (replacing an earlier value), keeping the order.
    pub fn insert(&mut self, key: String, value: V) {
        let key = key.into_boxed_str();
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Gives back the room growth left over (after parsing).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<K: Into<String>, V> Extend<(K, V)> for SmallMap<V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.into(), v);
        }
    }
}

impl<K: Into<String>, V> FromIterator<(K, V)> for SmallMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = SmallMap::default();
        map.extend(iter);
        map.shrink_to_fit();
        map
    }
}

impl<V> From<BTreeMap<String, V>> for SmallMap<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        // Already sorted by name.
        SmallMap(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        )
    }
}

impl<V: PartialEq> PartialEq<BTreeMap<String, V>> for SmallMap<V> {
    fn eq(&self, other: &BTreeMap<String, V>) -> bool {
        self.0.len() == other.len()
            && self
                .0
                .iter()
                .zip(other)
                .all(|((k, v), (k2, v2))| k.as_ref() == k2.as_str() && v == v2)
    }
}

impl<V> std::ops::Index<&str> for SmallMap<V> {
    type Output = V;
    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no `{key}` in the map"))
    }
}

impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for SmallMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = SmallMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<SmallMap<V>, A::Error> {
                let mut map = SmallMap::default();
                while let Some((k, v)) = access.next_entry::<String, V>()? {
                    map.insert(k, v);
                }
                map.shrink_to_fit();
                Ok(map)
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// What a reader of stored groups keeps of each group: its labels, the
/// metric families whose name starts with `prefix` (the rest is skipped
/// unread), and the series labels of the first family `labelled` names.
/// The core says what it needs ([`crate::dora::FAMILIES`]); the readers know
/// no metric names.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub prefix: &'static str,
    pub labelled: fn(&str) -> bool,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn small_maps_stay_sorted_and_compare_with_btree_maps() {
        let mut m: SmallMap<String> = SmallMap::default();
        m.insert("run_id".into(), "2".into());
        m.insert("job".into(), "dora".into());
        m.insert("run_id".into(), "3".into());
        assert_eq!(
            m.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["job", "run_id"]
        );
        assert_eq!(m["run_id"], "3");
        assert!(m.contains_key("job") && !m.contains_key("jo"));
        let b: BTreeMap<String, String> = [
            ("job".to_string(), "dora".to_string()),
            ("run_id".to_string(), "3".to_string()),
        ]
        .into();
        assert!(m == b);
        assert_eq!(SmallMap::from(b.clone()), m);
        let parsed: SmallMap<String> = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap();
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            [("a", &"2".to_string()), ("z", &"1".to_string())]
        );
        m.insert("x".into(), String::new());
        assert!(m != b);
    }
}
