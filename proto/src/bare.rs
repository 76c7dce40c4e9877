//! BARE primitives and vbare framing, as used by RivetKit's `bare` encoding.
//!
//! Only the types the client protocol needs: `uint` (LEB128 varint), `u64` (8 bytes little-endian), `bool`
//! (one byte, 0 or 1), `str` and `data` (a `uint` length followed by the bytes), `optional` (a one-byte 0/1 flag
//! followed by the value when 1) and union tags (a `uint`). vbare prefixes a BARE body with the schema version as
//! a 2-byte little-endian integer.
//!
//! The [`Reader`] never panics and never allocates based on a length read from its input: every malformed input
//! (truncated, non-canonical varint, length beyond the end, invalid UTF-8, flag other than 0/1, trailing bytes)
//! is a [`DecodeError`].

/// The protocol version Tern writes (RivetKit client protocol v4).
pub const CURRENT_VERSION: u16 = 4;

/// A malformed BARE payload: what was wrong and at which byte offset of the reader's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct DecodeError {
    /// Offset into the reader's input where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Splits a vbare payload into its version and BARE body. Fails only when the payload is shorter than the
/// 2-byte prefix; checking that the version is supported is the caller's job.
pub fn split_version(payload: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    match payload {
        [lo, hi, body @ ..] => Ok((u16::from_le_bytes([*lo, *hi]), body)),
        _ => Err(DecodeError { offset: payload.len(), reason: "payload too short for the version prefix" }),
    }
}

/// Appends BARE values to a buffer. Writing cannot fail.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with the vbare prefix for `version`.
    pub fn versioned(version: u16) -> Self {
        Self { buf: version.to_le_bytes().to_vec() }
    }

    /// Writes a `uint` (canonical LEB128, 1 to 10 bytes).
    pub fn uint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// Writes a `u64` (8 bytes, little-endian).
    pub fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes a `bool` (one byte, 0 or 1).
    pub fn bool(&mut self, value: bool) {
        self.buf.push(u8::from(value));
    }

    /// Writes a `data` (length-prefixed bytes).
    pub fn data(&mut self, bytes: &[u8]) {
        self.uint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a `str` (length-prefixed UTF-8).
    pub fn str(&mut self, text: &str) {
        self.data(text.as_bytes());
    }

    /// Writes an `optional<T>`: the presence flag, then the value via `write` when present.
    pub fn optional<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        self.bool(value.is_some());
        if let Some(value) = value {
            write(self, value);
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads BARE values from a byte slice, front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `input` (a BARE body, without the vbare prefix).
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, reason }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.input.get(self.pos).ok_or_else(|| self.error("unexpected end of input"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| self.error("length runs past the end of input"))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Reads a `uint`. Rejects encodings longer than needed and values above `u64::MAX`.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for index in 0..10 {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if index == 9 && byte > 1 {
                self.pos = start;
                return Err(self.error("uint larger than 64 bits"));
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                if byte == 0 && index > 0 {
                    self.pos = start;
                    return Err(self.error("non-canonical uint"));
                }
                return Ok(value);
            }
        }
        self.pos = start;
        Err(self.error("uint larger than 64 bits"))
    }

    /// Reads a `u64` (8 bytes, little-endian).
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// Reads a `bool`; any byte other than 0 or 1 is an error.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.pos -= 1;
                Err(self.error("bool is neither 0 nor 1"))
            }
        }
    }

    /// Reads a `data`, borrowing the bytes from the input.
    pub fn data(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let len = self.uint()?;
        let len = usize::try_from(len).map_err(|_| self.error("length runs past the end of input"))?;
        self.take(len).inspect_err(|_| self.pos = start)
    }

    /// Reads a `str`, borrowing it from the input; invalid UTF-8 is an error.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.data()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError { offset: start, reason: "invalid UTF-8 in str" })
    }

    /// Reads an `optional<T>`: the presence flag, then the value via `read` when present.
    pub fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.bool()? { read(self).map(Some) } else { Ok(None) }
    }

    /// Checks that the whole input was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.pos == self.input.len() { Ok(()) } else { Err(self.error("trailing bytes after the message")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint_bytes(value: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.uint(value);
        w.into_bytes()
    }

    #[test]
    fn uint_round_trips_at_every_width() {
        let mut value = 1u64;
        let mut cases = vec![0, u64::MAX, 127, 128, 300];
        while value != 0 {
            cases.extend([value - 1, value, value + 1]);
            value = value.wrapping_shl(7);
        }
        for value in cases {
            let bytes = uint_bytes(value);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.uint(), Ok(value), "{value}");
            r.finish().unwrap();
        }
        assert_eq!(uint_bytes(300), [0xac, 0x02]);
        assert_eq!(uint_bytes(u64::MAX).len(), 10);
    }

    #[test]
    fn uint_rejects_bad_encodings() {
        for bad in [
            &[0x80u8, 0x00][..],
            &[0xff; 10],
            &[0xff; 11],
            &[0x80],
            &[],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            assert!(Reader::new(bad).uint().is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::versioned(CURRENT_VERSION);
        w.u64(5000);
        w.bool(true);
        w.str("jobs");
        w.data(&[1, 2, 3]);
        w.optional(Some("x"), |w, s| w.str(s));
        w.optional(None::<u64>, |w, v| w.u64(v));
        let bytes = w.into_bytes();
        let (version, body) = split_version(&bytes).unwrap();
        assert_eq!(version, 4);
        let mut r = Reader::new(body);
        assert_eq!(r.u64(), Ok(5000));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.str(), Ok("jobs"));
        assert_eq!(r.data(), Ok(&[1u8, 2, 3][..]));
        assert_eq!(r.optional(|r| r.str()), Ok(Some("x")));
        assert_eq!(r.optional(|r| r.u64()), Ok(None));
        r.finish().unwrap();
    }

    #[test]
    fn hostile_inputs_are_errors() {
        assert!(split_version(&[4]).is_err());
        assert!(split_version(&[]).is_err());
        // A length prefix of u64::MAX with nothing behind it.
        let mut huge = vec![0xff; 9];
        huge.push(0x01);
        assert!(Reader::new(&huge).data().is_err());
        assert!(Reader::new(&[0x05, b'a']).str().is_err());
        assert!(Reader::new(&[0x02, 0xc3, 0x28]).str().is_err());
        assert!(Reader::new(&[0x02]).bool().is_err());
        assert!(Reader::new(&[0x02]).optional(|r| r.bool()).is_err());
        assert!(Reader::new(&[1, 2, 3]).u64().is_err());
        let mut r = Reader::new(&[1, 0]);
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.finish(), Err(DecodeError { offset: 1, reason: "trailing bytes after the message" }));
    }
}
