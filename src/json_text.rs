//! JSON string literals written by hand where a whole document is: the log lines and the
//! AdmissionReview responses. serde_json's writer looks at each byte through a table and
//! writes through `io::Write`; here runs that need no escape are found sixteen bytes at a
//! time and copied whole. The escapes are serde_json's, byte for byte (tested against it).

use std::fmt::Write as _;

/// `text` as a JSON string, escaped as serde_json escapes it. Runs that need no escape are
/// copied whole.
pub fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut from = 0;
    let mut at = 0;
    while let Some(found) = next_escape(bytes, at) {
        let byte = bytes[found];
        // Escaped bytes are ASCII: `from..found` lies on character boundaries.
        out.push_str(&text[from..found]);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                let _ = write!(out, "\\u{byte:04x}");
            }
        }
        from = found + 1;
        at = found + 1;
    }
    out.push_str(&text[from..]);
    out.push('"');
}

/// The first byte at or after `at` that JSON escapes: a quote, a backslash or a control
/// character. Sixteen bytes at a time on x86-64 (SSE2), eight bytes of arithmetic elsewhere,
/// then byte by byte.
fn next_escape(bytes: &[u8], mut at: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use safe_arch::{
            cmp_eq_mask_i8_m128i, load_unaligned_m128i, max_u8_m128i, move_mask_i8_m128i,
            set_splat_i8_m128i,
        };
        let splat = |byte: u8| set_splat_i8_m128i(i8::from_ne_bytes([byte]));
        let (quote, backslash, last_control) = (splat(b'"'), splat(b'\\'), splat(0x1f));
        while let Some(lane) = bytes.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
            let lanes = load_unaligned_m128i(lane);
            // A byte is a control character when the larger of it and 0x1f is 0x1f.
            let found = cmp_eq_mask_i8_m128i(max_u8_m128i(lanes, last_control), last_control)
                | cmp_eq_mask_i8_m128i(lanes, quote)
                | cmp_eq_mask_i8_m128i(lanes, backslash);
            let mask = move_mask_i8_m128i(found);
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 16;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        while let Some(&chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
            let word = u64::from_le_bytes(chunk);
            // The lowest flagged byte of each term is the first byte below 0x20, the first
            // quote, the first backslash (bytes above it may be flagged falsely: only the
            // lowest is used).
            let (q, b) = (
                word ^ (ONES * u64::from(b'"')),
                word ^ (ONES * u64::from(b'\\')),
            );
            let below_space = word.wrapping_sub(ONES * 0x20) & !word;
            let quote = q.wrapping_sub(ONES) & !q;
            let backslash = b.wrapping_sub(ONES) & !b;
            let flags = (below_space | quote | backslash) & HIGHS;
            if flags != 0 {
                return Some(at + (flags.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
    }
    bytes[at..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|n| at + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_escaped_byte_is_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for byte in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    // Bytes that must not be taken for one: a space, 0x7f, UTF-8's high bytes.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', b' ', 0x7f, 0xc3, b'!'][i % 5];
                    }
                    bytes[at] = byte;
                    assert_eq!(next_escape(&bytes, 0), Some(at), "{bytes:?}");
                    assert_eq!(next_escape(&bytes, at + 1), None, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "\" \\ \n \r \t \u{8} \u{c} \u{0} \u{1f} \u{7f} é 😀",
            "\u{1}\u{2}x",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }

    proptest! {
        #[test]
        fn any_text_is_escaped_as_serde_json_escapes_it(text in "(.|[\\x00-\\x1f\"\\\\]){0,40}") {
            let mut out = String::new();
            push_json_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }
    }
}
