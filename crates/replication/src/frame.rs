//! A frame: one group commit as one stream message, with elevens' own checks.
//!
//! JetStream has open faults on a minority of its nodes (bit errors, corrupt snapshots:
//! nats-server #7549, #7556), so what the stream hands back is never trusted as it is. Every
//! frame carries a BLAKE3 hash over its header and body, chained to the frame before it: a flipped
//! bit, a cut message, a frame lost, repeated or reordered, or one appended by something that is
//! not the leader all fail the check, and a follower refuses them rather than apply them.
//!
//! ```text
//! magic u32 | count u32 | term u64 | first_seq u64 | body_len u32 | reserved u32 |
//! prev [u8; 32] | hash [u8; 32] | body: count × (len u32 | postcard envelope)
//! hash = BLAKE3(prev | the header's first 32 bytes | body)
//! ```
//!
//! `first_seq` is the journal sequence of the frame's first command, so a follower knows the
//! state each frame leads to; a frame of no commands (`count` 0) is a new leader's fence.

pub type Hash = [u8; 32];

pub const FRAME_MAGIC: u32 = 0x3152_4c45; // "ELR1"
pub const FRAME_HEADER_BYTES: usize = 96;
/// The largest frame a leader writes, in bytes: well under the NATS server's default
/// `max_payload` (1 MiB), which is also what a follower's read costs at most.
pub const FRAME_BYTES_MAX: usize = 512 << 10;

/// Where a chain stands after a frame: the frame's stream sequence, the last command applied,
/// and the frame's hash (the next frame's `prev`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub stream_seq: u64,
    pub applied: u64,
    pub head: Hash,
}

pub const POSITION_BYTES: usize = 48;

impl Position {
    pub fn to_bytes(&self) -> [u8; POSITION_BYTES] {
        let mut out = [0; POSITION_BYTES];
        out[..8].copy_from_slice(&self.stream_seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.applied.to_le_bytes());
        out[16..].copy_from_slice(&self.head);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Position> {
        let bytes: &[u8; POSITION_BYTES] = bytes.try_into().ok()?;
        Some(Position { stream_seq: u64_at(bytes, 0), applied: u64_at(bytes, 8), head: hash_at(bytes, 16) })
    }
}

/// A frame read back whole: its hash checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub term: u64,
    pub first_seq: u64,
    pub count: u32,
    pub prev: Hash,
    pub hash: Hash,
    body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The frame's commands, each an encoded envelope, in order.
    pub fn commands(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.body;
        std::iter::from_fn(move || {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let command = rest.get(4..4 + len)?;
            rest = &rest[4 + len..];
            Some(command)
        })
    }
}

/// Why a message is not a frame of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("damaged: {0}")]
    Damaged(&'static str),
    /// A sound frame that does not follow the last one: not of this chain (appended by a
    /// process that was not the leader), or the frame before it was lost or damaged.
    #[error("does not follow the chain's last frame")]
    OffChain,
    /// A frame that follows the last one but starts at the wrong command: a leader's fault.
    #[error("starts at command {got}, the chain is at {expected}")]
    Gap { expected: u64, got: u64 },
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

fn hash_at(bytes: &[u8], at: usize) -> Hash {
    bytes[at..at + 32].try_into().unwrap_or_default()
}

fn hash_of(prev: &Hash, head: &[u8], body: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev).update(head).update(body);
    *hasher.finalize().as_bytes()
}

/// A frame ready to publish.
#[derive(Debug)]
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub hash: Hash,
    pub count: u32,
}

/// Builds frames of encoded commands, each under [`FRAME_BYTES_MAX`] (a command alone larger
/// than that makes a frame of its own).
pub struct Encoder {
    term: u64,
    next_seq: u64,
    head: Hash,
    bytes: Vec<u8>,
    count: u32,
    first_seq: u64,
}

impl Encoder {
    /// Frames that follow the chain at `position`, written in `term`.
    pub fn new(term: u64, position: &Position) -> Encoder {
        Encoder {
            term,
            next_seq: position.applied + 1,
            head: position.head,
            bytes: Vec::new(),
            count: 0,
            first_seq: position.applied + 1,
        }
    }

    fn start(&mut self) {
        self.bytes.clear();
        self.bytes.resize(FRAME_HEADER_BYTES, 0);
        self.count = 0;
        self.first_seq = self.next_seq;
    }

    /// Frames of the commands, in order (none for no command, unless `fence`: then one frame
    /// of no commands, a new leader's first).
    pub fn frames<'a>(&mut self, commands: impl Iterator<Item = &'a [u8]>, fence: bool) -> Vec<Sealed> {
        let mut out = Vec::new();
        self.start();
        for command in commands {
            if self.count > 0 && self.bytes.len() + 4 + command.len() > FRAME_BYTES_MAX {
                out.push(self.seal());
                self.start();
            }
            self.bytes.extend_from_slice(&(command.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(command);
            self.count += 1;
            self.next_seq += 1;
        }
        if self.count > 0 || fence {
            out.push(self.seal());
        }
        out
    }

    fn seal(&mut self) -> Sealed {
        let body_len = (self.bytes.len() - FRAME_HEADER_BYTES) as u32;
        let b = &mut self.bytes;
        b[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.count.to_le_bytes());
        b[8..16].copy_from_slice(&self.term.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..28].copy_from_slice(&body_len.to_le_bytes());
        b[28..32].copy_from_slice(&0u32.to_le_bytes());
        b[32..64].copy_from_slice(&self.head);
        let hash = hash_of(&self.head, &b[..32], &b[FRAME_HEADER_BYTES..]);
        b[64..96].copy_from_slice(&hash);
        self.head = hash;
        Sealed { bytes: std::mem::take(&mut self.bytes), hash, count: self.count }
    }
}

/// Reads a frame and checks its hash (not yet its place in a chain: [`Chain::accept`]).
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, Refused> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(Refused::Damaged("shorter than a frame's header"));
    }
    if u32_at(bytes, 0) != FRAME_MAGIC {
        return Err(Refused::Damaged("not a frame (bad magic)"));
    }
    let body = &bytes[FRAME_HEADER_BYTES..];
    if u32_at(bytes, 24) as usize != body.len() {
        return Err(Refused::Damaged("the body is not the length its header says (cut or padded)"));
    }
    let prev = hash_at(bytes, 32);
    let hash = hash_at(bytes, 64);
    if hash_of(&prev, &bytes[..32], body) != hash {
        return Err(Refused::Damaged("the hash does not match the bytes"));
    }
    let frame = Frame {
        term: u64_at(bytes, 8),
        first_seq: u64_at(bytes, 16),
        count: u32_at(bytes, 4),
        prev,
        hash,
        body,
    };
    if frame.commands().count() != frame.count as usize {
        return Err(Refused::Damaged("the body does not hold the commands its header counts"));
    }
    Ok(frame)
}

/// A follower's place in the chain: what it has applied and the hash it expects next.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    pub position: Position,
    /// The highest term seen in the chain.
    pub term: u64,
}

impl Chain {
    pub fn at(position: Position) -> Chain {
        Chain { position, term: 0 }
    }

    /// Checks the message at `stream_seq` and, if it is the next frame of the chain, moves the
    /// chain past it. Nothing moves on a refusal.
    pub fn accept<'a>(&mut self, stream_seq: u64, bytes: &'a [u8]) -> Result<Frame<'a>, Refused> {
        let frame = decode(bytes)?;
        if frame.prev != self.position.head {
            return Err(Refused::OffChain);
        }
        let expected = self.position.applied + 1;
        if frame.first_seq != expected {
            return Err(Refused::Gap { expected, got: frame.first_seq });
        }
        self.position =
            Position { stream_seq, applied: self.position.applied + frame.count as u64, head: frame.hash };
        self.term = self.term.max(frame.term);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn commands(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; len + i % 7]).collect()
    }

    #[test]
    fn frames_chain_and_split_under_the_size_bound() {
        let commands = commands(3_000, 300);
        let mut encoder = Encoder::new(7, &Position::default());
        let frames = encoder.frames(commands.iter().map(|c| c.as_slice()), false);
        assert!(frames.len() > 1, "1 MB of commands is more than one frame");
        let mut chain = Chain::default();
        let mut seen = Vec::new();
        for (i, sealed) in frames.iter().enumerate() {
            assert!(sealed.bytes.len() <= FRAME_BYTES_MAX);
            let frame = chain.accept(i as u64 + 1, &sealed.bytes).unwrap();
            assert_eq!((frame.hash, frame.count), (sealed.hash, sealed.count));
            seen.extend(frame.commands().map(|c| c.to_vec()));
        }
        assert_eq!(seen, commands);
        assert_eq!(chain.position.applied, 3_000);
        assert_eq!(chain.position.stream_seq, frames.len() as u64);
        assert_eq!(chain.term, 7);
        // A fence carries no command and moves only the hash and the stream position.
        let fence = Encoder::new(8, &chain.position).frames(std::iter::empty(), true);
        let before = chain.position;
        let frame = chain.accept(before.stream_seq + 1, &fence[0].bytes).unwrap();
        assert_eq!((frame.count, chain.position.applied, chain.term), (0, before.applied, 8));
        assert_eq!(Position::from_bytes(&chain.position.to_bytes()), Some(chain.position));
    }

    #[test]
    fn a_repeated_lost_or_foreign_frame_is_refused_and_moves_nothing() {
        let commands = commands(10, 10);
        let mut encoder = Encoder::new(1, &Position::default());
        let a = encoder.frames(commands[..5].iter().map(|c| c.as_slice()), false).remove(0).bytes;
        let b = encoder.frames(commands[5..].iter().map(|c| c.as_slice()), false).remove(0).bytes;
        let mut chain = Chain::default();
        assert_eq!(chain.accept(1, &b).unwrap_err(), Refused::OffChain, "lost: a is missing");
        chain.accept(1, &a).unwrap();
        let at = chain.position;
        assert_eq!(chain.accept(2, &a).unwrap_err(), Refused::OffChain, "repeated");
        // A process that is not the leader writes from the same place: sound, but not next.
        let foreign = Encoder::new(1, &Position::default()).frames(std::iter::once(&b"x"[..]), false);
        assert_eq!(chain.accept(2, &foreign[0].bytes).unwrap_err(), Refused::OffChain);
        assert_eq!(chain.position, at);
        chain.accept(3, &b).unwrap();
        assert_eq!(chain.position.applied, 10);
        // A leader that skipped commands is caught even though its hashes chain.
        let skipping = Position { applied: 12, ..chain.position };
        let gap = Encoder::new(1, &skipping).frames(std::iter::once(&b"y"[..]), false);
        assert_eq!(chain.accept(4, &gap[0].bytes).unwrap_err(), Refused::Gap { expected: 11, got: 13 });
    }

    proptest! {
        /// Every flipped bit and every cut is caught: no damaged frame is ever accepted.
        #[test]
        fn every_flipped_bit_and_cut_is_refused(n in 0usize..20, len in 0usize..50, bit in any::<usize>(), cut in any::<usize>()) {
            let commands = commands(n, len);
            let bytes = Encoder::new(3, &Position::default())
                .frames(commands.iter().map(|c| c.as_slice()), true)
                .remove(0)
                .bytes;
            let mut flipped = bytes.clone();
            let at = bit % (bytes.len() * 8);
            flipped[at / 8] ^= 1 << (at % 8);
            prop_assert!(Chain::default().accept(1, &flipped).is_err());
            let cut = cut % bytes.len();
            prop_assert!(Chain::default().accept(1, &bytes[..cut]).is_err());
            prop_assert!(Chain::default().accept(1, &bytes).is_ok());
        }
    }
}
