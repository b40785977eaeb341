//! A JSON scanner that follows only a document's structure: object members and array elements
//! where the caller looks inside, and elsewhere only strings and brackets, to find where a value
//! ends. It builds nothing and never copies; it is how [`crate::server::review_cuts`] finds the
//! values a review is decoded without.
//!
//! It does not check JSON's whole grammar (a number or literal ends where the enclosing
//! structure goes on; inside a skipped value only strings and bracket depth are followed, see
//! [`crate::server::json_blocks`]), so what it finds is only ever used on a body the apiserver
//! encoded. `None` from any function
//! here means the scan cannot follow the body any further.

use crate::byte_scan::quote_or_backslash;
pub use crate::server::json_blocks::MAX_DEPTH;
use crate::server::json_blocks::nested_end;

/// Past the object at `at`, calling `value` with each member's name (its raw text, escapes
/// as written) and the start of its value, which returns the end of that value.
pub fn members<'b>(
    bytes: &'b [u8],
    at: usize,
    mut value: impl FnMut(&'b [u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = whitespace(bytes, expect(bytes, at, b'{')?);
    if *bytes.get(at)? == b'}' {
        return Some(at + 1);
    }
    loop {
        at = whitespace(bytes, at);
        if *bytes.get(at)? != b'"' {
            return None;
        }
        let end = string_end(bytes, at + 1)?;
        let name = &bytes[at + 1..end - 1];
        at = whitespace(bytes, expect(bytes, end, b':')?);
        at = whitespace(bytes, value(name, at)?);
        match *bytes.get(at)? {
            b',' => at += 1,
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// Past the array at `at`, calling `value` with the start of each element, which returns the
/// end of that element.
pub fn elements(
    bytes: &[u8],
    at: usize,
    mut value: impl FnMut(usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = whitespace(bytes, expect(bytes, at, b'[')?);
    if *bytes.get(at)? == b']' {
        return Some(at + 1);
    }
    loop {
        at = whitespace(bytes, at);
        at = whitespace(bytes, value(at)?);
        match *bytes.get(at)? {
            b',' => at += 1,
            b']' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// The first byte at or after `at` that is not JSON whitespace.
pub fn whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Just past `byte`, which comes next after any whitespace.
fn expect(bytes: &[u8], at: usize, byte: u8) -> Option<usize> {
    let at = whitespace(bytes, at);
    (*bytes.get(at)? == byte).then_some(at + 1)
}

/// Just past the value that starts at `at`.
pub fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at + 1),
        b'{' | b'[' => nested_end(bytes, at),
        // A number or a literal: it ends where the enclosing structure goes on.
        _ => Some(
            bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(bytes.len(), |n| at + n),
        ),
    }
}

/// Just past the closing quote of the string whose contents start at `at`.
pub fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at = quote_or_backslash(bytes, at)?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        // The escaped byte cannot end the string (`\"`); `\uXXXX` goes on as plain bytes.
        at += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_end_where_json_says() {
        for (text, end) in [
            (r#""a\"b" ,"#, 6),
            (r#"{"a":[1,{"b":"]"}]} x"#, 19),
            ("[[],{}]", 7),
            ("12.5e3,", 6),
            ("null}", 4),
            ("true", 4),
            // Brackets are counted, not paired by kind.
            ("[}", 2),
        ] {
            assert_eq!(skip_value(text.as_bytes(), 0), Some(end), "{text}");
        }
        for text in [r#""open"#, "[[", ""] {
            assert_eq!(skip_value(text.as_bytes(), 0), None, "{text}");
        }
    }

    #[test]
    fn members_and_elements_are_visited_in_order() {
        let text = br#" { "a" : 1 , "b\"" : [ 1 , "x" , {} ] } "#;
        let mut names = Vec::new();
        let end = members(text, 0, |name, at| {
            names.push(String::from_utf8_lossy(name).into_owned());
            if name == b"b\\\"" {
                let mut starts = Vec::new();
                let end = elements(text, at, |at| {
                    starts.push(text[at]);
                    skip_value(text, at)
                });
                assert_eq!(starts, b"1\"{");
                end
            } else {
                skip_value(text, at)
            }
        });
        assert_eq!(names, ["a", "b\\\""]);
        assert_eq!(end, Some(text.len() - 1));
        assert_eq!(elements(b"[]", 0, |_| None), Some(2));
        assert_eq!(elements(b"[1 2]", 0, |at| skip_value(b"[1 2]", at)), None);
        assert_eq!(members(b"{\"a\" 1}", 0, |_, at| Some(at)), None);
    }

    #[test]
    fn nesting_is_followed_to_the_limit() {
        let depth = MAX_DEPTH as usize;
        let at_limit = "[".repeat(depth) + &"]".repeat(depth);
        assert_eq!(skip_value(at_limit.as_bytes(), 0), Some(2 * depth));
        let deeper = "[".repeat(depth + 1) + &"]".repeat(depth + 1);
        assert_eq!(skip_value(deeper.as_bytes(), 0), None);
    }
}
