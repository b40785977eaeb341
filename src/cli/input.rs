//! Reading manifests for the offline commands: files, directories, stdin; multi-document YAML,
//! JSON, and `List` kinds (what `kubectl get -o yaml` and `helm template` print).

use serde::Serialize;
use serde_json::Value;
use std::io::Read;
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
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: document {document}: not valid YAML or JSON: {message}")]
    Syntax {
        file: String,
        document: usize,
        message: String,
    },
    #[error("{file}: document {document}: {message}")]
    NotAnObject {
        file: String,
        document: usize,
        message: String,
    },
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

/// Reads one file (or stdin for `-`) into its objects, `List` items flattened.
pub fn read_file(path: &Path) -> Result<Vec<Manifest>, InputError> {
    let name = path.display().to_string();
    let mut text = String::new();
    let read = if name == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|error| InputError::Read {
        file: name.clone(),
        error,
    })?;
    parse_text(&name, &text)
}

/// Parses a stream of YAML (or JSON) documents.
pub fn parse_text(file: &str, text: &str) -> Result<Vec<Manifest>, InputError> {
    let mut out = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one value (an object or an array of objects). YAML would accept it too, but
        // serde_json is faster and its errors are clearer for JSON.
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            push_document(file, 0, Some(1), value, &mut out)?;
            return Ok(out);
        }
    }
    // The whole-input budget scales with the input, so a large `helm template` stream parses
    // while alias bombs and the like stay bounded.
    let n = text.len();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = n / 16 + 1024;
    budget.max_nodes = n / 2 + 250_000;
    budget.max_events = n + 1_000_000;
    budget.max_total_scalar_bytes = n + 64 * 1024 * 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize);
            InputError::Syntax {
                file: file.to_string(),
                document: document_at(text, line),
                message: first_line(&e.to_string()),
            }
        })?;
    for (document, doc) in docs.into_iter().enumerate() {
        let line = doc.referenced.line();
        push_document(
            file,
            document,
            (line > 0).then_some(line),
            doc.value,
            &mut out,
        )?;
    }
    Ok(out)
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// The index of the document that holds `line` (1-based), counting document separators.
fn document_at(text: &str, line: Option<usize>) -> usize {
    let Some(line) = line else { return 0 };
    let mut document = 0;
    let mut content = false;
    for l in text.lines().take(line.saturating_sub(1)) {
        if l.starts_with("---") {
            document += usize::from(content);
            content = false;
        } else if !(l.trim().is_empty() || l.trim_start().starts_with('#')) {
            content = true;
        }
    }
    document
}

fn push_document(
    file: &str,
    document: usize,
    line: Option<u64>,
    value: Value,
    out: &mut Vec<Manifest>,
) -> Result<(), InputError> {
    let source = Source {
        file: file.to_string(),
        document,
        line,
    };
    match value {
        Value::Null => Ok(()),
        Value::Object(ref map) => {
            let is_list = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"));
            if is_list && let Some(Value::Array(items)) = map.get("items") {
                for item in items {
                    if item.is_object() {
                        out.push(Manifest {
                            source: source.clone(),
                            object: item.clone(),
                        });
                    }
                }
                return Ok(());
            }
            out.push(Manifest {
                source,
                object: value,
            });
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                push_document(file, document, line, item, out)?;
            }
            Ok(())
        }
        other => Err(InputError::NotAnObject {
            file: file.to_string(),
            document,
            message: format!(
                "expected a Kubernetes object (a mapping), found {}",
                kind_of(&other)
            ),
        }),
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

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\n---\nkind: List\nitems:\n  - {kind: Pod, metadata: {name: b}}\n  - {kind: Pod, metadata: {name: c}}\n";
        let m = parse_text("x.yaml", text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].source.document, 0);
        assert_eq!(m[0].source.line, Some(1));
        assert_eq!(m[2].object["metadata"]["name"], "c");
    }

    #[test]
    fn json_file() {
        let m = parse_text("x.json", r#"{"kind":"Pod","metadata":{"name":"a"}}"#).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn errors_name_file_and_document() {
        let text = "kind: Pod\n---\nkind: Pod\nmetadata: {name: [\n";
        let e = parse_text("bad.yaml", text).unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml: document 1: not valid YAML"), "{e}");
        let e = parse_text("s.yaml", "just a string\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.yaml: document 0: expected a Kubernetes object"),
            "{e}"
        );
    }
}
