//! The wire format: a bounded, never-panicking byte [`Reader`] and the [`Encode`] / [`Decode`]
//! traits that every message between the parties implements.
//!
//! Integers are little-endian and fixed width. A decoder checks every length and count against
//! a maximum derived from the parameters (its [`Decode::Context`]) before allocating, checks
//! every coefficient against its modulus, and [`decode_exact`] rejects trailing bytes. Encoding
//! is infallible.

/// Why bytes from the other party were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before the value did.
    #[error("truncated input: needed {needed} more bytes, {remaining} remain")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// Bytes were left after the value.
    #[error("{count} trailing bytes after a complete value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A length or count exceeds what the parameters allow.
    #[error("{what}: length {found} exceeds the maximum {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The announced length.
        found: u64,
        /// The largest acceptable length.
        max: u64,
    },
    /// A length or count differs from the one the parameters fix.
    #[error("{what}: expected length {expected}, found {found}")]
    LengthMismatch {
        /// The field.
        what: &'static str,
        /// The length the parameters fix.
        expected: u64,
        /// The announced length.
        found: u64,
    },
    /// A value lies outside its range (a coefficient not below its modulus, an unknown tag).
    #[error("{what}: value {found} is out of range (expected below {bound})")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value found.
        found: u64,
        /// The exclusive upper bound.
        bound: u64,
    },
    /// A structurally invalid value (a point that does not decompress, a bad magic).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A cursor over received bytes. Every read checks the remaining length first and never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer remain.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if len > self.bytes.len() {
            return Err(WireError::Truncated {
                needed: len,
                remaining: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian `u16`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian `u32`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian `u128`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u128(&mut self) -> Result<u128, WireError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A `u64` length prefix, checked to be at most `max` before anything is allocated.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::TooLong`].
    pub fn len_at_most(&mut self, what: &'static str, max: usize) -> Result<usize, WireError> {
        let len = self.u64()?;
        if len > max as u64 {
            return Err(WireError::TooLong {
                what,
                found: len,
                max: max as u64,
            });
        }
        Ok(len as usize)
    }

    /// `count` little-endian words of `bytes_per_word` bytes (1..=8), each checked `< bound`,
    /// appended to `out`. The input length is checked before `out` grows.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::OutOfRange`].
    ///
    /// # Panics
    /// If `bytes_per_word` is not in `1..=8` (a caller bug, not an input property).
    pub fn words_below(
        &mut self,
        what: &'static str,
        count: usize,
        bytes_per_word: usize,
        bound: u64,
        out: &mut Vec<u64>,
    ) -> Result<(), WireError> {
        assert!(
            (1..=8).contains(&bytes_per_word),
            "word width must be 1..=8 bytes"
        );
        let total = count
            .checked_mul(bytes_per_word)
            .ok_or(WireError::TooLong {
                what,
                found: count as u64,
                max: (usize::MAX / bytes_per_word) as u64,
            })?;
        let raw = self.take(total)?;
        out.reserve(count);
        for chunk in raw.chunks_exact(bytes_per_word) {
            let mut word = [0u8; 8];
            word[..bytes_per_word].copy_from_slice(chunk);
            let value = u64::from_le_bytes(word);
            if value >= bound {
                return Err(WireError::OutOfRange {
                    what,
                    found: value,
                    bound,
                });
            }
            out.push(value);
        }
        Ok(())
    }

    /// Succeeds only if every byte was read.
    ///
    /// # Errors
    /// [`WireError::TrailingBytes`].
    pub fn finish(self) -> Result<(), WireError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                count: self.bytes.len(),
            })
        }
    }
}

/// Appends `count` words of `bytes_per_word` little-endian bytes each (the inverse of
/// [`Reader::words_below`]).
pub fn put_words(out: &mut Vec<u8>, words: &[u64], bytes_per_word: usize) {
    out.reserve(words.len() * bytes_per_word);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes()[..bytes_per_word]);
    }
}

/// A value that can be written to the wire.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The encoding of `self` as a fresh vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A value that can be read from the wire, given the public context (parameters) that bounds it.
pub trait Decode: Sized {
    /// What the decoder must know to validate sizes and ranges (the parameter set, `()` if none).
    type Context;

    /// Reads one value from `reader`.
    ///
    /// # Errors
    /// A [`WireError`] for any malformed input; never panics.
    fn decode(reader: &mut Reader<'_>, ctx: &Self::Context) -> Result<Self, WireError>;
}

/// Decodes exactly one value that fills all of `bytes`.
///
/// # Errors
/// A [`WireError`] for malformed input or trailing bytes.
pub fn decode_exact<T: Decode>(bytes: &[u8], ctx: &T::Context) -> Result<T, WireError> {
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader, ctx)?;
    reader.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn reader_never_panics_and_words_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64), width in 1usize..=8, bound in 1u64..) {
            let mut r = Reader::new(&bytes);
            let mut out = Vec::new();
            let _ = r.words_below("w", bytes.len() / width + 1, width, bound, &mut out);
            let mut r = Reader::new(&bytes);
            let _ = r.len_at_most("l", 10);
            let _ = r.u128();
            let words: Vec<u64> = bytes.iter().map(|&b| b as u64 % bound.min(256)).collect();
            let mut enc = Vec::new();
            put_words(&mut enc, &words, width);
            let mut r = Reader::new(&enc);
            let mut back = Vec::new();
            r.words_below("w", words.len(), width, bound, &mut back).unwrap();
            r.finish().unwrap();
            prop_assert_eq!(back, words);
        }
    }

    #[test]
    fn lengths_are_checked_before_allocation() {
        let bytes = (1u64 << 40).to_le_bytes();
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.len_at_most("x", 1 << 20),
            Err(WireError::TooLong { .. })
        ));
        let mut r = Reader::new(&[1, 2, 3]);
        let mut out = Vec::new();
        assert!(matches!(
            r.words_below("x", usize::MAX / 2, 8, 10, &mut out),
            Err(WireError::TooLong { .. })
        ));
        assert!(out.capacity() == 0);
        assert_eq!(
            Reader::new(&[1]).finish(),
            Err(WireError::TrailingBytes { count: 1 })
        );
    }
}
