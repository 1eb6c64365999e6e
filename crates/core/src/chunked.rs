//! A growable table that never moves what it holds: fixed-size chunks, so growing it is one
//! fresh allocation, never a doubling copy of everything (which, for tens of millions of orders,
//! stalls the sequencer and faults every page in twice). Serialized as a plain sequence, the same
//! bytes as a `Vec`.

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::VecDeque;
use std::ops::{Index, IndexMut};

/// Entries per chunk.
const CHUNK_ENTRIES: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        if self.len.is_multiple_of(CHUNK_ENTRIES) {
            self.chunks.push(Vec::with_capacity(CHUNK_ENTRIES));
        }
        let last = self.chunks.len() - 1;
        self.chunks[last].push(value);
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK_ENTRIES)?.get(index % CHUNK_ENTRIES)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK_ENTRIES)?.get_mut(index % CHUNK_ENTRIES)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + Clone {
        ChunkedIter { inner: self.chunks.iter().flatten(), left: self.len }
    }

    /// The entries' bytes (see [`crate::footprint`]).
    pub fn bytes(&self) -> u64 {
        (self.len * std::mem::size_of::<T>()) as u64
    }
}

/// `Flatten` does not know its length; this carries it.
#[derive(Clone)]
struct ChunkedIter<I> {
    inner: I,
    left: usize,
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> Iterator for ChunkedIter<I> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, T: 'a, I: DoubleEndedIterator<Item = &'a T>> DoubleEndedIterator for ChunkedIter<I> {
    fn next_back(&mut self) -> Option<&'a T> {
        let next = self.inner.next_back()?;
        self.left -= 1;
        Some(next)
    }
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ExactSizeIterator for ChunkedIter<I> {}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK_ENTRIES][index % CHUNK_ENTRIES]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index / CHUNK_ENTRIES][index % CHUNK_ENTRIES]
    }
}

impl<T: Serialize> Serialize for Chunked<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Deserializes a sequence straight into chunks: through a `Vec` first, a snapshot of ten
/// million orders paid for a doubling copy of each table and every page faulted in twice (half
/// of a 30 s restart, `perf record` of `elevens serve` on a 7.8 M-order data directory).
struct ChunksVisitor<C, T>(std::marker::PhantomData<(C, T)>);

impl<'de, T: Deserialize<'de>, C: Default + Extend<T>> Visitor<'de> for ChunksVisitor<C, T> {
    type Value = C;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<C, A::Error> {
        let mut chunks = C::default();
        while let Some(value) = seq.next_element()? {
            chunks.extend(Some(value));
        }
        Ok(chunks)
    }
}

impl<T> Extend<T> for Chunked<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        values.into_iter().for_each(|value| self.push(value));
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ChunksVisitor(std::marker::PhantomData))
    }
}

/// A queue in fixed-size chunks: pushed at the back, dropped from the front, never copied as it
/// grows (the idempotency log: tens of millions of entries, a doubling copy was a 300 ms stall).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDeque<T> {
    chunks: VecDeque<Vec<T>>,
    /// Entries of `chunks[0]` already dropped.
    head: usize,
    len: usize,
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque { chunks: VecDeque::new(), head: 0, len: 0 }
    }
}

impl<T> ChunkedDeque<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries' bytes (see [`crate::footprint`]).
    pub fn bytes(&self) -> u64 {
        (self.len * std::mem::size_of::<T>()) as u64
    }

    pub fn push_back(&mut self, value: T) {
        if self.chunks.back().is_none_or(|last| last.len() == CHUNK_ENTRIES) {
            self.chunks.push_back(Vec::with_capacity(CHUNK_ENTRIES));
        }
        if let Some(last) = self.chunks.back_mut() {
            last.push(value);
        }
        self.len += 1;
    }

    /// The entry `index` places from the front.
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        let at = self.head + index;
        self.chunks.get(at / CHUNK_ENTRIES)?.get(at % CHUNK_ENTRIES)
    }

    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// Drops the front entry. Its memory goes back when its whole chunk has been dropped.
    pub fn drop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK_ENTRIES {
            self.chunks.pop_front();
            self.head = 0;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten().skip(self.head)
    }
}

impl<T: Serialize> Serialize for ChunkedDeque<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<T> Extend<T> for ChunkedDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        values.into_iter().for_each(|value| self.push_back(value));
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ChunkedDeque<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ChunksVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_deque_behaves_like_a_vecdeque_across_chunks() {
        let mut chunked = ChunkedDeque::default();
        let mut model = VecDeque::new();
        // Push three and a half chunks, dropping from the front as we go, then drain.
        for round in 0..(CHUNK_ENTRIES * 7 / 2) {
            chunked.push_back(round as u32);
            model.push_back(round as u32);
            if round % 3 == 0 {
                chunked.drop_front();
                model.pop_front();
            }
        }
        let check = |chunked: &ChunkedDeque<u32>, model: &VecDeque<u32>| {
            assert_eq!(chunked.len(), model.len());
            assert_eq!(chunked.front(), model.front());
            for i in [0, 1, CHUNK_ENTRIES - 1, CHUNK_ENTRIES, model.len().saturating_sub(1), model.len()] {
                assert_eq!(chunked.get(i), model.get(i), "at {i}");
            }
            assert!(chunked.iter().eq(model.iter()));
            let bytes = postcard::to_stdvec(chunked).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(model).unwrap(), "same bytes as a VecDeque");
            let back: ChunkedDeque<u32> = postcard::from_bytes(&bytes).unwrap();
            assert!(back.iter().eq(model.iter()));
        };
        check(&chunked, &model);
        while !model.is_empty() {
            chunked.drop_front();
            model.pop_front();
            if model.len() % 50_000 == 0 {
                check(&chunked, &model);
            }
        }
        check(&chunked, &model);
        chunked.push_back(1);
        model.push_back(1);
        check(&chunked, &model);
    }

    #[test]
    fn behaves_like_a_vec_across_chunks() {
        let mut chunked = Chunked::default();
        let n = CHUNK_ENTRIES * 2 + 7;
        for i in 0..n {
            chunked.push(i as u32);
        }
        assert_eq!(chunked.len(), n);
        assert_eq!(chunked[CHUNK_ENTRIES], CHUNK_ENTRIES as u32);
        assert_eq!(chunked.get(n), None);
        assert_eq!(chunked.iter().len(), n);
        assert_eq!(chunked.iter().next_back(), Some(&(n as u32 - 1)));
        chunked[5] = 99;
        let vec: Vec<u32> = chunked.iter().copied().collect();
        assert_eq!(postcard::to_stdvec(&chunked).unwrap(), postcard::to_stdvec(&vec).unwrap());
        let back: Chunked<u32> = postcard::from_bytes(&postcard::to_stdvec(&vec).unwrap()).unwrap();
        assert_eq!(back, chunked);
    }
}
