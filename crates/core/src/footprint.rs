//! What the state's tables hold, in bytes, table by table: the records' own sizes times their
//! count (a hash index at its slots' capacity, which is what it costs). The figure is exact and
//! the same on every run, unlike the process's RSS, so a change that adds bytes to every order,
//! SKU or shipment shows in it at once (`elevens bench --workload budget`, `bench/budget.toml`).
//! A `BTreeMap` is counted by its keys' and values' sizes, without its nodes' overhead.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::mem::size_of;

/// Bytes by table, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    pub tables: Vec<(&'static str, u64)>,
}

impl Footprint {
    pub(crate) fn add(&mut self, table: &'static str, bytes: u64) {
        self.tables.push((table, bytes));
    }

    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, bytes)| bytes).sum()
    }

    /// What each table grew by since `before` (a table absent there counts from zero).
    pub fn since(&self, before: &Footprint) -> Footprint {
        let was = |name: &str| before.tables.iter().find(|(n, _)| *n == name).map_or(0, |(_, b)| *b);
        Footprint {
            tables: self
                .tables
                .iter()
                .map(|(name, bytes)| (*name, bytes.saturating_sub(was(name))))
                .collect(),
        }
    }
}

pub(crate) fn vec<T>(v: &[T]) -> u64 {
    std::mem::size_of_val(v) as u64
}

pub(crate) fn deque<T>(v: &VecDeque<T>) -> u64 {
    std::mem::size_of_val(v) as u64
}

pub(crate) fn map<K, V>(m: &BTreeMap<K, V>) -> u64 {
    (m.len() * (size_of::<K>() + size_of::<V>())) as u64
}

pub(crate) fn set<K>(s: &BTreeSet<K>) -> u64 {
    (s.len() * size_of::<K>()) as u64
}

/// A map whose values are lists: the keys, the lists' headers and their items.
pub(crate) fn map_of_lists<K, V>(m: &BTreeMap<K, Vec<V>>) -> u64 {
    map(m) + m.values().map(|list| vec(list)).sum::<u64>()
}
