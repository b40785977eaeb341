//! Reading manifests for the offline commands: files, directories, stdin; multi-document YAML,
//! JSON, and `List` kinds (what `kubectl get -o yaml` and `helm template` print).
//!
//! A stream is read one document at a time (split at its `---` lines), so memory is bounded
//! by the largest document, and a broken document is reported while the rest of its file is
//! still read.

use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub file: String,
    /// 0-based index of the YAML document in the file.
    pub document: usize,
    /// 1-based line where the document starts, when known.
    #[serde(skip)]
    pub line: Option<u64>,
}

/// One object read from the input.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: Source,
    pub object: Value,
    /// JSON Pointer of the object within its document (`/items/3` in a `List`).
    pub pointer: String,
}

/// One document of a file, as written.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 0-based index in the file.
    pub index: usize,
    /// 1-based line of the document's first line in the file.
    pub line: usize,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: document {document}, line {line}: not valid YAML or JSON: {message}{}", hint(.template))]
    Syntax {
        file: String,
        document: usize,
        line: usize,
        message: String,
        /// The document holds `{{`: most likely a Helm template that was not rendered.
        template: bool,
    },
    #[error("{file}: document {document}, line {line}: {message}")]
    NotAnObject {
        file: String,
        document: usize,
        line: usize,
        message: String,
    },
}

fn hint(template: &bool) -> &'static str {
    if *template {
        " (this looks like an unrendered Helm template: run `helm template` on the chart and check its output)"
    } else {
        ""
    }
}

/// The files a path stands for: the file itself, or the YAML/JSON files under a directory.
pub fn expand(path: &str) -> Result<Vec<PathBuf>, InputError> {
    if path == "-" {
        return Ok(vec![PathBuf::from("-")]);
    }
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|error| InputError::Read {
        file: path.to_string(),
        error,
    })?;
    if !meta.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
        let entry = entry.map_err(|e| InputError::Read {
            file: path.to_string(),
            error: e.into(),
        })?;
        let ext = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        if entry.file_type().is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// The paths to read: those given, or stdin when none are given and stdin is not a terminal
/// (a terminal there means the user forgot the paths, not that they will type YAML).
pub fn paths_or_stdin(paths: &[String]) -> Result<Vec<String>, String> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    if std::io::stdin().is_terminal() {
        return Err(
            "no input: give manifest files or directories, or `-` to read manifests from stdin"
                .into(),
        );
    }
    Ok(vec!["-".into()])
}

/// Reads every object of one file (or stdin for `-`); the first error ends the reading.
pub fn read_file(path: &Path) -> Result<Vec<Manifest>, InputError> {
    let mut out = Vec::new();
    for doc in open(path)? {
        out.extend(manifests(&doc?)?);
    }
    Ok(out)
}

/// Stdin as something that can be read more than once: the ConfigMap pass and the
/// per-document pass both read it, and a pipe cannot be read twice. A regular file on stdin
/// (`< file`) is read where it is; a pipe is copied once into an unlinked temporary file, so
/// memory stays bounded by the largest document. When no temporary file can be made, the
/// stream is kept in memory.
enum Stdin {
    File { file: std::fs::File, start: u64 },
    Memory(Vec<u8>),
}

fn stdin() -> std::io::Result<&'static Stdin> {
    static STDIN: std::sync::OnceLock<Result<Stdin, (std::io::ErrorKind, String)>> =
        std::sync::OnceLock::new();
    STDIN
        .get_or_init(|| keep_stdin().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(kind, message)| std::io::Error::new(*kind, message.clone()))
}

fn keep_stdin() -> std::io::Result<Stdin> {
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;
    let mut own = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    if own.metadata()?.is_file() {
        let start = own.stream_position()?;
        return Ok(Stdin::File { file: own, start });
    }
    match tempfile::tempfile() {
        Ok(copy) => {
            let mut writer = std::io::BufWriter::with_capacity(64 * 1024, copy);
            std::io::copy(&mut own, &mut writer)?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            Ok(Stdin::File { file, start: 0 })
        }
        Err(_) => {
            let mut bytes = Vec::new();
            own.read_to_end(&mut bytes)?;
            Ok(Stdin::Memory(bytes))
        }
    }
}

/// Reads a shared file from an offset of its own (the file's position is not used, so
/// several passes can read it).
struct ReadAt {
    file: &'static std::fs::File,
    offset: u64,
}

impl std::io::Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Opens a file (or stdin for `-`) for reading document by document.
pub fn open(path: &Path) -> Result<Documents<Box<dyn BufRead>>, InputError> {
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        match stdin().map_err(|error| InputError::Read {
            file: name.clone(),
            error,
        })? {
            Stdin::File { file, start } => Box::new(BufReader::with_capacity(
                64 * 1024,
                ReadAt {
                    file,
                    offset: *start,
                },
            )),
            Stdin::Memory(bytes) => Box::new(std::io::Cursor::new(bytes.as_slice())),
        }
    } else {
        let file = std::fs::File::open(path).map_err(|error| InputError::Read {
            file: name.clone(),
            error,
        })?;
        Box::new(BufReader::with_capacity(64 * 1024, file))
    };
    Ok(Documents::new(name, reader))
}

/// The documents of a stream, split at `---` lines (a `---` or `...` at the start of a line
/// always ends a YAML document, even inside a block scalar). Comments before a file's first
/// `---` stay with the document that follows.
pub struct Documents<R> {
    file: String,
    reader: R,
    index: usize,
    /// 1-based number of the next line to read.
    line: usize,
    /// The first line of the next document, read while finding the end of the previous one.
    carry: Option<String>,
    done: bool,
}

impl<R: BufRead> Documents<R> {
    pub fn new(file: String, reader: R) -> Self {
        Documents {
            file,
            reader,
            index: 0,
            line: 1,
            carry: None,
            done: false,
        }
    }

    fn read_line(&mut self, buf: &mut String) -> Result<bool, InputError> {
        buf.clear();
        let n = self
            .reader
            .read_line(buf)
            .map_err(|error| InputError::Read {
                file: self.file.clone(),
                error,
            })?;
        if self.line == 1
            && let Some(rest) = buf.strip_prefix('\u{feff}')
        {
            *buf = rest.to_string();
        }
        Ok(n > 0)
    }
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Lines that are not content: blank, comments, directives.
fn is_prelude(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#') || line.starts_with('%')
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = Result<Document, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.line;
        let mut text = self.carry.take().unwrap_or_default();
        let mut has_marker = is_marker(&text, "---");
        let mut has_content = !text.is_empty() && !has_marker && !is_prelude(&text);
        if !text.is_empty() {
            self.line += 1;
        }
        let mut buf = String::new();
        loop {
            match self.read_line(&mut buf) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            if is_marker(&buf, "---") {
                if has_content || has_marker {
                    self.carry = Some(std::mem::take(&mut buf));
                    break;
                }
                has_marker = true;
                // Content may follow the marker on its line (`--- |`, `--- {a: 1}`).
                has_content =
                    !buf[3..].trim().is_empty() && !buf[3..].trim_start().starts_with('#');
            } else if is_marker(&buf, "...") {
                text.push_str(&buf);
                self.line += 1;
                break;
            } else if !is_prelude(&buf) {
                has_content = true;
            }
            text.push_str(&buf);
            self.line += 1;
        }
        if text.is_empty() && self.done {
            return None;
        }
        let doc = Document {
            file: self.file.clone(),
            index: self.index,
            line: start,
            text,
        };
        self.index += 1;
        Some(Ok(doc))
    }
}

/// Reads one document's text into a value, as YAML (or JSON, which is faster to read and
/// reports clearer errors for JSON). Errors are in pidone's words, with a 1-based line
/// relative to the document.
pub fn read_value(text: &str) -> Result<Value, (Option<usize>, String)> {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        return Ok(value);
    }
    // The budget scales with the document, so a large object parses while alias bombs and
    // the like stay bounded.
    let n = text.len();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 4;
    budget.max_nodes = n / 2 + 250_000;
    budget.max_events = n + 1_000_000;
    budget.max_total_scalar_bytes = n + 64 * 1024 * 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
            (line, describe(&e.to_string()))
        })?;
    let mut docs = docs.into_iter().filter(|v| !v.is_null());
    match (docs.next(), docs.next()) {
        (None, _) => Ok(Value::Null),
        (Some(v), None) => Ok(v),
        (Some(_), Some(_)) => Err((
            None,
            "more than one document without a `---` line between them".into(),
        )),
    }
}

/// The YAML reader's message in pidone's words: what is wrong, without the reader's settings.
fn describe(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let lower = first.to_ascii_lowercase();
    if lower.contains("duplicate") {
        return "a key appears twice in the same mapping (Kubernetes would keep only one of them)"
            .into();
    }
    if lower.contains("budget") || lower.contains("limit") && lower.contains("exceed") {
        return "the document is too large or nests too deeply for pidone to read".into();
    }
    if lower.contains("recursion") || lower.contains("depth") || lower.contains("nesting") {
        return "the document nests too deeply for pidone to read".into();
    }
    // Drop the reader's own position suffix: the caller names the line.
    let cut = [" at line ", " at char ", " at position "]
        .iter()
        .filter_map(|s| first.find(s))
        .min()
        .unwrap_or(first.len());
    let text = first[..cut].trim_end_matches([':', ' ', '.']);
    if text.is_empty() {
        "the YAML cannot be read".into()
    } else {
        text.to_string()
    }
}

/// Reads a document into its objects, `List` items flattened.
pub fn manifests(doc: &Document) -> Result<Vec<Manifest>, InputError> {
    let value = read_value(&doc.text).map_err(|(line, message)| InputError::Syntax {
        file: doc.file.clone(),
        document: doc.index,
        line: doc.line + line.unwrap_or(1) - 1,
        message,
        template: doc.text.contains("{{"),
    })?;
    let source = Source {
        file: doc.file.clone(),
        document: doc.index,
        line: Some(content_line(doc) as u64),
    };
    let mut out = Vec::new();
    objects(value, String::new(), &mut |pointer, object| {
        out.push(Manifest {
            source: source.clone(),
            object,
            pointer,
        })
    })
    .map_err(|message| InputError::NotAnObject {
        file: doc.file.clone(),
        document: doc.index,
        line: content_line(doc),
        message,
    })?;
    Ok(out)
}

/// The line of a document's first content (after its `---`, comments and blank lines).
pub fn content_line(doc: &Document) -> usize {
    let skipped = doc
        .text
        .lines()
        .take_while(|l| is_marker(l, "---") && l[3..].trim().is_empty() || is_prelude(l))
        .count();
    doc.line + skipped
}

/// Whether a document's text has a `---` line before its content.
pub fn starts_with_marker(text: &str) -> bool {
    text.lines()
        .find(|l| !is_prelude(l) || is_marker(l, "---"))
        .is_some_and(|l| is_marker(l, "---"))
}

/// Calls `f` with every object of a document value and its JSON Pointer there.
fn objects(value: Value, pointer: String, f: &mut dyn FnMut(String, Value)) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::Object(mut map) => {
            let is_list = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"));
            if is_list && let Some(Value::Array(items)) = map.remove("items") {
                for (i, item) in items.into_iter().enumerate() {
                    if item.is_object() {
                        f(format!("{pointer}/items/{i}"), item);
                    }
                }
                return Ok(());
            }
            f(pointer, Value::Object(map));
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                objects(item, format!("{pointer}/{i}"), f)?;
            }
            Ok(())
        }
        other => Err(format!(
            "expected a Kubernetes object (a mapping with apiVersion, kind, metadata), found {}",
            kind_of(&other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<Document> {
        Documents::new("x.yaml".into(), text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn parse(text: &str) -> Result<Vec<Manifest>, InputError> {
        let mut out = Vec::new();
        for d in split(text) {
            out.extend(manifests(&d)?);
        }
        Ok(out)
    }

    #[test]
    fn documents_split_at_markers_and_keep_every_byte() {
        let text = "# head\n---\nkind: A\n---\n# Source: b.yaml\nkind: B\n...\n---\n---\nkind: C\nx: |\n  ---not a marker\n";
        let docs = split(text);
        let joined: String = docs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(joined, text);
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[0].text, "# head\n---\nkind: A\n");
        assert_eq!(docs[1].line, 4);
        assert!(docs[1].text.ends_with("...\n"));
        assert_eq!(docs[2].text, "---\n");
        assert_eq!(docs[3].line, 9);
        assert_eq!(split("").len(), 0);
        assert_eq!(split("no newline").len(), 1);
    }

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\n---\nkind: List\nitems:\n  - {kind: Pod, metadata: {name: b}}\n  - {kind: Pod, metadata: {name: c}}\n";
        let m = parse(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].source.document, 0);
        assert_eq!(m[0].source.line, Some(1));
        assert_eq!(m[2].object["metadata"]["name"], "c");
        assert_eq!(m[2].pointer, "/items/1");
        assert_eq!(m[2].source.document, 2);
        assert_eq!(m[2].source.line, Some(5));
    }

    #[test]
    fn json_file() {
        let m = parse(r#"{"kind":"Pod","metadata":{"name":"a"}}"#).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn errors_name_file_document_line_and_templates() {
        let text = "kind: Pod\n---\nkind: Pod\nmetadata: {name: [\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("x.yaml: document 1, line "), "{e}");
        assert!(e.contains("not valid YAML"), "{e}");
        let e = parse("just a string\n").unwrap_err().to_string();
        assert!(
            e.contains("x.yaml: document 0, line 1: expected a Kubernetes object"),
            "{e}"
        );
        let e = parse("kind: Pod\nspec:\n  {{- if .Values.x }}\n  a: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("helm template"), "{e}");
        let e = parse("a: 1\na: 2\n").unwrap_err().to_string();
        assert!(e.contains("a key appears twice"), "{e}");
        assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    }
}
