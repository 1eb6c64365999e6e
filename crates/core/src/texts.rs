//! The SKUs' titles and descriptions, back to back in creation order, in chunks of 1 MiB.
//!
//! A catalogue holds millions of SKUs and their texts are rarely edited (an edit appends the new
//! texts and the SKU points at them; what is stored never moves or changes): a SKU keeps where its texts
//! start and their lengths (8 bytes) instead of two boxed `str`s (32 bytes, and an allocation
//! each rounded up to the allocator's size class). Chunks of a fixed size, never grown past it,
//! so no text moves and the arena never doubles and copies on the sequencer; a text never
//! straddles two chunks (the few bytes left at a chunk's end stay unused).

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{DESCRIPTION_BYTES_MAX, NAME_BYTES_MAX};
use crate::types::U40;

const CHUNK_SHIFT: u32 = 20;
/// The bytes of one chunk.
pub(crate) const TEXT_CHUNK_BYTES: usize = 1 << CHUNK_SHIFT;

// A SKU's texts fit in one chunk.
const _: () = assert!(NAME_BYTES_MAX + DESCRIPTION_BYTES_MAX <= TEXT_CHUNK_BYTES);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TextArena {
    chunks: Vec<Vec<u8>>,
}

impl TextArena {
    /// The texts' bytes, as written (a chunk's unused tail is not counted).
    pub(crate) fn bytes(&self) -> u64 {
        self.chunks.iter().map(|chunk| chunk.len() as u64).sum()
    }

    /// Appends `parts` back to back and returns where the first begins. Together they are at
    /// most [`TEXT_CHUNK_BYTES`] (the caller checked the texts' bounds).
    pub(crate) fn push(&mut self, parts: &[&str]) -> u64 {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(len <= TEXT_CHUNK_BYTES);
        if self.chunks.last().is_none_or(|c| c.len() + len > TEXT_CHUNK_BYTES) {
            self.chunks.push(Vec::with_capacity(TEXT_CHUNK_BYTES));
        }
        let chunk = self.chunks.len() - 1;
        let Some(last) = self.chunks.last_mut() else { return 0 };
        let at = ((chunk as u64) << CHUNK_SHIFT) | last.len() as u64;
        for part in parts {
            last.extend_from_slice(part.as_bytes());
        }
        at
    }

    /// Whether a push's position is sure to fit in [`U40`] (below 2^40: a TiB of texts): the
    /// next chunk's index, shifted, is below it.
    pub(crate) fn has_room(&self) -> bool {
        ((self.chunks.len() as u64 + 1) << CHUNK_SHIFT) <= U40::MAX + 1
    }

    /// The `len` bytes at `at`, as pushed ("" if they are not there: never for a position
    /// [`TextArena::push`] returned).
    pub(crate) fn get(&self, at: u64, len: usize) -> &str {
        let (chunk, start) = ((at >> CHUNK_SHIFT) as usize, (at & (TEXT_CHUNK_BYTES as u64 - 1)) as usize);
        let bytes = self.chunks.get(chunk).and_then(|c| c.get(start..start + len));
        bytes.and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
    }
}

/// The chunks as byte strings (one length and the raw bytes each, not a sequence of `u8`s).
impl Serialize for TextArena {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.chunks.len()))?;
        for chunk in &self.chunks {
            seq.serialize_element(&Bytes(chunk))?;
        }
        seq.end()
    }
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for TextArena {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TextArena, D::Error> {
        struct Chunks;
        impl<'de> Visitor<'de> for Chunks {
            type Value = TextArena;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("chunks of text")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextArena, A::Error> {
                let mut chunks = Vec::new();
                while let Some(ByteBuf(chunk)) = seq.next_element()? {
                    if chunk.len() > TEXT_CHUNK_BYTES {
                        return Err(serde::de::Error::custom("a text chunk over its size"));
                    }
                    chunks.push(chunk);
                }
                // The last chunk goes on filling: give it its full size, as `push` would have.
                if let Some(last) = chunks.last_mut() {
                    last.reserve_exact(TEXT_CHUNK_BYTES - last.len());
                }
                Ok(TextArena { chunks })
            }
        }
        deserializer.deserialize_seq(Chunks)
    }
}

struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteBuf, D::Error> {
        struct Buf;
        impl<'de> Visitor<'de> for Buf {
            type Value = ByteBuf;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        deserializer.deserialize_byte_buf(Buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_back_as_pushed_across_chunks_and_a_round_trip() {
        let mut arena = TextArena::default();
        let title = "red kettle 42";
        let description = "x".repeat(DESCRIPTION_BYTES_MAX);
        let mut placed = Vec::new();
        // Enough to fill a few chunks, so texts land at chunk ends and starts.
        for i in 0..700 {
            let t = format!("{title} {i}");
            let at = arena.push(&[&t, &description]);
            placed.push((at, t));
        }
        assert!(arena.chunks.len() > 2);
        assert!(arena.chunks.iter().all(|c| c.len() <= TEXT_CHUNK_BYTES));
        let bytes = postcard::to_allocvec(&arena).unwrap();
        let decoded: TextArena = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, arena);
        for a in [&arena, &decoded] {
            for (at, t) in &placed {
                assert_eq!(a.get(*at, t.len()), t);
                assert_eq!(a.get(at + t.len() as u64, description.len()), description);
            }
        }
        assert_eq!(arena.get(u64::MAX, 3), "");
    }

    /// Positions stay below 2^40 (a SKU keeps them in five bytes): room while the next chunk's
    /// texts start below it, none after.
    #[test]
    fn the_arena_is_full_before_a_position_outgrows_five_bytes() {
        let last_chunk = (U40::MAX >> CHUNK_SHIFT) as usize;
        let mut arena = TextArena { chunks: vec![Vec::new(); last_chunk] };
        assert!(arena.has_room());
        arena.chunks.push(vec![0; TEXT_CHUNK_BYTES]);
        assert!(!arena.has_room());
        // The room left: the texts of chunk `last_chunk` start below 2^40.
        arena.chunks.pop();
        arena.chunks.last_mut().unwrap().resize(TEXT_CHUNK_BYTES, 0);
        let at = arena.push(&["t", "d"]);
        assert!(at <= U40::MAX && at >> CHUNK_SHIFT == last_chunk as u64);
    }
}
