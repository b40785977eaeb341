//! The exec rewrite: `exec ` inserted before the final command; every other byte kept.

/// Inserts `exec ` at each byte offset (the start of a final command word).
/// Offsets that are out of range or not on a character boundary are skipped.
pub fn insert_exec(script: &str, offsets: &[usize]) -> Option<String> {
    let mut offsets: Vec<usize> = offsets.to_vec();
    offsets.sort_unstable();
    offsets.dedup();
    if offsets.is_empty()
        || offsets
            .iter()
            .any(|&o| o > script.len() || !script.is_char_boundary(o))
    {
        return None;
    }
    let mut out = String::with_capacity(script.len() + 5 * offsets.len());
    let mut last = 0;
    for o in offsets {
        out.push_str(&script[last..o]);
        out.push_str("exec ");
        last = o;
    }
    out.push_str(&script[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_at_offsets_keeping_everything_else() {
        let s = "cd /srv && python -m app  # comment";
        let at = s.find("python").unwrap();
        assert_eq!(
            insert_exec(s, &[at]).unwrap(),
            "cd /srv && exec python -m app  # comment"
        );
        assert_eq!(insert_exec("a\nb", &[0, 2]).unwrap(), "exec a\nexec b");
        assert!(insert_exec("é", &[1]).is_none());
        assert!(insert_exec("x", &[]).is_none());
    }
}
