//! `pidone fix --diff` one document at a time: the unified diff of a file (3 lines of context,
//! `a/` and `b/` paths as `git apply` expects) built from each document's old and new text as
//! it is fixed. Only the open hunk's last unchanged lines and the few unchanged lines before
//! the next hunk are held as text; the hunks themselves go to spools (memory, then a
//! temporary file), so a large file costs as much memory as its largest document.

use crate::cli::spool::Spool;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::Path;

/// Unchanged lines shown around each change.
const CONTEXT: usize = 3;

/// The path as a diff names it: relative, no `./`.
pub fn diff_name(file: &str) -> String {
    let path = Path::new(file);
    let relative = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let text = relative.display().to_string();
    text.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// The unified diff of two whole texts of a file.
pub fn unified_diff(file: &str, old: &str, new: &str) -> String {
    let name = diff_name(file);
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT)
        .missing_newline_hint(true)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// The diff of one file, fed document by document.
pub struct FileDiff {
    name: String,
    /// Lines of the old and of the new text read so far.
    old_line: usize,
    new_line: usize,
    /// The last unchanged lines, outside a hunk: the context of the next one.
    before: VecDeque<String>,
    hunk: Option<Hunk>,
    out: Spool,
}

struct Hunk {
    /// 0-based first line in the old and the new text, and the lines of each in the hunk.
    old_start: usize,
    new_start: usize,
    old_len: usize,
    new_len: usize,
    body: Spool,
    /// Unchanged lines after the last change, not yet in the body: a run longer than twice
    /// the context ends the hunk.
    trailing: Vec<String>,
}

/// One line of a hunk, marked; a line without a line break ends the text, and says so.
fn write_line(out: &mut impl Write, tag: char, line: &str) -> io::Result<()> {
    write!(out, "{tag}{line}")?;
    if !line.ends_with(['\n', '\r']) {
        out.write_all(b"\n\\ No newline at end of file\n")?;
    }
    Ok(())
}

/// A hunk header's range: `start,len`, 1-based, `start` alone for one line.
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => (start + 1).to_string(),
        _ => format!("{},{len}", start + 1),
    }
}

impl FileDiff {
    pub fn new(file: &str) -> Self {
        FileDiff {
            name: diff_name(file),
            old_line: 0,
            new_line: 0,
            before: VecDeque::new(),
            hunk: None,
            out: Spool::new(),
        }
    }

    /// The next document: its text as read and as fixed (the same text when unchanged).
    pub fn document(&mut self, old: &str, new: &str) -> io::Result<()> {
        let diff = similar::TextDiff::from_lines(old, new);
        for change in diff.iter_all_changes() {
            match change.tag() {
                similar::ChangeTag::Equal => self.unchanged(change.value())?,
                similar::ChangeTag::Delete => self.changed('-', change.value())?,
                similar::ChangeTag::Insert => self.changed('+', change.value())?,
            }
        }
        Ok(())
    }

    fn unchanged(&mut self, line: &str) -> io::Result<()> {
        self.old_line += 1;
        self.new_line += 1;
        let Some(hunk) = &mut self.hunk else {
            if self.before.len() == CONTEXT {
                self.before.pop_front();
            }
            self.before.push_back(line.to_string());
            return Ok(());
        };
        hunk.trailing.push(line.to_string());
        if hunk.trailing.len() > 2 * CONTEXT {
            self.close()?;
        }
        Ok(())
    }

    fn changed(&mut self, tag: char, line: &str) -> io::Result<()> {
        let hunk = match &mut self.hunk {
            Some(hunk) => {
                for l in hunk.trailing.drain(..) {
                    write_line(&mut hunk.body, ' ', &l)?;
                    hunk.old_len += 1;
                    hunk.new_len += 1;
                }
                hunk
            }
            None => {
                let mut hunk = Hunk {
                    old_start: self.old_line - self.before.len(),
                    new_start: self.new_line - self.before.len(),
                    old_len: self.before.len(),
                    new_len: self.before.len(),
                    body: Spool::new(),
                    trailing: Vec::new(),
                };
                for l in self.before.drain(..) {
                    write_line(&mut hunk.body, ' ', &l)?;
                }
                self.hunk.insert(hunk)
            }
        };
        write_line(&mut hunk.body, tag, line)?;
        if tag == '-' {
            hunk.old_len += 1;
            self.old_line += 1;
        } else {
            hunk.new_len += 1;
            self.new_line += 1;
        }
        Ok(())
    }

    /// Ends the open hunk with at most `CONTEXT` unchanged lines; the last of those after it
    /// become the context of the next.
    fn close(&mut self) -> io::Result<()> {
        let Some(mut hunk) = self.hunk.take() else {
            return Ok(());
        };
        let mut trailing = std::mem::take(&mut hunk.trailing);
        let rest = trailing.split_off(trailing.len().min(CONTEXT));
        for l in &trailing {
            write_line(&mut hunk.body, ' ', l)?;
            hunk.old_len += 1;
            hunk.new_len += 1;
        }
        let skip = rest.len().saturating_sub(CONTEXT);
        self.before = rest.into_iter().skip(skip).collect();
        if self.out.is_empty() {
            writeln!(self.out, "--- a/{}\n+++ b/{}", self.name, self.name)?;
        }
        writeln!(
            self.out,
            "@@ -{} +{} @@",
            range(hunk.old_start, hunk.old_len),
            range(hunk.new_start, hunk.new_len)
        )?;
        hunk.body.copy_to(&mut self.out)
    }

    /// Writes the diff to `out`; whether the file changed.
    pub fn finish(mut self, out: &mut impl Write) -> io::Result<bool> {
        self.close()?;
        if self.out.is_empty() {
            return Ok(false);
        }
        self.out.copy_to(out)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diff fed document by document, as `pidone fix --diff` does.
    fn streamed(docs: &[(&str, &str)]) -> String {
        let mut diff = FileDiff::new("dir/x.yaml");
        for (old, new) in docs {
            diff.document(old, new).unwrap();
        }
        let mut out = Vec::new();
        let changed = diff.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(changed, !text.is_empty());
        text
    }

    fn whole(docs: &[(&str, &str)]) -> String {
        let old: String = docs.iter().map(|d| d.0).collect();
        let new: String = docs.iter().map(|d| d.1).collect();
        unified_diff("dir/x.yaml", &old, &new)
    }

    fn lines(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix}{i}: x\n")).collect()
    }

    #[test]
    fn streamed_diff_is_the_diff_of_the_whole_file() {
        let a = lines("a", 20);
        let b = lines("b", 5);
        let c = lines("c", 12);
        // Between the changed lines of two `b_changed`: 2 + d's lines + 2 unchanged lines.
        let d2 = lines("d", 2);
        let d3 = lines("d", 3);
        let a_end = format!("{a}added: 1\n");
        let b_start = format!("inserted: 0\n{b}");
        let b_changed = b.replace("b2: x", "b2: y");
        let c_cut = c.replace("c0: x\n", "");
        let c_no_newline = c.trim_end().to_string();
        let c_no_newline_changed = c_no_newline.replace("c11: x", "c11: z");
        let cases: Vec<Vec<(&str, &str)>> = vec![
            // Nothing changed.
            vec![(&a, &a), (&b, &b)],
            // A change at the end of one document and the start of the next: one hunk.
            vec![(&a, &a_end), (&b, &b_start), (&c, &c)],
            // Changes far apart: two hunks; the context crosses document boundaries.
            vec![(&a, &a_end), (&a, &a), (&c, &c_cut)],
            vec![(&b, &b_changed), (&a, &a), (&b, &b_changed)],
            // Exactly twice the context between changes (one hunk), and one more line (two).
            vec![(&b, &b_changed), (&d2, &d2), (&b, &b_changed)],
            vec![(&b, &b_changed), (&d3, &d3), (&b, &b_changed)],
            // The first line, and a last line without a line break.
            vec![(&c, &c_cut), (&c_no_newline, &c_no_newline_changed)],
            vec![(&a, &a), (&c_no_newline, &c)],
            vec![(&a, &a), (&c, &c_no_newline)],
            // Whole documents added and removed.
            vec![(&a, &a), ("", &b), (&c, &c)],
            vec![(&a, ""), (&b, &b)],
        ];
        let mut hunks = Vec::new();
        for docs in &cases {
            let diff = streamed(docs);
            assert_eq!(diff, whole(docs), "{docs:?}");
            hunks.push(diff.lines().filter(|l| l.starts_with("@@ ")).count());
        }
        assert_eq!(hunks, [0, 1, 2, 2, 1, 2, 2, 1, 1, 1, 1]);
    }

    #[test]
    fn hunk_ranges_read_as_unified_diffs_write_them() {
        assert_eq!(range(0, 0), "0,0");
        assert_eq!(range(4, 0), "4,0");
        assert_eq!(range(4, 1), "5");
        assert_eq!(range(4, 7), "5,7");
    }
}
