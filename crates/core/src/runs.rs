//! A value that a table's rows share in runs, kept once per run instead of once per row: the
//! time of the ledger's transfers (every transfer a sequencer batch posts in one millisecond
//! shares it) and the second shipments were created in.
//!
//! An entry is 11 bytes: the run's first row (40 bits) and the value (48 bits, which holds a
//! millisecond timestamp until the year 10,000). Under load a run spans hundreds of rows and
//! the table costs a small fraction of a byte per row; at worst (each row a run of its own)
//! it costs 11 bytes per row, against the 8 a `u64` per row would.

use crate::chunked::Chunked;
use crate::types::U40;
use serde::{Deserialize, Serialize};

/// The largest value a run holds.
pub(crate) const VALUE_MAX: u64 = (1 << 48) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    first: U40,
    value: [u8; 6],
}

impl Run {
    fn value(&self) -> u64 {
        let [a, b, c, d, e, f] = self.value;
        u64::from_le_bytes([a, b, c, d, e, f, 0, 0])
    }
}

const _: () = assert!(std::mem::size_of::<Run>() == 11);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Runs {
    runs: Chunked<Run>,
    /// The last run's first row and value, decoded (every row written reads and compares
    /// them); derived from `runs`, which is all that is serialized.
    newest: Option<(u64, u64)>,
}

impl Serialize for Runs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.runs.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Runs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Runs, D::Error> {
        let runs = Chunked::<Run>::deserialize(deserializer)?;
        let newest = runs.last().map(|r| (r.first.get(), r.value()));
        Ok(Runs { runs, newest })
    }
}

impl Runs {
    /// Records that row `row` (the table's next, so rows come in order) has `value`; a value
    /// above [`VALUE_MAX`] (a clock past the year 10,000) is kept as [`VALUE_MAX`].
    #[inline]
    pub(crate) fn note(&mut self, row: u64, value: u64) {
        let value = value.min(VALUE_MAX);
        if self.newest.is_none_or(|(_, newest)| newest != value) {
            let b = value.to_le_bytes();
            self.runs.push(Run { first: U40::new(row), value: [b[0], b[1], b[2], b[3], b[4], b[5]] });
            self.newest = Some((row, value));
        }
    }

    /// The value of row `row` (0 before the first run).
    pub(crate) fn get(&self, row: u64) -> u64 {
        // The newest rows, the ones read right after they are written, are in the last run.
        if let Some((_, value)) = self.newest.filter(|&(first, _)| first <= row) {
            return value;
        }
        let (mut low, mut high) = (0, self.runs.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if self.runs.get(middle).is_some_and(|r| r.first.get() <= row) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low.checked_sub(1).and_then(|run| self.runs.get(run)).map_or(0, Run::value)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.runs.bytes()
    }

    /// Whether a decoded table of `rows` rows is well formed: runs start at row 0, in order,
    /// each within the rows.
    pub(crate) fn check(&self, rows: u64) -> Result<(), &'static str> {
        let firsts = || self.runs.iter().map(|r| r.first.get());
        let ordered = firsts().zip(firsts().skip(1)).all(|(a, b)| a < b);
        let starts = firsts().next().map_or(rows == 0, |f| f == 0);
        if !ordered || !starts || firsts().any(|f| f >= rows) {
            return Err("a table's runs are out of order");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_reads_the_value_of_its_run() {
        let mut runs = Runs::default();
        let values = [5u64, 5, 5, 9, 9, 5, 7, VALUE_MAX, VALUE_MAX, 0];
        for (row, &v) in values.iter().enumerate() {
            runs.note(row as u64, v);
        }
        assert_eq!(runs.runs.len(), 6);
        for (row, &v) in values.iter().enumerate() {
            assert_eq!(runs.get(row as u64), v, "row {row}");
        }
        assert!(runs.check(values.len() as u64).is_ok());
        let decoded: Runs = postcard::from_bytes(&postcard::to_allocvec(&runs).unwrap()).unwrap();
        assert_eq!(decoded, runs, "the newest run is derived again on decode");
        assert!(runs.check(3).is_err());
        assert!(Runs::default().check(0).is_ok());
        assert!(Runs::default().check(1).is_err());
    }
}
