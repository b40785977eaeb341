//! Where a JSON object or array ends, found 64 bytes at a time: each block's quotes,
//! backslashes and brackets become bit masks (SSE2 compares on x86-64, a byte loop elsewhere),
//! the bytes inside strings are masked out by a running XOR of the quotes, and a block whose
//! closing brackets are fewer than the open ones is passed over with two population counts.
//! Only a block where the value may end (or the nesting may pass [`MAX_DEPTH`]) is walked
//! bracket by bracket.
//!
//! What is followed is what [`crate::server::json_scan`] promises for a skipped value: strings
//! (a backslash escapes the byte after it) and bracket depth. Brackets are counted, not paired
//! by kind (`[}` closes), and a backslash outside a string escapes the next byte too: neither
//! happens in JSON, and a body with either is not one the apiserver sends.

#[cfg(target_arch = "x86_64")]
use crate::byte_scan::sse2;

/// The deepest nesting followed; deeper, the scan stops. Well under serde_json's limit of 128
/// levels, so a body too deep for serde_json stays too deep.
pub const MAX_DEPTH: u32 = 100;

const BLOCK: usize = 64;

/// Just past the object or array whose opening bracket is at `at`; `None` when it does not
/// end within `bytes` or nests deeper than [`MAX_DEPTH`].
pub fn nested_end(bytes: &[u8], at: usize) -> Option<usize> {
    if !matches!(bytes.get(at), Some(b'{' | b'[')) {
        return None;
    }
    // Past the opening bracket: depth never drops to 0 but where the value ends.
    let mut state = State {
        depth: 1,
        ..State::default()
    };
    let mut start = at + 1;
    while let Some(block) = bytes
        .get(start..)
        .and_then(|rest| rest.first_chunk::<BLOCK>())
    {
        if let Some(end) = state.block(block)? {
            return Some(start + end);
        }
        start += BLOCK;
    }
    // The last bytes, padded with spaces (which change nothing).
    let rest = bytes.get(start..)?;
    let mut padded = [b' '; BLOCK];
    padded[..rest.len()].copy_from_slice(rest);
    let end = state.block(&padded)??;
    (end <= rest.len()).then_some(start + end)
}

/// What one block leaves to the next.
#[derive(Debug, Default)]
struct State {
    depth: u32,
    /// The block ended inside a string.
    in_string: bool,
    /// The block ended with a backslash that escapes the next block's first byte.
    escape_carried: bool,
}

impl State {
    /// Follows one block: `Some(Some(n))` when the value ends just before byte `n` of it,
    /// `Some(None)` when it goes on, `None` when it nests too deep.
    fn block(&mut self, block: &[u8; BLOCK]) -> Option<Option<usize>> {
        let marks = Marks::of(block);
        let escaped = self.escaped(marks.backslash);
        let quotes = marks.quote & !escaped;
        // Bit i of the running XOR is set when an odd number of quotes stand at or before i:
        // from an opening quote up to (not including) its closing one.
        let mut inside = prefix_xor(quotes);
        if self.in_string {
            inside = !inside;
        }
        self.in_string = inside >> 63 == 1;
        let outside = !inside & !escaped;
        let (opens, closes) = (marks.open & outside, marks.close & outside);
        // Most blocks of a long value hold fewer closing brackets than are open: passed over
        // with two counts. Others are walked bracket by bracket.
        let (n_open, n_close) = (opens.count_ones(), closes.count_ones());
        if n_close < self.depth && self.depth + n_open <= MAX_DEPTH {
            self.depth = self.depth + n_open - n_close;
            return Some(None);
        }
        self.walk(opens, closes)
    }

    /// The block bracket by bracket: where the value may end or nest too deep.
    fn walk(&mut self, opens: u64, closes: u64) -> Option<Option<usize>> {
        let mut brackets = opens | closes;
        while brackets != 0 {
            let at = brackets.trailing_zeros();
            if opens >> at & 1 == 1 {
                if self.depth == MAX_DEPTH {
                    return None;
                }
                self.depth += 1;
            } else {
                self.depth -= 1;
                if self.depth == 0 {
                    return Some(Some(at as usize + 1));
                }
            }
            brackets &= brackets - 1;
        }
        Some(None)
    }

    /// The bytes of the block escaped by a backslash that is not itself escaped, but for
    /// escaped backslashes (neither a quote nor a bracket: nothing reads them). In a run of
    /// backslashes every other one escapes, from the run's first: the byte after the run is
    /// escaped when the run is odd-long. Adding a run's first bit to the run carries past its
    /// end, so runs that start on even and on odd bits, added apart, show their ends, whose
    /// parity gives the run's; a block that ends on an escaping backslash carries out of the
    /// odd-start sum (a run from an odd bit to bit 63 is even-long up to its last byte).
    fn escaped(&mut self, backslash: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let carried = u64::from(self.escape_carried);
        // A first byte escaped from the last block escapes nothing.
        let runs = backslash & !carried;
        let starts = runs & !(runs << 1);
        let (from_even, _) = runs.overflowing_add(starts & EVEN);
        let (from_odd, carries) = runs.overflowing_add(starts & !EVEN);
        self.escape_carried = carries;
        carried | (from_even & !runs & !EVEN) | (from_odd & !runs & EVEN)
    }

    /// [`State::escaped`] a backslash at a time, with escaped backslashes: the reference.
    #[cfg(test)]
    fn escaped_by_walk(&mut self, backslash: u64) -> u64 {
        let mut escaped = u64::from(self.escape_carried);
        self.escape_carried = false;
        let mut escaping = backslash & !escaped;
        while escaping != 0 {
            let at = escaping.trailing_zeros();
            if at == 63 {
                self.escape_carried = true;
            } else {
                escaped |= 1 << (at + 1);
            }
            escaping &= escaping - 1;
            escaping &= !escaped;
        }
        escaped
    }
}

/// Bit i set where an odd number of bits of `x` are set at or below i.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// One block's bytes that matter, one bit per byte (bit i for byte i).
#[derive(Debug, PartialEq, Eq)]
struct Marks {
    quote: u64,
    backslash: u64,
    /// `{` or `[`.
    open: u64,
    /// `}` or `]`.
    close: u64,
}

impl Marks {
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Marks {
        let (quote, backslash, case, open, close) = (
            sse2::splat(b'"'),
            sse2::splat(b'\\'),
            sse2::splat(0x20),
            sse2::splat(b'{'),
            sse2::splat(b'}'),
        );
        let mut marks = Marks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        for (k, lane) in block.as_chunks::<16>().0.iter().enumerate() {
            let lanes = sse2::load(lane);
            // `[` and `]` are `{` and `}` without the 0x20 bit.
            let folded = safe_arch::bitor_m128i(lanes, case);
            let shift = 16 * k;
            marks.quote |= u64::from(sse2::equal(lanes, quote)) << shift;
            marks.backslash |= u64::from(sse2::equal(lanes, backslash)) << shift;
            marks.open |= u64::from(sse2::equal(folded, open)) << shift;
            marks.close |= u64::from(sse2::equal(folded, close)) << shift;
        }
        marks
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Marks {
        Marks::by_byte(block)
    }

    /// The marks read a byte at a time: the portable way, and the reference in tests.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn by_byte(block: &[u8; BLOCK]) -> Marks {
        let mut marks = Marks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        for (i, &byte) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match byte {
                b'"' => marks.quote |= bit,
                b'\\' => marks.backslash |= bit,
                b'{' | b'[' => marks.open |= bit,
                b'}' | b']' => marks.close |= bit,
                _ => {}
            }
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::arbitrary_json::{Shape, values};
    use proptest::prelude::*;

    /// The same rules a byte at a time: what the blocks must find.
    fn reference(bytes: &[u8], at: usize) -> Option<usize> {
        let (mut depth, mut in_string, mut i) = (0u32, false, at);
        while let Some(&byte) = bytes.get(i) {
            i += 1;
            match byte {
                b'\\' => i += 1,
                b'"' => in_string = !in_string,
                _ if in_string => {}
                b'{' | b'[' => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    depth += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    #[test]
    fn values_end_where_json_says() {
        let long = format!(
            r#"{{"a":"{}\"}}","b":[{}]}} x"#,
            "y".repeat(100),
            "{},".repeat(40) + "1"
        );
        for (text, end) in [
            (r#"{"a":[1,{"b":"]"}]} x"#.to_string(), 19),
            ("[[],{}]".to_string(), 7),
            (r#"["\\",{"k:{\"a\":1}":{}}]"#.to_string(), 25),
            (long.clone(), long.len() - 2),
        ] {
            assert_eq!(nested_end(text.as_bytes(), 0), Some(end), "{text}");
            assert_eq!(reference(text.as_bytes(), 0), Some(end), "{text}");
        }
        for text in ["[\"]", "[[", "{", "[\"\\\"]"] {
            assert_eq!(nested_end(text.as_bytes(), 0), None, "{text}");
        }
    }

    #[test]
    fn nesting_is_followed_to_the_limit() {
        let depth = MAX_DEPTH as usize;
        for pad in [0, 30, 63, 64, 100] {
            let at_limit = " ".repeat(pad) + &"[".repeat(depth) + &"]".repeat(depth);
            assert_eq!(nested_end(at_limit.as_bytes(), pad), Some(pad + 2 * depth));
            let deeper = " ".repeat(pad) + &"[".repeat(depth + 1) + &"]".repeat(depth + 1);
            assert_eq!(nested_end(deeper.as_bytes(), pad), None);
        }
    }

    /// Texts made mostly of what the scan looks at, so that strings, escapes and brackets
    /// straddle block boundaries in every way.
    fn structural_text() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop::sample::select(b"{}[]\"\\\\a ,:".to_vec());
        (
            prop::sample::select(b"{[".to_vec()),
            prop::collection::vec(byte, 0..400),
        )
            .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
    }

    proptest! {
        #[test]
        fn blocks_find_what_a_byte_walk_finds(text in structural_text(), lead in 0usize..70) {
            let mut bytes = vec![b' '; lead];
            bytes.extend_from_slice(&text);
            prop_assert_eq!(nested_end(&bytes, lead), reference(&bytes, lead));
        }

        #[test]
        fn generated_json_ends_where_it_was_written(
            value in values(Shape {
                names: &["a", "k:{\\\"name\\\":\\\"x\\\"}"],
                other_names: "[a-z\\\\\"{}\\[\\] ]{0,12}",
                strings: "[a-z\\\\\"{}\\[\\] ]{0,90}",
                depth: 6,
                size: 80,
                width: 6,
            }),
            pretty: bool,
        ) {
            let wrapped = serde_json::json!([value]);
            let mut text = if pretty {
                serde_json::to_vec_pretty(&wrapped).unwrap()
            } else {
                serde_json::to_vec(&wrapped).unwrap()
            };
            let end = text.len();
            text.extend_from_slice(b", [\"after\"]");
            prop_assert_eq!(nested_end(&text, 0), Some(end));
        }

        #[test]
        fn escapes_are_the_walked_escapes(
            blocks in prop::collection::vec((any::<u64>(), any::<bool>()), 1..6),
            other in any::<u64>(),
        ) {
            let (mut sums, mut walk) = (State::default(), State::default());
            for (b, dense) in blocks {
                // Runs of backslashes of every length: most bits set, or few.
                let backslash = if dense { b | other } else { b & other };
                let expected = walk.escaped_by_walk(backslash) & !backslash;
                let found = sums.escaped(backslash);
                prop_assert_eq!(found & !backslash, expected);
                // Escaped backslashes are left out, and only they.
                prop_assert_eq!(found & backslash, found & backslash & 1);
                prop_assert_eq!(sums.escape_carried, walk.escape_carried);
            }
        }

        #[test]
        fn simd_marks_are_the_byte_marks(block in prop::collection::vec(any::<u8>(), BLOCK)) {
            let block: [u8; BLOCK] = block.try_into().unwrap();
            prop_assert_eq!(Marks::of(&block), Marks::by_byte(&block));
        }
    }
}
