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
    /// A packed bit string whose padding bits (above its announced length) are not zero.
    #[error("{what}: nonzero padding bits after {bits} bits")]
    NonzeroPadding {
        /// The field.
        what: &'static str,
        /// The number of bits the field holds.
        bits: u64,
    },
}

/// Bytes of `count` items of `width` bytes each, or [`WireError::TooLong`] if that overflows
/// (so a hostile count can never wrap a length check).
fn byte_len(what: &'static str, count: usize, width: usize) -> Result<usize, WireError> {
    count.checked_mul(width).ok_or(WireError::TooLong {
        what,
        found: count as u64,
        max: (usize::MAX / width.max(1)) as u64,
    })
}

/// Checks that the bits of `bytes` above the first `bits` are zero: padding is part of the
/// format, so a flipped padding bit is rejected like any other malformed byte.
fn check_padding(what: &'static str, bytes: &[u8], bits: usize) -> Result<(), WireError> {
    let tail = bits % 8;
    match bytes.get(bits / 8) {
        Some(&last) if tail != 0 && last >> tail != 0 => Err(WireError::NonzeroPadding {
            what,
            bits: bits as u64,
        }),
        _ => Ok(()),
    }
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
        let raw = self.take(byte_len(what, count, bytes_per_word)?)?;
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

    /// A `u64` count that must equal `expected` (the count the parameters fix).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::LengthMismatch`].
    pub fn count_exact(&mut self, what: &'static str, expected: usize) -> Result<(), WireError> {
        let found = self.u64()?;
        if found != expected as u64 {
            return Err(WireError::LengthMismatch {
                what,
                expected: expected as u64,
                found,
            });
        }
        Ok(())
    }

    /// `count` little-endian `u64`s (packed bit words, any value allowed).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::TooLong`] if `8·count` overflows.
    pub fn u64s(&mut self, what: &'static str, count: usize) -> Result<Vec<u64>, WireError> {
        let raw = self.take(byte_len(what, count, 8)?)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect())
    }

    /// `count` 128-bit little-endian blocks (labels, OT pads, ciphertexts).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::TooLong`] if `16·count` overflows.
    pub fn blocks(&mut self, what: &'static str, count: usize) -> Result<Vec<u128>, WireError> {
        let raw = self.take(byte_len(what, count, BLOCK_LEN)?)?;
        Ok(raw.chunks_exact(BLOCK_LEN).map(block_le).collect())
    }

    /// [`Reader::blocks`] without a copy when the bytes are suitably aligned on a little-endian
    /// machine (the usual case for a freshly allocated frame), for the large garbled tables.
    ///
    /// # Errors
    /// As [`Reader::blocks`].
    pub fn blocks_borrowed(
        &mut self,
        what: &'static str,
        count: usize,
    ) -> Result<std::borrow::Cow<'a, [u128]>, WireError> {
        let raw = self.take(byte_len(what, count, BLOCK_LEN)?)?;
        Ok(match bytemuck::try_cast_slice::<u8, u128>(raw) {
            Ok(words) if cfg!(target_endian = "little") => std::borrow::Cow::Borrowed(words),
            _ => std::borrow::Cow::Owned(raw.chunks_exact(BLOCK_LEN).map(block_le).collect()),
        })
    }

    /// `n` bits packed least significant first ([`put_bits`]), the padding bits of the last
    /// byte zero.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::NonzeroPadding`].
    pub fn bits(&mut self, what: &'static str, n: usize) -> Result<Vec<bool>, WireError> {
        let raw = self.take(n.div_ceil(8))?;
        check_padding(what, raw, n)?;
        Ok((0..n).map(|i| (raw[i / 8] >> (i % 8)) & 1 == 1).collect())
    }

    /// A stream of `total` packed bits read as fields of varying widths ([`BitWriter`]), the
    /// padding bits of the last byte zero.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::NonzeroPadding`].
    pub fn bit_fields(
        &mut self,
        what: &'static str,
        total: usize,
    ) -> Result<BitFields<'a>, WireError> {
        let bytes = self.take(total.div_ceil(8))?;
        check_padding(what, bytes, total)?;
        Ok(BitFields {
            what,
            bytes,
            total,
            bit: 0,
        })
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

/// Bytes of a 128-bit block on the wire.
pub const BLOCK_LEN: usize = 16;

/// A little-endian block from exactly [`BLOCK_LEN`] bytes (callers pass `chunks_exact` pieces).
fn block_le(bytes: &[u8]) -> u128 {
    let mut b = [0u8; BLOCK_LEN];
    b.copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

/// Appends 128-bit blocks little-endian (the inverse of [`Reader::blocks`]).
pub fn put_blocks(out: &mut Vec<u8>, blocks: &[u128]) {
    out.reserve(BLOCK_LEN * blocks.len());
    for b in blocks {
        out.extend_from_slice(&b.to_le_bytes());
    }
}

/// Bits packed least significant first, the last byte zero padded (the inverse of
/// [`Reader::bits`]).
pub fn pack_bits(bits: impl IntoIterator<Item = bool>) -> Vec<u8> {
    let bits = bits.into_iter();
    let mut out = Vec::with_capacity(bits.size_hint().0.div_ceil(8));
    let (mut byte, mut fill) = (0u8, 0);
    for b in bits {
        byte |= u8::from(b) << fill;
        fill += 1;
        if fill == 8 {
            out.push(byte);
            (byte, fill) = (0, 0);
        }
    }
    if fill > 0 {
        out.push(byte);
    }
    out
}

/// Appends fields of up to 128 bits to a little-endian bit stream, the last byte zero padded
/// (read back with [`Reader::bit_fields`]).
#[derive(Debug)]
pub struct BitWriter<'o> {
    out: &'o mut Vec<u8>,
    acc: u128,
    fill: usize,
}

impl<'o> BitWriter<'o> {
    /// A writer appending to `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Self {
            out,
            acc: 0,
            fill: 0,
        }
    }

    /// Appends the low `width` bits of `word` (`width <= 128`).
    pub fn put(&mut self, word: u128, width: usize) {
        debug_assert!(width <= 128, "a field holds at most 128 bits");
        if self.fill == 0 && width.is_multiple_of(8) {
            // Byte-aligned: the common case (`2^log_n · bits` a multiple of 8).
            self.out.extend_from_slice(&word.to_le_bytes()[..width / 8]);
            return;
        }
        let mut word = if width >= 128 {
            word
        } else {
            word & ((1u128 << width) - 1)
        };
        let mut width = width;
        while width > 0 {
            let take = width.min(64);
            let part = word & ((1u128 << take) - 1);
            self.acc |= part << self.fill;
            self.fill += take;
            while self.fill >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.fill -= 8;
            }
            word = word.checked_shr(take as u32).unwrap_or(0);
            width -= take;
        }
    }

    /// Writes the last partial byte, if any.
    pub fn finish(self) {
        if self.fill > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Fields of a packed bit stream of a fixed length ([`Reader::bit_fields`]).
#[derive(Debug, Clone)]
pub struct BitFields<'a> {
    what: &'static str,
    bytes: &'a [u8],
    total: usize,
    bit: usize,
}

impl BitFields<'_> {
    /// The next field of `width` bits (`width <= 128`).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than `width` bits of the stream remain.
    pub fn get(&mut self, width: usize) -> Result<u128, WireError> {
        debug_assert!(width <= 128, "a field holds at most 128 bits");
        if width > self.total - self.bit {
            return Err(WireError::Truncated {
                needed: width.div_ceil(8),
                remaining: (self.total - self.bit) / 8,
            });
        }
        if self.bit.is_multiple_of(8) && width.is_multiple_of(8) {
            let at = self.bit / 8;
            let mut word = [0u8; BLOCK_LEN];
            word[..width / 8].copy_from_slice(&self.bytes[at..at + width / 8]);
            self.bit += width;
            return Ok(u128::from_le_bytes(word));
        }
        let mut word = 0u128;
        for k in 0..width {
            let b = self.bit + k;
            word |= u128::from((self.bytes[b / 8] >> (b % 8)) & 1) << k;
        }
        self.bit += width;
        Ok(word)
    }

    /// Succeeds only if every field was read.
    ///
    /// # Errors
    /// [`WireError::LengthMismatch`] if bits are left.
    pub fn finish(self) -> Result<(), WireError> {
        if self.bit != self.total {
            return Err(WireError::LengthMismatch {
                what: self.what,
                expected: self.bit as u64,
                found: self.total as u64,
            });
        }
        Ok(())
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

    proptest! {
            #[test]
            fn blocks_bits_and_fields_round_trip(
                blocks in proptest::collection::vec(any::<u128>(), 0..8),
                bits in proptest::collection::vec(any::<bool>(), 0..40),
                fields in proptest::collection::vec((any::<u128>(), 0usize..=128), 0..8),
            ) {
                let mut enc = Vec::new();
                put_blocks(&mut enc, &blocks);
                let mut r = Reader::new(&enc);
                prop_assert_eq!(r.blocks("b", blocks.len()).unwrap(), blocks.clone());
                r.finish().unwrap();
                let mut r = Reader::new(&enc);
                prop_assert_eq!(&*r.blocks_borrowed("b", blocks.len()).unwrap(), &blocks[..]);

                let packed = pack_bits(bits.iter().copied());
                prop_assert_eq!(packed.len(), bits.len().div_ceil(8));
                let mut r = Reader::new(&packed);
                prop_assert_eq!(r.bits("p", bits.len()).unwrap(), bits.clone());
                r.finish().unwrap();
                // Every nonzero padding bit is rejected.
                if !bits.len().is_multiple_of(8) {
                    let mut bad = packed.clone();
                    *bad.last_mut().unwrap() |= 0x80;
    let rejected = matches!(
                        Reader::new(&bad).bits("p", bits.len()),
                        Err(WireError::NonzeroPadding { .. })
                    );
                    prop_assert!(rejected);
                }

                let mut enc = Vec::new();
                let mut w = BitWriter::new(&mut enc);
                let total: usize = fields.iter().map(|f| f.1).sum();
                for &(v, width) in &fields {
                    w.put(v, width);
                }
                w.finish();
                prop_assert_eq!(enc.len(), total.div_ceil(8));
                let mut r = Reader::new(&enc);
                let mut f = r.bit_fields("f", total).unwrap();
                for &(v, width) in &fields {
                    let want = if width == 128 { v } else { v & ((1u128 << width) - 1) };
                    prop_assert_eq!(f.get(width).unwrap(), want);
                }
                prop_assert!(f.get(1).is_err());
                f.finish().unwrap();
                r.finish().unwrap();
            }
        }

    #[test]
    fn short_inputs_and_wrong_counts_are_typed_errors() {
        assert!(matches!(
            Reader::new(&[0; 31]).blocks("b", 2),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Reader::new(&[0; 8]).blocks("b", usize::MAX),
            Err(WireError::TooLong { .. })
        ));
        assert!(matches!(
            Reader::new(&[0xff]).bits("p", 9),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Reader::new(&3u64.to_le_bytes()).count_exact("c", 2),
            Err(WireError::LengthMismatch {
                expected: 2,
                found: 3,
                ..
            })
        ));
        let mut r = Reader::new(&[0xff, 0x01]);
        let mut f = r.bit_fields("f", 9).unwrap();
        assert_eq!(f.get(4).unwrap(), 0xf);
        assert!(matches!(
            f.clone().finish(),
            Err(WireError::LengthMismatch { .. })
        ));
        assert_eq!(f.get(5).unwrap(), 0x1f);
        f.finish().unwrap();
        assert_eq!(
            Reader::new(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]).u64s("u", 2),
            Ok(vec![1, 2])
        );
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
