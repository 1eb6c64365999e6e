//! A growable table that never moves what it holds: fixed-size chunks, so growing it is one
//! fresh allocation, never a doubling copy of everything (which, for tens of millions of orders,
//! stalls the sequencer and faults every page in twice). Serialized as a plain sequence, the same
//! bytes as a `Vec`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + Clone {
        ChunkedIter { inner: self.chunks.iter().flatten(), left: self.len }
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

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let all = Vec::<T>::deserialize(deserializer)?;
        let mut chunked = Chunked::default();
        for value in all {
            chunked.push(value);
        }
        Ok(chunked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
