//! Whole transactions of WAL frames, as shipped from a home to its replicas, and their checked wire encoding.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::WalError;
use super::position::Position;

/// Bytes of a WAL frame's header before its page.
pub const FRAME_HEADER: usize = 24;

/// A batch larger than this is refused (a single transaction may be this large: a VACUUM rewrites every page).
pub const MAX_BATCH_BYTES: usize = 1 << 30;

const MAGIC: &[u8; 4] = b"TWB1";
const HEADER: usize = 4 + 8 + 4 + 8 + 4 + 4 + 4;

/// One WAL frame: the 24-byte header SQLite wrote (page number, database size after a commit, the home's salts
/// and checksums) and the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// A frame from its raw bytes (header and page).
    pub fn new(bytes: Bytes) -> Frame {
        Frame(bytes)
    }

    /// The raw bytes, as `libsql_wal_insert_frame` takes them.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The page this frame holds (1-based).
    pub fn page_no(&self) -> u32 {
        u32::from_be_bytes(self.0[0..4].try_into().expect("a frame has a header"))
    }

    /// Whether this frame commits a transaction (its header records the database size after the commit).
    pub fn is_commit(&self) -> bool {
        self.0[4..8] != [0, 0, 0, 0]
    }
}

/// Frames that follow a position: whole transactions (the last frame commits), numbered from `first_frame()`
/// within `generation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The position the batch continues from. For the first batch of a generation this is where the previous
    /// generation ended, and the replica must be exactly there.
    pub after: Position,
    /// The generation the frames belong to: `after.generation`, or the next one.
    pub generation: u64,
    /// The database's page size.
    pub page_size: u32,
    /// The frames, in order.
    pub frames: Vec<Frame>,
}

impl Batch {
    /// How many frames of its generation come before the batch: those of the position it follows, or none when it
    /// starts the next generation.
    fn frames_before(&self) -> u32 {
        if self.generation == self.after.generation { self.after.frame } else { 0 }
    }

    /// The number of the batch's last frame; `None` when its frames would be numbered past `u32::MAX`.
    fn last_frame(&self) -> Option<u32> {
        u32::try_from(self.frames.len()).ok().and_then(|count| self.frames_before().checked_add(count))
    }

    /// The number of the batch's first frame in its generation.
    ///
    /// # Panics
    ///
    /// If that number is past `u32::MAX` ([`Batch::validate`] refuses such a batch).
    pub fn first_frame(&self) -> u32 {
        self.frames_before().checked_add(1).expect("a batch's frames are numbered within u32")
    }

    /// The position once the batch is applied.
    ///
    /// # Panics
    ///
    /// If the batch's frames are numbered past `u32::MAX` ([`Batch::validate`] refuses such a batch).
    pub fn end(&self) -> Position {
        Position::new(self.generation, self.last_frame().expect("a batch's frames are numbered within u32"))
    }

    /// The number of bytes of the pages (and frame headers) the batch carries.
    pub fn payload_bytes(&self) -> usize {
        self.frames.iter().map(|frame| frame.0.len()).sum()
    }

    /// Checks the batch's shape: a generation that is the same or the next, frames numbered within `u32`, frames
    /// of the page size, and a commit frame last.
    pub fn validate(&self) -> Result<(), WalError> {
        if self.generation != self.after.generation && Some(self.generation) != self.after.generation.checked_add(1) {
            return Err(WalError::Corrupt(format!(
                "a batch of generation {} cannot follow {}",
                self.generation, self.after
            )));
        }
        if self.last_frame().is_none() {
            return Err(WalError::Corrupt(format!(
                "{} frames after {} are numbered past the last frame number",
                self.frames.len(),
                self.after
            )));
        }
        if !self.page_size.is_power_of_two() || !(512..=65536).contains(&self.page_size) {
            return Err(WalError::Corrupt(format!("page size {} is not a SQLite page size", self.page_size)));
        }
        let frame_len = FRAME_HEADER + self.page_size as usize;
        if let Some(frame) = self.frames.iter().find(|frame| frame.0.len() != frame_len) {
            return Err(WalError::Corrupt(format!("a frame of {} bytes, expected {frame_len}", frame.0.len())));
        }
        match self.frames.last() {
            None => Err(WalError::Corrupt("an empty batch".into())),
            Some(last) if !last.is_commit() => Err(WalError::Corrupt("the batch ends inside a transaction".into())),
            Some(_) => Ok(()),
        }
    }

    /// The wire form: a header with its CRC-32, then each frame followed by its CRC-32.
    pub fn encode(&self) -> Bytes {
        let mut out =
            BytesMut::with_capacity(HEADER + self.frames.len() * (FRAME_HEADER + self.page_size as usize + 4));
        out.put_slice(MAGIC);
        out.put_u64(self.after.generation);
        out.put_u32(self.after.frame);
        out.put_u64(self.generation);
        out.put_u32(self.page_size);
        out.put_u32(self.frames.len() as u32);
        let crc = crc32fast::hash(&out);
        out.put_u32(crc);
        for frame in &self.frames {
            out.put_slice(&frame.0);
            out.put_u32(crc32fast::hash(&frame.0));
        }
        out.freeze()
    }

    /// Decodes and checks a batch; anything truncated, oversized, mis-shaped or failing a checksum is refused whole
    /// with [`WalError::Corrupt`].
    pub fn decode(mut wire: Bytes) -> Result<Batch, WalError> {
        if wire.len() > MAX_BATCH_BYTES {
            return Err(WalError::Corrupt(format!("a batch of {} bytes is over the limit", wire.len())));
        }
        if wire.len() < HEADER {
            return Err(WalError::Corrupt(format!("a batch of {} bytes is shorter than its header", wire.len())));
        }
        if &wire[..4] != MAGIC {
            return Err(WalError::Corrupt("not a batch (bad magic)".into()));
        }
        let crc = crc32fast::hash(&wire[..HEADER - 4]);
        if crc != u32::from_be_bytes(wire[HEADER - 4..HEADER].try_into().expect("four bytes")) {
            return Err(WalError::Corrupt("the batch header fails its checksum".into()));
        }
        wire.advance(4);
        let after = Position::new(wire.get_u64(), wire.get_u32());
        let generation = wire.get_u64();
        let page_size = wire.get_u32();
        let count = wire.get_u32() as usize;
        wire.advance(4);
        if !(512..=65536).contains(&page_size) {
            return Err(WalError::Corrupt(format!("page size {page_size} is not a SQLite page size")));
        }
        let frame_len = FRAME_HEADER + page_size as usize;
        if wire.len() != count * (frame_len + 4) {
            return Err(WalError::Corrupt(format!(
                "{} bytes of frames, expected {count} frames of {frame_len} bytes",
                wire.len()
            )));
        }
        let mut frames = Vec::with_capacity(count);
        for index in 0..count {
            let frame = wire.split_to(frame_len);
            if crc32fast::hash(&frame) != wire.get_u32() {
                return Err(WalError::Corrupt(format!("frame {index} of the batch fails its checksum")));
            }
            frames.push(Frame(frame));
        }
        let batch = Batch { after, generation, page_size, frames };
        batch.validate()?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of one commit frame of a 512-byte page.
    fn batch(after: Position, generation: u64) -> Batch {
        let mut frame = vec![0u8; FRAME_HEADER + 512];
        frame[..8].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        Batch { after, generation, page_size: 512, frames: vec![Frame::new(Bytes::from(frame))] }
    }

    /// Found by the `wal_batch` fuzz target: `validate` added one to the last generation (an overflow panic in debug
    /// builds, a batch of generation 0 accepted after it in release ones), and a batch after the last frame number
    /// decoded, then panicked in `end`.
    #[test]
    fn batches_numbered_past_the_last_generation_or_frame_are_refused_as_corrupt() {
        for (after, generation) in
            [(Position::new(u64::MAX, 7), 0), (Position::new(u64::MAX, 7), 1), (Position::new(5, u32::MAX), 5)]
        {
            let wire = batch(after, generation).encode();
            match Batch::decode(wire) {
                Err(WalError::Corrupt(message)) => println!("after {after}, generation {generation}: {message}"),
                other => panic!("after {after}, generation {generation}: expected Corrupt, got {other:?}"),
            }
        }
        // The last numbers themselves are fine.
        let last = Batch::decode(batch(Position::new(u64::MAX, u32::MAX - 1), u64::MAX).encode()).unwrap();
        assert_eq!(last.end(), Position::new(u64::MAX, u32::MAX));
        let next = Batch::decode(batch(Position::new(u64::MAX - 1, u32::MAX), u64::MAX).encode()).unwrap();
        assert_eq!((next.first_frame(), next.end()), (1, Position::new(u64::MAX, 1)));
    }
}
