//! JSON string literals written by hand where a whole document is: the log lines and the
//! AdmissionReview responses. serde_json's writer looks at each byte through a table and
//! writes through `io::Write`; here runs that need no escape are found many bytes at a time
//! (`byte_scan`) and copied whole. The escapes are serde_json's, byte for byte (tested
//! against it).

use crate::byte_scan::json_escape;
use std::fmt::Write as _;

/// `text` as a JSON string, escaped as serde_json escapes it. Runs that need no escape are
/// copied whole.
pub fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut from = 0;
    let mut at = 0;
    while let Some(found) = json_escape(bytes, at) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
