//! `--format table`: findings grouped by object, readable in an 80-column terminal.

use crate::cli::report::{ContainerRow, FindingRow, Report};
use crate::engine::config::Action;
use std::fmt::Write;

const WIDTH: usize = 80;

/// Greedy word wrap to `width` columns with an indent.
fn wrap(text: &str, indent: usize, width: usize, out: &mut String) {
    let room = width.saturating_sub(indent).max(20);
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > room {
            let _ = writeln!(out, "{:indent$}{line}", "");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
}

/// The counts under the table, added up object by object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub objects: usize,
    pub containers: usize,
    pub findings: usize,
    pub deny: usize,
    pub mutate: usize,
    pub warn: usize,
}

impl Totals {
    /// Adds the rows of one object (an object without containers is not counted: the table
    /// has nothing to show for it).
    pub fn add(&mut self, containers: &[ContainerRow], findings: &[FindingRow]) {
        if !containers.is_empty() {
            self.objects += 1;
        }
        self.containers += containers.len();
        self.findings += findings.len();
        for f in findings {
            match f.action {
                Action::Deny => self.deny += 1,
                Action::Mutate => self.mutate += 1,
                Action::Warn => self.warn += 1,
                Action::Ignore => {}
            }
        }
    }
}

/// The whole table of a report held in memory.
pub fn render(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let mut totals = Totals::default();
    let containers = &report.containers;
    // Containers and findings are appended object by object, in the same order.
    let mut i = 0;
    let mut f = 0;
    while i < containers.len() {
        let first = &containers[i];
        let same = |c: &ContainerRow| c.object == first.object && c.source == first.source;
        let end = containers[i..]
            .iter()
            .position(|c| !same(c))
            .map_or(containers.len(), |n| i + n);
        let fend = report.findings[f..]
            .iter()
            .position(|x| !(x.object == first.object && x.source == first.source))
            .map_or(report.findings.len(), |n| f + n);
        let object = Report {
            containers: containers[i..end].to_vec(),
            findings: report.findings[f..fend].to_vec(),
            ignored: report
                .ignored
                .iter()
                .filter(|x| x.object == first.object && x.source == first.source)
                .cloned()
                .collect(),
        };
        totals.add(&object.containers, &object.findings);
        render_object(&object, verbose, &mut out);
        i = end;
        f = fend;
    }
    render_summary(&totals, &mut out);
    out
}

/// The block of one object: `report` holds the rows of that object only.
pub fn render_object(report: &Report, verbose: bool, out: &mut String) {
    let Some(first) = report.containers.first() else {
        return;
    };
    if !verbose && report.findings.is_empty() {
        return;
    }
    let ns = first
        .object
        .namespace
        .as_deref()
        .map(|n| format!("{n}/"))
        .unwrap_or_default();
    let title = format!("{} {ns}{}", first.object.kind, first.object.name);
    let source = format!("({}#{})", first.source.file, first.source.document);
    if title.chars().count() + 2 + source.chars().count() <= WIDTH {
        let _ = writeln!(out, "{title}  {source}");
    } else {
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "  {}", truncate(&source, WIDTH - 2));
    }
    for c in &report.containers {
        let mine: Vec<_> = report
            .findings
            .iter()
            .filter(|x| x.container == c.container)
            .collect();
        // Findings `pidone.io/ignore` switched off: shown with -v, never as `ok`.
        let ignored: Vec<_> = report
            .ignored
            .iter()
            .filter(|x| verbose && x.container == c.container)
            .collect();
        if mine.is_empty() && ignored.is_empty() {
            if verbose {
                let _ = writeln!(out, "  {:<24} {:<14} ok", c.container, c.launch.as_str());
            }
            continue;
        }
        for (n, finding) in mine.iter().enumerate() {
            let (name, launch) = if n == 0 {
                (c.container.as_str(), c.launch.as_str())
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "  {:<24} {:<14} {:<18} {}",
                truncate(name, 24),
                launch,
                finding.rule.as_str(),
                finding.action.as_str()
            );
            wrap(&finding.message, 6, WIDTH, out);
            wrap(&format!("fix: {}", finding.fix), 6, WIDTH, out);
        }
        for (n, finding) in ignored.iter().enumerate() {
            let (name, launch) = if n == 0 && mine.is_empty() {
                (c.container.as_str(), c.launch.as_str())
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "  {:<24} {:<14} {}",
                truncate(name, 24),
                launch,
                finding.rule.as_str(),
            );
            wrap("ignored (pidone.io/ignore)", 6, WIDTH, out);
        }
    }
    out.push('\n');
}

/// The counts line (and the pointer to `pidone explain` when there are findings).
pub fn render_summary(totals: &Totals, out: &mut String) {
    let _ = writeln!(
        out,
        "{} objects, {} containers, {} findings ({} deny, {} mutate, {} warn)",
        totals.objects, totals.containers, totals.findings, totals.deny, totals.mutate, totals.warn
    );
    if totals.findings > 0 {
        let _ = writeln!(
            out,
            "Run `pidone explain <rule>` for why each rule matters and how to fix it."
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_fits_width() {
        let mut out = String::new();
        wrap(&"word ".repeat(60), 6, 80, &mut out);
        assert!(out.lines().all(|l| l.len() <= 80));
        assert!(out.lines().count() > 1);
    }
}
