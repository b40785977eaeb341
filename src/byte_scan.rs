//! The first byte of a set in a byte string, found sixteen bytes at a time on x86-64 (SSE2
//! compares) and eight at a time by integer arithmetic elsewhere, then byte by byte: where a
//! JSON string may end (a quote or a backslash), and where one needs an escape (those and the
//! control characters).

/// The first quote or backslash at or after `at`: where a JSON string may end.
pub fn quote_or_backslash(bytes: &[u8], at: usize) -> Option<usize> {
    first_of::<QuoteOrBackslash>(bytes, at)
}

/// The first byte at or after `at` that a JSON string escapes: a quote, a backslash or a
/// control character.
pub fn json_escape(bytes: &[u8], at: usize) -> Option<usize> {
    first_of::<JsonEscaped>(bytes, at)
}

/// A set of bytes, tested as many at a time as the target allows.
trait ByteSet {
    /// Bit i set where byte i of `lanes` is in the set.
    #[cfg(target_arch = "x86_64")]
    fn in_lanes(lanes: safe_arch::m128i) -> u16;

    /// The high bit of each byte of `word` flagged where the byte may be in the set: exact
    /// for the lowest flagged byte, which is all that is read (a borrow can flag bytes above
    /// it falsely).
    #[cfg(not(target_arch = "x86_64"))]
    fn in_word(word: u64) -> u64;

    fn has(byte: u8) -> bool;
}

#[cfg(not(target_arch = "x86_64"))]
const ONES: u64 = u64::from_le_bytes([1; 8]);

/// The high bit of each byte of `word` that is zero (`(x - ONES) & !x`), exact for the lowest.
#[cfg(not(target_arch = "x86_64"))]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word
}

struct QuoteOrBackslash;

impl ByteSet for QuoteOrBackslash {
    #[cfg(target_arch = "x86_64")]
    fn in_lanes(lanes: safe_arch::m128i) -> u16 {
        sse2::equal(lanes, sse2::splat(b'"')) | sse2::equal(lanes, sse2::splat(b'\\'))
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn in_word(word: u64) -> u64 {
        zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\')))
    }

    fn has(byte: u8) -> bool {
        byte == b'"' || byte == b'\\'
    }
}

struct JsonEscaped;

impl ByteSet for JsonEscaped {
    #[cfg(target_arch = "x86_64")]
    fn in_lanes(lanes: safe_arch::m128i) -> u16 {
        sse2::at_most(lanes, 0x1f) | QuoteOrBackslash::in_lanes(lanes)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn in_word(word: u64) -> u64 {
        // A byte below 0x20 borrows when 0x20 is taken from it and had no high bit.
        (word.wrapping_sub(ONES * 0x20) & !word) | QuoteOrBackslash::in_word(word)
    }

    fn has(byte: u8) -> bool {
        byte < 0x20 || QuoteOrBackslash::has(byte)
    }
}

fn first_of<S: ByteSet>(bytes: &[u8], mut at: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    while let Some(lane) = bytes.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
        let found = S::in_lanes(sse2::load(lane));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 16;
    }
    #[cfg(not(target_arch = "x86_64"))]
    while let Some(&chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
        let found = S::in_word(u64::from_le_bytes(chunk)) & (ONES * 0x80);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    rest.iter().position(|&b| S::has(b)).map(|n| at + n)
}

/// The SSE2 steps the scans take, sixteen bytes at a time.
#[cfg(target_arch = "x86_64")]
pub mod sse2 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, max_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    pub fn splat(byte: u8) -> m128i {
        set_splat_i8_m128i(i8::from_ne_bytes([byte]))
    }

    pub fn load(lane: &[u8; 16]) -> m128i {
        load_unaligned_m128i(lane)
    }

    /// Bit i set where byte i of `lanes` equals the byte `splat` was made of.
    pub fn equal(lanes: m128i, splat: m128i) -> u16 {
        move_mask_i8_m128i(cmp_eq_mask_i8_m128i(lanes, splat)) as u16
    }

    /// Bit i set where byte i of `lanes` is at most `byte`: the larger of the two is `byte`.
    pub fn at_most(lanes: m128i, byte: u8) -> u16 {
        let limit = splat(byte);
        equal(max_u8_m128i(lanes, limit), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_wanted_byte_is_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for byte in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    // Bytes that must not be taken for one: a space, 0x7f, UTF-8's high bytes.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', b' ', 0x7f, 0xc3, b'!'][i % 5];
                    }
                    bytes[at] = byte;
                    assert_eq!(json_escape(&bytes, 0), Some(at), "{bytes:?}");
                    assert_eq!(json_escape(&bytes, at + 1), None, "{bytes:?}");
                    let quote_or_backslash_at = matches!(byte, b'"' | b'\\').then_some(at);
                    assert_eq!(quote_or_backslash(&bytes, 0), quote_or_backslash_at);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn bytes_are_found_where_a_byte_walk_finds_them(
            text in prop::collection::vec(
                prop::sample::select(b"ab\"\\\\ \x00\x1f\x20\x7f\xc3\xff".to_vec()),
                0..80,
            ),
            from in 0usize..80,
        ) {
            let walk = |wanted: fn(u8) -> bool| {
                (from <= text.len())
                    .then(|| text[from..].iter().position(|&b| wanted(b)).map(|n| from + n))
                    .flatten()
            };
            prop_assert_eq!(quote_or_backslash(&text, from), walk(|b| b == b'"' || b == b'\\'));
            prop_assert_eq!(
                json_escape(&text, from),
                walk(|b| b < 0x20 || b == b'"' || b == b'\\')
            );
        }
    }
}
