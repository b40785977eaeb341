//! The audit's output written object by object as the input is read, so that memory does not
//! grow with the stream: the table prints each object's block at once; JSON and SARIF print
//! each row as soon as it exists (findings wait in an unlinked temporary file until the
//! containers are out, since JSON puts them in a later list).

use crate::cli::audit::Format;
use crate::cli::report::Report;
use crate::cli::table::{self, Totals};
use crate::engine::config::Action;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};

/// Receives one object's rows at a time and writes them out.
pub struct Output<W: Write> {
    format: Format,
    verbose: bool,
    out: BufWriter<W>,
    pub totals: Totals,
    max: Option<Action>,
    started: bool,
    /// JSON: finding and ignored rows, one per line, until the containers list is closed.
    findings: Option<Spill>,
    ignored: Option<Spill>,
    rows: usize,
    /// SARIF: the document around the results list.
    sarif_tail: String,
}

/// Lines kept in an anonymous temporary file.
struct Spill {
    file: BufWriter<File>,
    count: usize,
}

impl Spill {
    fn new() -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "pidone-audit-{}-{}.jsonl",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Unlinked at once: nothing is left behind, whatever happens to the process.
        std::fs::remove_file(&path)?;
        Ok(Spill {
            file: BufWriter::new(file),
            count: 0,
        })
    }

    fn push(&mut self, line: &str) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        self.file.write_all(b"    ")?;
        self.file.write_all(line.as_bytes())?;
        self.count += 1;
        Ok(())
    }

    fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        io::copy(&mut file, out)?;
        Ok(())
    }
}

fn json_line<T: serde::Serialize>(row: &T) -> io::Result<String> {
    serde_json::to_string(row).map_err(io::Error::other)
}

impl<W: Write> Output<W> {
    pub fn new(format: Format, verbose: bool, out: W) -> Self {
        Output {
            format,
            verbose,
            out: BufWriter::new(out),
            totals: Totals::default(),
            max: None,
            started: false,
            findings: None,
            ignored: None,
            rows: 0,
            sarif_tail: String::new(),
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
            Format::Table => {}
            Format::Json => {
                self.out.write_all(b"{\n  \"containers\": [")?;
                self.findings = Some(Spill::new()?);
                self.ignored = Some(Spill::new()?);
            }
            Format::Sarif => {
                let skeleton =
                    serde_json::to_string_pretty(&crate::cli::sarif::render(&Report::default()))
                        .map_err(io::Error::other)?;
                let marker = "\"results\": []";
                let at = skeleton
                    .find(marker)
                    .ok_or_else(|| io::Error::other("SARIF skeleton without results"))?;
                let head = &skeleton[..at + marker.len() - 1];
                self.sarif_tail = skeleton[at + marker.len() - 1..].to_string();
                self.out.write_all(head.as_bytes())?;
            }
        }
        Ok(())
    }

    /// One object's rows.
    pub fn object(&mut self, report: &Report) -> io::Result<()> {
        self.start()?;
        self.totals.add(report);
        self.max = self.max.max(report.max_action());
        match self.format {
            Format::Table => {
                let block = table::render_object(report, self.verbose);
                self.out.write_all(block.as_bytes())?;
            }
            Format::Json => {
                for c in &report.containers {
                    self.out
                        .write_all(if self.rows == 0 { b"\n    " } else { b",\n    " })?;
                    self.out.write_all(json_line(c)?.as_bytes())?;
                    self.rows += 1;
                }
                if let Some(spill) = self.findings.as_mut() {
                    for f in &report.findings {
                        spill.push(&json_line(f)?)?;
                    }
                }
                if let Some(spill) = self.ignored.as_mut() {
                    for f in &report.ignored {
                        spill.push(&json_line(f)?)?;
                    }
                }
            }
            Format::Sarif => {
                for f in &report.findings {
                    self.out
                        .write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
                    let result =
                        serde_json::to_string(&crate::cli::sarif::result(f)).map_err(io::Error::other)?;
                    self.out.write_all(result.as_bytes())?;
                    self.rows += 1;
                }
            }
        }
        Ok(())
    }

    /// Closes the output (the table's counts, the JSON lists, the SARIF document).
    pub fn finish(mut self) -> io::Result<()> {
        self.start()?;
        match self.format {
            Format::Table => {
                let summary = table::summary(&self.totals);
                self.out.write_all(summary.as_bytes())?;
            }
            Format::Json => {
                self.out.write_all(if self.rows == 0 { b"],\n" } else { b"\n  ],\n" })?;
                for (name, spill) in [("findings", self.findings.take()), ("ignored", self.ignored.take())] {
                    let Some(spill) = spill else { continue };
                    let empty = spill.count == 0;
                    write!(self.out, "  \"{name}\": [")?;
                    if !empty {
                        self.out.write_all(b"\n")?;
                        spill.copy_to(&mut self.out)?;
                        self.out.write_all(b"\n  ")?;
                    }
                    self.out
                        .write_all(if name == "findings" { b"],\n" } else { b"]\n" })?;
                }
                self.out.write_all(b"}\n")?;
            }
            Format::Sarif => {
                if self.rows > 0 {
                    self.out.write_all(b"\n")?;
                }
                let tail = std::mem::take(&mut self.sarif_tail);
                self.out.write_all(tail.as_bytes())?;
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
    use crate::cli::report::{ContainerRow, FindingRow};
    use crate::engine::launch::LaunchClass;
    use crate::engine::rules::RuleId;
    use crate::engine::workload::{ObjectRef, Section};
    use serde_json::Value;

    fn object(name: &str, finding: bool) -> Report {
        let object = ObjectRef {
            kind: "Pod".into(),
            namespace: None,
            name: name.into(),
        };
        let source = Source {
            file: "x.yaml".into(),
            document: 0,
            line: Some(1),
        };
        Report {
            containers: vec![ContainerRow {
                object: object.clone(),
                source: source.clone(),
                container: "a".into(),
                section: Section::Containers,
                launch: LaunchClass::NoExec,
            }],
            findings: if finding {
                vec![FindingRow {
                    object,
                    source,
                    container: "a".into(),
                    rule: RuleId::ShellNoExec,
                    action: Action::Mutate,
                    message: "m".into(),
                    fix: "f".into(),
                    region: None,
                }]
            } else {
                Vec::new()
            },
            ignored: Vec::new(),
        }
    }

    fn write(format: Format, objects: &[Report]) -> String {
        let mut buf = Vec::new();
        let mut out = Output::new(format, false, &mut buf);
        for o in objects {
            out.object(o).unwrap();
        }
        out.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn streamed_json_and_sarif_are_the_documents_they_were() {
        for objects in [vec![], vec![object("p", true)], vec![object("p", true), object("q", false), object("r", true)]] {
            let json: Value = serde_json::from_str(&write(Format::Json, &objects)).unwrap();
            let mut whole = Report::default();
            for o in &objects {
                whole.containers.extend(o.containers.clone());
                whole.findings.extend(o.findings.clone());
            }
            assert_eq!(json, serde_json::to_value(&whole).unwrap());
            let sarif: Value = serde_json::from_str(&write(Format::Sarif, &objects)).unwrap();
            assert_eq!(sarif, crate::cli::sarif::render(&whole));
            let table = write(Format::Table, &objects);
            assert_eq!(table, table::render(&whole, false));
        }
    }
}
