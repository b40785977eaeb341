//! The audit's output written object by object as the input is read, so that memory follows
//! the largest object, not the stream. The bytes are those of the whole report rendered at
//! once (`table::render`, `serde_json::to_string_pretty`): the table prints each object's
//! block at once and its counts at the end; JSON and SARIF print each row as it comes, except
//! JSON's findings and ignored findings, which wait in spools (memory, then unlinked temporary
//! files) until the containers list before them is closed.

use crate::cli::report::Report;
use crate::cli::spool::Spool;
use crate::cli::table::{self, Totals};
use crate::engine::config::Action;
use std::io::{self, BufWriter, Write};

/// The formats that can be written as they come (reports are whole documents per namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    Table { verbose: bool },
    Json,
    Sarif,
}

/// Receives one object's rows at a time and writes them out.
pub struct Output<W: Write> {
    format: Streamed,
    out: BufWriter<W>,
    totals: Totals,
    max: Option<Action>,
    started: bool,
    /// Rows written to `out` so far (JSON containers, SARIF results).
    rows: usize,
    /// JSON: the finding and ignored rows, written out once the containers are.
    findings: Rows,
    ignored: Rows,
    /// SARIF: the document after the results list, and the indentation of that list.
    sarif_tail: String,
    sarif_indent: usize,
}

/// Rows held back, in a spool (memory, then an unlinked temporary file).
#[derive(Default)]
struct Rows {
    spool: Spool,
    count: usize,
}

impl Rows {
    fn push(&mut self, row: &impl serde::Serialize, indent: usize) -> io::Result<()> {
        write_row(&mut self.spool, self.count, row, indent)?;
        self.count += 1;
        Ok(())
    }
}

/// One element of a pretty-printed JSON list at `indent` spaces, after the separator that
/// `serde_json::to_string_pretty` puts before it.
fn write_row(
    out: &mut impl Write,
    index: usize,
    row: &impl serde::Serialize,
    indent: usize,
) -> io::Result<()> {
    let text = serde_json::to_string_pretty(row).map_err(io::Error::other)?;
    out.write_all(if index == 0 { b"\n" } else { b",\n" })?;
    // Pretty JSON escapes newlines inside strings: every line break is the printer's.
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.write_all(b"\n")?;
        }
        write!(out, "{:indent$}{line}", "")?;
    }
    Ok(())
}

/// The end of a pretty-printed list that started with `[` at `indent` spaces.
fn close_list(out: &mut impl Write, rows: usize, indent: usize) -> io::Result<()> {
    if rows == 0 {
        out.write_all(b"]")
    } else {
        write!(out, "\n{:indent$}]", "")
    }
}

impl<W: Write> Output<W> {
    pub fn new(format: Streamed, out: W) -> Self {
        Output {
            format,
            out: BufWriter::with_capacity(64 * 1024, out),
            totals: Totals::default(),
            max: None,
            started: false,
            rows: 0,
            findings: Rows::default(),
            ignored: Rows::default(),
            sarif_tail: String::new(),
            sarif_indent: 0,
        }
    }

    /// The most severe action of every finding written so far.
    pub fn max_action(&self) -> Option<Action> {
        self.max
    }

    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        match self.format {
            Streamed::Table { .. } => {}
            Streamed::Json => self.out.write_all(b"{\n  \"containers\": [")?,
            Streamed::Sarif => {
                let skeleton = serde_json::to_string_pretty(&crate::cli::sarif::document(vec![]))
                    .map_err(io::Error::other)?;
                let marker = "\"results\": [";
                let at = skeleton
                    .find(marker)
                    .ok_or_else(|| io::Error::other("the SARIF document has no results list"))?;
                let line_start = skeleton[..at].rfind('\n').map_or(0, |n| n + 1);
                self.sarif_indent = at - line_start;
                let (head, tail) = skeleton.split_at(at + marker.len());
                self.sarif_tail = tail.to_string();
                self.out.write_all(head.as_bytes())?;
            }
        }
        Ok(())
    }

    /// One object's rows (a report holding that object only).
    pub fn object(&mut self, report: &Report) -> io::Result<()> {
        self.start()?;
        self.totals.add(&report.containers, &report.findings);
        self.max = self.max.max(report.max_action());
        match self.format {
            Streamed::Table { verbose } => {
                let mut block = String::new();
                table::render_object(report, verbose, &mut block);
                self.out.write_all(block.as_bytes())?;
            }
            Streamed::Json => {
                for c in &report.containers {
                    write_row(&mut self.out, self.rows, c, 4)?;
                    self.rows += 1;
                }
                for f in &report.findings {
                    self.findings.push(f, 4)?;
                }
                for f in &report.ignored {
                    self.ignored.push(f, 4)?;
                }
            }
            Streamed::Sarif => {
                let indent = self.sarif_indent + 2;
                for f in &report.findings {
                    write_row(
                        &mut self.out,
                        self.rows,
                        &crate::cli::sarif::result(f),
                        indent,
                    )?;
                    self.rows += 1;
                }
            }
        }
        Ok(())
    }

    /// Closes the output (the table's counts, the JSON lists, the SARIF document) and flushes
    /// it.
    pub fn finish(mut self) -> io::Result<()> {
        self.start()?;
        match self.format {
            Streamed::Table { .. } => {
                let mut summary = String::new();
                table::render_summary(&self.totals, &mut summary);
                self.out.write_all(summary.as_bytes())?;
            }
            Streamed::Json => {
                close_list(&mut self.out, self.rows, 2)?;
                for (name, rows) in [
                    ("findings", std::mem::take(&mut self.findings)),
                    ("ignored", std::mem::take(&mut self.ignored)),
                ] {
                    write!(self.out, ",\n  \"{name}\": [")?;
                    rows.spool.copy_to(&mut self.out)?;
                    close_list(&mut self.out, rows.count, 2)?;
                }
                self.out.write_all(b"\n}\n")?;
            }
            Streamed::Sarif => {
                // The skeleton's list is empty: its tail starts with the `]` that closes it.
                if self.rows > 0 {
                    write!(self.out, "\n{:indent$}", "", indent = self.sarif_indent)?;
                }
                self.out.write_all(self.sarif_tail.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::Source;
    use crate::cli::report::{ContainerRow, FindingRow, Region};
    use crate::engine::launch::LaunchClass;
    use crate::engine::rules::RuleId;
    use crate::engine::workload::{ObjectRef, Section};

    fn finding(object: &ObjectRef, source: &Source, container: &str, rule: RuleId) -> FindingRow {
        FindingRow {
            object: object.clone(),
            source: source.clone(),
            container: container.into(),
            rule,
            action: if rule == RuleId::ShellNoExec {
                Action::Mutate
            } else {
                Action::Deny
            },
            message: "the shell stays PID 1 and \"quotes\"\nand a line break".into(),
            fix: "prefix the last command with exec".into(),
            region: Some(Region { line: 7, column: 9 }),
            confidence: None,
            evidence: vec!["one".into(), "two".into()],
        }
    }

    /// One object's rows: two containers, the findings asked for, and one ignored finding.
    fn object(name: &str, document: usize, rules: &[RuleId], ignored: bool) -> Report {
        let object = ObjectRef {
            kind: "Deployment".into(),
            namespace: document.is_multiple_of(2).then(|| "team".to_string()),
            name: name.into(),
        };
        let source = Source {
            file: "dir/x.yaml".into(),
            document,
            line: Some(3),
        };
        let container = |c: &str| ContainerRow {
            object: object.clone(),
            source: source.clone(),
            container: c.into(),
            section: Section::Containers,
            launch: LaunchClass::NoExec,
            scripts: Vec::new(),
        };
        Report {
            containers: vec![container("app"), container("sidecar")],
            findings: rules
                .iter()
                .map(|r| finding(&object, &source, "app", *r))
                .collect(),
            ignored: if ignored {
                vec![finding(&object, &source, "sidecar", RuleId::ShellNoExec)]
            } else {
                Vec::new()
            },
        }
    }

    fn streamed(format: Streamed, objects: &[Report]) -> (String, Option<Action>) {
        let mut buf = Vec::new();
        let mut out = Output::new(format, &mut buf);
        for o in objects {
            out.object(o).unwrap();
        }
        let max = out.max_action();
        out.finish().unwrap();
        (String::from_utf8(buf).unwrap(), max)
    }

    fn whole(objects: &[Report]) -> Report {
        let mut whole = Report::default();
        for o in objects {
            whole.containers.extend(o.containers.iter().cloned());
            whole.findings.extend(o.findings.iter().cloned());
            whole.ignored.extend(o.ignored.iter().cloned());
        }
        whole
    }

    #[test]
    fn streamed_output_is_byte_for_byte_the_whole_report() {
        let cases = [
            vec![],
            vec![object("quiet", 0, &[], false)],
            vec![object("p", 0, &[RuleId::ShellNoExec], false)],
            vec![
                object("p", 0, &[RuleId::ShellNoExec, RuleId::MultiProcess], true),
                object("q", 1, &[], false),
                object("r", 2, &[], true),
                object("s", 3, &[RuleId::MultiProcess], false),
            ],
            // Enough findings for the held-back rows to move to a temporary file.
            (0..2000)
                .map(|i| {
                    object(
                        &format!("o{i}"),
                        i,
                        &[RuleId::ShellNoExec],
                        i.is_multiple_of(3),
                    )
                })
                .collect(),
        ];
        for objects in &cases {
            let report = whole(objects);
            let (json, max) = streamed(Streamed::Json, objects);
            assert_eq!(
                json,
                serde_json::to_string_pretty(&report).unwrap() + "\n",
                "{} objects",
                objects.len()
            );
            assert_eq!(max, report.max_action());
            let (sarif, _) = streamed(Streamed::Sarif, objects);
            assert_eq!(
                sarif,
                serde_json::to_string_pretty(&crate::cli::sarif::render(&report)).unwrap() + "\n"
            );
            for verbose in [false, true] {
                let (text, _) = streamed(Streamed::Table { verbose }, objects);
                assert_eq!(text, table::render(&report, verbose));
            }
        }
    }
}
