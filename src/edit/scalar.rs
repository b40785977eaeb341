//! A string scalar changed where it is written: when the new value is the old one with words
//! inserted (`exec ` before a script's final command), the words go into the source text, so
//! the quoting, block style, indentation, escapes and line folding stay as written.

use similar::{ChangeTag, TextDiff};

/// Characters that read the same in every scalar style: inserted as they are, they change
/// the value by exactly themselves.
fn is_plain_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '/' | '-' | '=' | '+' | '@' | '%')
}

/// The insertions (byte offset in `old`, text) that turn `old` into `new`; `None` when the
/// change also deletes something.
fn insertions(old: &str, new: &str) -> Option<Vec<(usize, String)>> {
    let diff = TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .diff_chars(old, new);
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut offset = 0;
    for change in diff.iter_all_changes() {
        let value = change.value();
        match change.tag() {
            ChangeTag::Equal => offset += value.len(),
            ChangeTag::Delete => return None,
            ChangeTag::Insert => match out.last_mut() {
                Some((at, text)) if *at == offset => text.push_str(value),
                _ => out.push((offset, value.to_string())),
            },
        }
    }
    Some(out)
}

/// Where in `source` the text at byte `at` of `value` starts, found by the words around it:
/// the n-th occurrence of the words that follow (or precede) in the value is taken to be the
/// n-th occurrence in the source. The caller checks the result by reading it back.
fn locate(source: &str, value: &str, at: usize) -> Option<usize> {
    let after: String = value[at..]
        .chars()
        .take_while(|c| is_plain_safe(*c) && *c != ' ')
        .take(24)
        .collect();
    if !after.is_empty() {
        let nth = occurrences(value, &after).filter(|p| *p < at).count();
        return occurrences(source, &after).nth(nth);
    }
    let before: String = {
        let rev: String = value[..at]
            .chars()
            .rev()
            .take_while(|c| is_plain_safe(*c) && *c != ' ')
            .take(24)
            .collect();
        rev.chars().rev().collect()
    };
    if before.is_empty() {
        return None;
    }
    let nth = occurrences(&value[..at], &before).count().checked_sub(1)?;
    occurrences(source, &before)
        .nth(nth)
        .map(|p| p + before.len())
}

/// Start offsets of every (possibly overlapping) occurrence of `needle`.
fn occurrences<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack
        .char_indices()
        .map(|(i, _)| i)
        .filter(move |&i| haystack[i..].starts_with(needle))
}

/// `source` (the scalar as written) with the insertions that turn `old` into `new` made in
/// place; `None` when that is not possible. `reads_as` says whether a candidate source text
/// reads as `new`.
pub fn insert_in_place(
    source: &str,
    old: &str,
    new: &str,
    reads_as: impl Fn(&str) -> bool,
) -> Option<String> {
    let inserts = insertions(old, new)?;
    if inserts.is_empty() || inserts.iter().any(|(_, t)| !t.chars().all(is_plain_safe)) {
        return None;
    }
    let mut at_source = Vec::with_capacity(inserts.len());
    for (at, text) in &inserts {
        at_source.push((locate(source, old, *at)?, text.as_str()));
    }
    at_source.sort_by_key(|(p, _)| *p);
    let mut out = String::with_capacity(source.len() + new.len() - old.len());
    let mut last = 0;
    for (p, text) in at_source {
        out.push_str(source.get(last..p)?);
        out.push_str(text);
        last = p;
    }
    out.push_str(source.get(last..)?);
    reads_as(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_string(source: &str) -> Option<String> {
        let v: serde_json::Value = serde_saphyr::from_str(&format!("k: {source}")).ok()?;
        v.get("k")?.as_str().map(str::to_string)
    }

    fn edit(source: &str, old: &str, new: &str) -> Option<String> {
        insert_in_place(source, old, new, |s| yaml_string(s).as_deref() == Some(new))
    }

    #[test]
    fn inserts_in_every_style() {
        assert_eq!(
            edit(
                "cd /srv && python app",
                "cd /srv && python app",
                "cd /srv && exec python app"
            )
            .unwrap(),
            "cd /srv && exec python app"
        );
        assert_eq!(
            edit(
                "'echo ''hi''; run'",
                "echo 'hi'; run",
                "echo 'hi'; exec run"
            )
            .unwrap(),
            "'echo ''hi''; exec run'"
        );
        assert_eq!(
            edit(
                "\"echo \\\"hi\\\"\\nrun\"",
                "echo \"hi\"\nrun",
                "echo \"hi\"\nexec run"
            )
            .unwrap(),
            "\"echo \\\"hi\\\"\\nexec run\""
        );
        assert_eq!(
            edit(
                "|\n  echo run\n  run --x\n",
                "echo run\nrun --x\n",
                "echo run\nexec run --x\n"
            )
            .unwrap(),
            "|\n  echo run\n  exec run --x\n"
        );
        assert_eq!(
            edit(
                ">-\n  set -e;\n  server\n",
                "set -e; server",
                "set -e; exec server"
            )
            .unwrap(),
            ">-\n  set -e;\n  exec server\n"
        );
    }

    #[test]
    fn deletions_and_unsafe_text_are_refused() {
        assert!(edit("abc", "abc", "ab").is_none());
        assert!(edit("abc", "abc", "abc'").is_none());
    }
}
