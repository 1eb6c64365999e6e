//! The record format. Little-endian, 24-byte header, then the payload:
//!
//! ```text
//! magic u32 | payload_len u32 | seq u64 | batch_first_seq u64 | payload_crc32 u32 | header_crc32 u32 | payload ...
//! ```
//!
//! The header has its own checksum so that a damaged length is never trusted: without it, a
//! flipped bit in a length could make a record in the middle look like a torn tail.
//! `batch_first_seq` names the group commit a record belongs to: recovery uses it to tell damage
//! inside the last, unacknowledged batch (torn) from damage before a later batch (corruption).

pub const RECORD_MAGIC: u32 = 0x3156_4c45; // "ELV1"
pub const RECORD_HEADER_BYTES: usize = 32;
const HEADER_CRC_AT: usize = 28;
/// One command is small; anything this large is corruption or a bug.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 1 << 20;

pub fn encode(buffer: &mut Vec<u8>, seq: u64, batch_first_seq: u64, payload: &[u8]) {
    debug_assert!(payload.len() <= RECORD_PAYLOAD_BYTES_MAX);
    let start = buffer.len();
    buffer.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&seq.to_le_bytes());
    buffer.extend_from_slice(&batch_first_seq.to_le_bytes());
    buffer.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&buffer[start..start + HEADER_CRC_AT]);
    buffer.extend_from_slice(&header_crc.to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// What is found at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Record {
        seq: u64,
        batch_first_seq: u64,
        payload: &'a [u8],
        len: usize,
    },
    /// Fewer bytes than a header or than the header's payload length: a write cut short.
    Truncated,
    /// The header checksum fails.
    BadHeader,
    /// The header is sound but the payload checksum fails; `len` is the whole record's length.
    BadPayload {
        len: usize,
    },
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The header at the start of `bytes`, if it is a sound one: `(seq, batch_first_seq)`.
pub fn sound_header(bytes: &[u8]) -> Option<(u64, u64)> {
    (bytes.len() >= RECORD_HEADER_BYTES
        && u32_at(bytes, 0) == RECORD_MAGIC
        && crc32fast::hash(&bytes[..HEADER_CRC_AT]) == u32_at(bytes, HEADER_CRC_AT))
    .then(|| (u64_at(bytes, 8), u64_at(bytes, 16)))
}

pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Decoded::Truncated;
    }
    if crc32fast::hash(&bytes[..HEADER_CRC_AT]) != u32_at(bytes, HEADER_CRC_AT)
        || u32_at(bytes, 0) != RECORD_MAGIC
    {
        return Decoded::BadHeader;
    }
    let payload_len = u32_at(bytes, 4) as usize;
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Decoded::BadHeader;
    }
    let len = RECORD_HEADER_BYTES + payload_len;
    if bytes.len() < len {
        return Decoded::Truncated;
    }
    let payload = &bytes[RECORD_HEADER_BYTES..len];
    if crc32fast::hash(payload) != u32_at(bytes, 24) {
        return Decoded::BadPayload { len };
    }
    Decoded::Record { seq: u64_at(bytes, 8), batch_first_seq: u64_at(bytes, 16), payload, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buffer = Vec::new();
        encode(&mut buffer, 7, 5, b"hello");
        assert_eq!(
            decode(&buffer),
            Decoded::Record { seq: 7, batch_first_seq: 5, payload: b"hello", len: 37 }
        );
        assert_eq!(sound_header(&buffer), Some((7, 5)));
        assert_eq!(decode(&buffer[..36]), Decoded::Truncated);
        assert_eq!(decode(&buffer[..10]), Decoded::Truncated);
        let mut flipped = buffer.clone();
        flipped[34] ^= 1;
        assert_eq!(decode(&flipped), Decoded::BadPayload { len: 37 });
        let mut flipped = buffer.clone();
        flipped[5] ^= 1; // the length
        assert_eq!(decode(&flipped), Decoded::BadHeader);
    }
}
