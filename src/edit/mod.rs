//! Edits at the source: a document's text changed so that it reads as the fixed object,
//! every byte the change does not need left as written (comments, key order, quoting, flow
//! style, anchors, YAML 1.1 scalars such as `defaultMode: 0755`).
//!
//! The JSON Patch of a mutation says what changes; its paths are where the edits start. From
//! there the text's nodes are compared with the wanted values and only what differs is
//! touched: a word inserted in a script scalar, a container's own lines moved from one list to
//! another, an entry added at the end of a mapping. The result is read back and must equal the
//! patched object, or the document is left unchanged with an error.

mod render;
mod scalar;
pub mod tree;

use render::{Layout, Moves};
use serde_json::Value;
use similar::{Algorithm, DiffOp};
use std::collections::{HashMap, HashSet};
use tree::{Kind, Node, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot follow the document's structure: {0}")]
    Tree(#[from] TreeError),
    #[error("cannot change {pointer} where it is written: {why}")]
    Unsupported { pointer: String, why: &'static str },
    #[error("the edited text does not read back as the fixed object")]
    Unfaithful,
    #[error("the edited text cannot be read back: {0}")]
    ReadBack(String),
}

/// Rounds of edit-and-read-back: a moved container lands as it was written in the first,
/// its new fields (`restartPolicy`) are added in the second.
const ROUNDS: usize = 4;

/// `text` edited so that it reads as `target`, starting at the JSON Pointers a patch touched.
/// `read` reads a document's text the way the input was read.
pub fn edit_document(
    text: &str,
    target: &Value,
    pointers: &[String],
    read: impl Fn(&str) -> Result<Value, String>,
) -> Result<String, EditError> {
    let mut text = text.to_string();
    let crlf = text.contains("\r\n");
    for _ in 0..ROUNDS {
        let current = read(&text).map_err(EditError::ReadBack)?;
        if current == *target {
            return Ok(text);
        }
        let Some(root) = tree::parse(&text)? else {
            return Err(EditError::Unfaithful);
        };
        let starts = start_pointers(&root, target, pointers);
        let layout = layout(&text, &root);
        // First pass: which items are added; second: the text of the items that leave a
        // list to be added elsewhere (with the comments above them); third: the edits.
        let mut moving = HashSet::new();
        let mut moved = HashMap::new();
        let mut differ = Differ::new(&text, layout, HashMap::new());
        for pass in 0..3 {
            differ = Differ::new(&text, layout, std::mem::take(&mut moved));
            differ.moving = moving.clone();
            for p in &starts {
                differ.start(&root, p, &current, target)?;
            }
            if pass < 2 {
                moving = std::mem::take(&mut differ.moves.wanted);
                moved = std::mem::take(&mut differ.removed);
            }
        }
        if differ.edits.is_empty() {
            return Err(EditError::Unfaithful);
        }
        text = apply(&text, differ.edits, crlf)?;
    }
    let current = read(&text).map_err(EditError::ReadBack)?;
    if current == *target {
        Ok(text)
    } else {
        Err(EditError::Unfaithful)
    }
}

/// For each patched pointer, the deepest node that exists both in the text and in the
/// target (an `add` starts at the parent of what it adds, a `remove` at the parent of what
/// it removes); pointers under another one are dropped.
fn start_pointers(root: &Node, target: &Value, pointers: &[String]) -> Vec<String> {
    let mut starts: Vec<String> = pointers
        .iter()
        .map(|p| {
            let tokens = tree::tokens(p);
            let mut depth = tokens.len();
            loop {
                let prefix = join(&tokens[..depth]);
                if (root.pointer(&prefix).is_some() && target.pointer(&prefix).is_some())
                    || depth == 0
                {
                    return prefix;
                }
                depth -= 1;
            }
        })
        .collect();
    starts.sort();
    starts.dedup();
    let all = starts.clone();
    starts.retain(|p| {
        !all.iter()
            .any(|q| q != p && (q.is_empty() || p.starts_with(&format!("{q}/"))))
    });
    starts
}

fn join(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", crate::mutate::escape_token(t)))
        .collect()
}

/// How far the document indents a block sequence under its key (the first one found).
fn layout(text: &str, root: &Node) -> Layout {
    fn find(text: &str, node: &Node, depth: usize) -> Option<usize> {
        if depth > 64 {
            return None;
        }
        let Kind::Map(entries) = &node.kind else {
            if let Kind::Seq(items) = &node.kind {
                return items.iter().find_map(|i| find(text, i, depth + 1));
            }
            return None;
        };
        for e in entries {
            if let Kind::Seq(_) = e.value.kind
                && !e.value.flow
            {
                let key = column(text, e.key_node.start);
                let dash = dash_of(text, line_start(text, e.value.start), e.value.start)?;
                return Some(column(text, dash).saturating_sub(key));
            }
            if let Some(found) = find(text, &e.value, depth + 1) {
                return Some(found);
            }
        }
        None
    }
    Layout {
        sequence_indent: find(text, root, 0).unwrap_or(2).min(8),
    }
}

/// One replacement of a byte range (an insertion when the range is empty).
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(text: &str, mut edits: Vec<Edit>, crlf: bool) -> Result<String, EditError> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut last = 0;
    for e in edits {
        if e.start < last || e.end > text.len() {
            return Err(EditError::Unsupported {
                pointer: String::new(),
                why: "two changes overlap",
            });
        }
        out.push_str(&text[last..e.start]);
        if crlf {
            out.push_str(&e.text.replace("\r\n", "\n").replace('\n', "\r\n"));
        } else {
            out.push_str(&e.text);
        }
        last = e.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The text of an item that left a list, to be placed where the same item is added.
#[derive(Debug, Clone)]
struct Moved {
    /// From the dash (block) or the item's first byte (flow) to the end of its last line.
    text: String,
    column: usize,
    block: bool,
}

struct Differ<'t> {
    text: &'t str,
    layout: Layout,
    edits: Vec<Edit>,
    removed: HashMap<String, Moved>,
    moves: MoveTable,
    /// Identities of the items that are added elsewhere: their removal takes the comment
    /// lines right above them along.
    moving: HashSet<String>,
}

struct MoveTable {
    items: HashMap<String, Moved>,
    /// Identities of every item added somewhere (whether or not its text was found).
    wanted: HashSet<String>,
    /// Whether the place the item goes to is a block list.
    into_block: bool,
}

impl Moves for MoveTable {
    fn take(&mut self, value: &Value, column: usize) -> Option<String> {
        let key = identity(value);
        self.wanted.insert(key.clone());
        let moved = self.items.get(&key)?;
        let text = if self.into_block && moved.block {
            reindent(&moved.text, moved.column, column)?
        } else if !moved.block {
            let pad = if self.into_block {
                format!("{}- ", " ".repeat(column))
            } else {
                String::new()
            };
            format!("{pad}{}", moved.text)
        } else {
            return None;
        };
        self.items.remove(&key);
        Some(text)
    }
}

/// A list item's identity: a named object by its name, anything else by its value.
fn identity(value: &Value) -> String {
    match value.get("name").and_then(Value::as_str) {
        Some(name) if value.is_object() => format!("name:{name}"),
        _ => format!("value:{value}"),
    }
}

/// Lines after the first shifted from `from` to `to` columns; `None` when a line has less
/// indentation than it would lose.
fn reindent(text: &str, from: usize, to: usize) -> Option<String> {
    let mut out = " ".repeat(to);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if line.trim().is_empty() {
                out.push_str(line);
                continue;
            }
            if to >= from {
                out.push_str(&" ".repeat(to - from));
                out.push_str(line);
            } else {
                let cut = from - to;
                if !line.as_bytes().iter().take(cut).all(|b| *b == b' ') || line.len() < cut {
                    return None;
                }
                out.push_str(&line[cut..]);
            }
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

fn column(text: &str, offset: usize) -> usize {
    offset - line_start(text, offset)
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |p| p + 1)
}

/// Just past the line break that ends the line holding `offset` (or the end of the text).
fn after_line(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |p| offset + p + 1)
}

/// Just past the line a node ends on; a block scalar's range already ends after its line.
fn after_node_line(text: &str, end: usize) -> usize {
    if end > 0 && text.as_bytes()[end - 1] == b'\n' {
        end
    } else {
        after_line(text, end)
    }
}

/// The dash of a block sequence item: the first `-` after `from` that is not in a comment.
fn dash_of(text: &str, from: usize, item_start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < item_start {
        match bytes[i] {
            b'-' => return Some(i),
            b'#' => i = after_line(text, i),
            _ => i += 1,
        }
    }
    None
}

/// Only spaces between the line start and `offset`.
fn starts_its_line(text: &str, offset: usize) -> bool {
    text[line_start(text, offset)..offset]
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
}

fn unsupported(pointer: &str, why: &'static str) -> EditError {
    EditError::Unsupported {
        pointer: pointer.to_string(),
        why,
    }
}

impl<'t> Differ<'t> {
    fn new(text: &'t str, layout: Layout, moves: HashMap<String, Moved>) -> Self {
        Differ {
            text,
            layout,
            edits: Vec::new(),
            removed: HashMap::new(),
            moves: MoveTable {
                items: moves,
                wanted: HashSet::new(),
                into_block: true,
            },
            moving: HashSet::new(),
        }
    }

    fn start(
        &mut self,
        root: &Node,
        pointer: &str,
        current: &Value,
        target: &Value,
    ) -> Result<(), EditError> {
        let (Some(node), Some(cur), Some(want)) = (
            root.pointer(pointer),
            current.pointer(pointer),
            target.pointer(pointer),
        ) else {
            return Err(unsupported(
                pointer,
                "the text and the object disagree here",
            ));
        };
        self.node(node, pointer, cur, want)
    }

    fn node(&mut self, n: &Node, ptr: &str, cur: &Value, want: &Value) -> Result<(), EditError> {
        if cur == want {
            return Ok(());
        }
        match (&n.kind, cur, want) {
            (Kind::Shared, ..) => Err(unsupported(ptr, "it is an anchor or an alias")),
            (Kind::Map(entries), Value::Object(c), Value::Object(w)) => {
                self.mapping(n, entries, ptr, c, w)
            }
            (Kind::Seq(items), Value::Array(c), Value::Array(w)) => {
                self.sequence(n, items, ptr, c, w)
            }
            (Kind::Scalar(_), Value::String(c), Value::String(w)) => {
                let source = &self.text[n.start..n.end];
                let read = |candidate: &str| reads_as_string(candidate, w);
                match scalar::insert_in_place(source, c, w, read) {
                    Some(text) => {
                        self.edits.push(Edit {
                            start: n.start,
                            end: n.end,
                            text,
                        });
                        Ok(())
                    }
                    None => self.replace(n, want),
                }
            }
            _ => self.replace(n, want),
        }
    }

    /// The node's text replaced by the wanted value, written on one line.
    fn replace(&mut self, n: &Node, want: &Value) -> Result<(), EditError> {
        let mut text = render::inline(want, n.flow);
        let (start, end) = if n.start == n.end {
            // An empty (null) node: the value goes after the `:` or `-` before (or at) it.
            let before = self.text[..n.start].trim_end();
            let at = if before.ends_with(':') || before.ends_with('-') {
                before.len()
            } else if self.text[n.start..].starts_with(':') {
                n.start + 1
            } else {
                return Err(unsupported("", "an empty value without a key before it"));
            };
            text = self.after_key(at, want, n.flow);
            (at, at)
        } else {
            // Keep the line breaks a block scalar's range ends with.
            let source = &self.text[n.start..n.end];
            let keep = source.len() - source.trim_end().len();
            (n.start, n.end - keep)
        };
        self.edits.push(Edit { start, end, text });
        Ok(())
    }

    /// A value written after a key's `:` (or a dash) at `at`: a block mapping or list on the
    /// lines below in block context, one line otherwise.
    fn after_key(&mut self, at: usize, want: &Value, flow: bool) -> String {
        let line = &self.text[line_start(self.text, at)..at];
        let indent = line.len() - line.trim_start_matches(' ').len();
        self.moves.into_block = true;
        match want {
            Value::Object(map) if !flow && !map.is_empty() => map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "\n{}",
                        render::block_entry(k, v, indent + 2, self.layout, &mut self.moves)
                    )
                })
                .collect(),
            Value::Array(items) if !flow && !items.is_empty() => items
                .iter()
                .map(|v| {
                    let col = indent + self.layout.sequence_indent;
                    format!(
                        "\n{}",
                        render::block_item(v, col, self.layout, &mut self.moves)
                    )
                })
                .collect(),
            _ => format!(" {}", render::inline(want, flow)),
        }
    }

    fn mapping(
        &mut self,
        n: &Node,
        entries: &[tree::Entry],
        ptr: &str,
        c: &serde_json::Map<String, Value>,
        w: &serde_json::Map<String, Value>,
    ) -> Result<(), EditError> {
        if entries.len() != c.len() {
            return Err(unsupported(ptr, "merge keys or duplicate keys"));
        }
        for (i, e) in entries.iter().enumerate() {
            let Some(key) = &e.key else {
                return Err(unsupported(ptr, "a key that is not a string"));
            };
            let child = format!("{ptr}/{}", crate::mutate::escape_token(key));
            let Some(cv) = c.get(key) else {
                return Err(unsupported(ptr, "merge keys or duplicate keys"));
            };
            match w.get(key) {
                Some(wv) => self.node(&e.value, &child, cv, wv)?,
                None => self.remove_entry(n, entries, i, &child)?,
            }
        }
        let added: Vec<(&String, &Value)> = w.iter().filter(|(k, _)| !c.contains_key(*k)).collect();
        if added.is_empty() {
            return Ok(());
        }
        if self.is_flow_collection(n) {
            let mut text = String::new();
            for (k, v) in &added {
                if !text.is_empty() || !entries.is_empty() {
                    text.push_str(", ");
                }
                text.push_str(&format!(
                    "{}: {}",
                    render::json(&Value::String((*k).clone())),
                    render::json(v)
                ));
            }
            let at = entries.last().map_or(n.start + 1, |e| e.value.end);
            self.edits.push(Edit {
                start: at,
                end: at,
                text,
            });
            return Ok(());
        }
        let Some(first) = entries.first() else {
            return Err(unsupported(ptr, "an empty block mapping"));
        };
        let col = column(self.text, first.key_node.start);
        let end = entries
            .last()
            .map_or(n.end, |e| after_node_line(self.text, e.value.end));
        self.moves.into_block = true;
        for (k, v) in added {
            // A new `initContainers` goes right after `containers`, where the containers that
            // move into it were: the diff shows a key added, not lines moved.
            let after = (k == "initContainers")
                .then(|| {
                    entries
                        .iter()
                        .find(|e| e.key.as_deref() == Some("containers"))
                })
                .flatten();
            let at = after.map_or(end, |e| after_node_line(self.text, e.value.end));
            let mut text = String::new();
            if at == self.text.len() && !self.text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&render::block_entry(
                k,
                v,
                col,
                self.layout,
                &mut self.moves,
            ));
            text.push('\n');
            self.edits.push(Edit {
                start: at,
                end: at,
                text,
            });
        }
        Ok(())
    }

    fn is_flow_collection(&self, n: &Node) -> bool {
        matches!(self.text.as_bytes().get(n.start), Some(b'[' | b'{'))
    }

    fn remove_entry(
        &mut self,
        n: &Node,
        entries: &[tree::Entry],
        i: usize,
        ptr: &str,
    ) -> Result<(), EditError> {
        let e = &entries[i];
        if self.is_flow_collection(n) {
            let (start, end) =
                flow_removal(entries.iter().map(|e| (e.key_node.start, e.value.end)), i);
            self.edits.push(Edit {
                start,
                end,
                text: String::new(),
            });
            return Ok(());
        }
        if entries.len() == 1 || !starts_its_line(self.text, e.key_node.start) {
            return Err(unsupported(
                ptr,
                "the entry does not stand on lines of its own",
            ));
        }
        self.edits.push(Edit {
            start: line_start(self.text, e.key_node.start),
            end: after_node_line(self.text, e.value.end),
            text: String::new(),
        });
        Ok(())
    }

    fn sequence(
        &mut self,
        n: &Node,
        items: &[Node],
        ptr: &str,
        c: &[Value],
        w: &[Value],
    ) -> Result<(), EditError> {
        if items.len() != c.len() {
            return Err(unsupported(ptr, "the list and the object disagree"));
        }
        let old: Vec<String> = c.iter().map(identity).collect();
        let new: Vec<String> = w.iter().map(identity).collect();
        for op in similar::capture_diff_slices(Algorithm::Myers, &old, &new) {
            match op {
                DiffOp::Equal {
                    old_index,
                    new_index,
                    len,
                } => {
                    for k in 0..len {
                        let (o, nw) = (old_index + k, new_index + k);
                        self.node(&items[o], &format!("{ptr}/{o}"), &c[o], &w[nw])?;
                    }
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => {
                    for (o, value) in c.iter().enumerate().skip(old_index).take(old_len) {
                        self.remove_item(n, items, o, ptr, value)?;
                    }
                }
                DiffOp::Insert {
                    old_index,
                    new_index,
                    new_len,
                } => {
                    self.insert_items(n, items, old_index, &w[new_index..new_index + new_len], ptr)?
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    if old_len == new_len {
                        for k in 0..old_len {
                            let (o, nw) = (old_index + k, new_index + k);
                            self.node(&items[o], &format!("{ptr}/{o}"), &c[o], &w[nw])?;
                        }
                    } else {
                        for (o, value) in c.iter().enumerate().skip(old_index).take(old_len) {
                            self.remove_item(n, items, o, ptr, value)?;
                        }
                        self.insert_items(
                            n,
                            items,
                            old_index,
                            &w[new_index..new_index + new_len],
                            ptr,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn remove_item(
        &mut self,
        n: &Node,
        items: &[Node],
        i: usize,
        ptr: &str,
        value: &Value,
    ) -> Result<(), EditError> {
        let item = &items[i];
        if self.is_flow_collection(n) {
            let (start, end) = flow_removal(items.iter().map(|x| (x.start, x.end)), i);
            self.edits.push(Edit {
                start,
                end,
                text: String::new(),
            });
            self.removed.insert(
                identity(value),
                Moved {
                    text: self.text[item.start..item.end].to_string(),
                    column: column(self.text, item.start),
                    block: false,
                },
            );
            return Ok(());
        }
        if items.len() == 1 {
            return Err(unsupported(ptr, "removing the only item of a block list"));
        }
        let dash = self.dash(n, items, i, ptr)?;
        let end = after_node_line(self.text, item.end);
        let mut start = line_start(self.text, dash);
        let mut from = dash;
        if self.moving.contains(&identity(value)) {
            // Comment lines right above the item, at its indentation, describe it: they go
            // where it goes.
            let col = column(self.text, dash);
            let floor = if i == 0 {
                0
            } else {
                after_node_line(self.text, items[i - 1].end)
            };
            while start > floor {
                let above = line_start(self.text, start - 1);
                let line = &self.text[above..start - 1];
                let trimmed = line.trim_start_matches(' ');
                if !trimmed.starts_with('#') || line.len() - trimmed.len() != col {
                    break;
                }
                start = above;
                from = above + col;
            }
        }
        self.edits.push(Edit {
            start,
            end,
            text: String::new(),
        });
        self.removed.insert(
            identity(value),
            Moved {
                text: self.text[from..end]
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                column: column(self.text, dash),
                block: true,
            },
        );
        Ok(())
    }

    /// The dash of block item `i`, which must start its line.
    fn dash(&self, n: &Node, items: &[Node], i: usize, ptr: &str) -> Result<usize, EditError> {
        let from = if i == 0 {
            line_start(self.text, n.start)
        } else {
            items[i - 1].end
        };
        let Some(dash) = dash_of(self.text, from, items[i].start.max(from)) else {
            return Err(unsupported(ptr, "cannot find the item's dash"));
        };
        if !starts_its_line(self.text, dash) {
            return Err(unsupported(
                ptr,
                "the item does not stand on lines of its own",
            ));
        }
        Ok(dash)
    }

    fn insert_items(
        &mut self,
        n: &Node,
        items: &[Node],
        before: usize,
        values: &[Value],
        ptr: &str,
    ) -> Result<(), EditError> {
        if self.is_flow_collection(n) {
            self.moves.into_block = false;
            let texts: Vec<String> = values
                .iter()
                .map(|v| self.moves.take(v, 0).unwrap_or_else(|| render::json(v)))
                .collect();
            let joined = texts.join(", ");
            let (at, text) = match items.get(before) {
                _ if items.is_empty() => (n.start + 1, joined),
                Some(next) => (next.start, format!("{joined}, ")),
                None => (items[items.len() - 1].end, format!(", {joined}")),
            };
            self.edits.push(Edit {
                start: at,
                end: at,
                text,
            });
            return Ok(());
        }
        if items.is_empty() {
            return Err(unsupported(ptr, "an empty block list"));
        }
        let col = column(self.text, self.dash(n, items, 0, ptr)?);
        let at = if before < items.len() {
            line_start(self.text, self.dash(n, items, before, ptr)?)
        } else {
            after_node_line(self.text, items[items.len() - 1].end)
        };
        let mut text = String::new();
        if at == self.text.len() && !self.text.ends_with('\n') {
            text.push('\n');
        }
        self.moves.into_block = true;
        for v in values {
            text.push_str(&render::block_item(v, col, self.layout, &mut self.moves));
            text.push('\n');
        }
        self.edits.push(Edit {
            start: at,
            end: at,
            text,
        });
        Ok(())
    }
}

/// The range that removes entry `i` of a flow collection with its comma.
fn flow_removal(ranges: impl Iterator<Item = (usize, usize)>, i: usize) -> (usize, usize) {
    let ranges: Vec<(usize, usize)> = ranges.collect();
    let (start, end) = ranges[i];
    if ranges.len() == 1 {
        (start, end)
    } else if i + 1 < ranges.len() {
        (start, ranges[i + 1].0)
    } else {
        (ranges[i - 1].1, end)
    }
}

/// Whether a scalar's source text, standing alone as a mapping value, reads as `want`.
fn reads_as_string(source: &str, want: &str) -> bool {
    let doc = format!("k: {source}");
    serde_saphyr::from_str::<Value>(&doc)
        .ok()
        .and_then(|v| v.get("k").and_then(Value::as_str).map(|s| s == want))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Result<Value, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    fn edit(text: &str, target: &Value, pointers: &[&str]) -> String {
        let pointers: Vec<String> = pointers.iter().map(|p| p.to_string()).collect();
        edit_document(text, target, &pointers, read).unwrap()
    }

    const POD: &str = "\
# the shop's API
apiVersion: v1
kind: Pod
metadata:
  name: api   # keep me
  labels: {app: api, 'tier': \"web\"}
spec:
  containers:
  - name: app
    image: shop/api:1.2   # pinned
    command:
    - sh
    - -c
    - |
      cd /srv  # go there
      python -m api
  # the log shipper
  - name: shipper
    image: fluent-bit
    args: [\"-c\", '/etc/fb.conf']
  volumes:
  - name: config
    configMap: {name: c, defaultMode: 0755}
";

    #[test]
    fn exec_insert_touches_only_the_script_line() {
        let mut target = read(POD).unwrap();
        target["spec"]["containers"][0]["command"][2] =
            json!("cd /srv  # go there\nexec python -m api\n");
        let out = edit(POD, &target, &["/spec/containers/0/command/2"]);
        assert_eq!(
            out,
            POD.replace("      python -m api", "      exec python -m api")
        );
    }

    #[test]
    fn moved_container_keeps_its_lines_and_comments() {
        let mut target = read(POD).unwrap();
        let mut shipper = target["spec"]["containers"][1].clone();
        shipper["restartPolicy"] = json!("Always");
        target["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        target["spec"]["initContainers"] = json!([shipper]);
        target["metadata"]["annotations"] = json!({"pidone.io/mutations": "sidecar:shipper"});
        let out = edit(
            POD,
            &target,
            &[
                "/spec/containers",
                "/spec/initContainers",
                "/metadata/annotations",
            ],
        );
        assert_eq!(read(&out).unwrap(), target);
        for line in POD.lines() {
            assert!(out.contains(line), "lost {line:?} in\n{out}");
        }
        // The new list sits where the container was, its comment with it: the diff is two
        // added lines and the annotation.
        let expected = POD
            .replace("  # the log shipper\n", "  initContainers:\n  # the log shipper\n")
            .replace("'/etc/fb.conf']\n", "'/etc/fb.conf']\n    restartPolicy: Always\n")
            .replace("  labels: {app: api, 'tier': \"web\"}\n", "  labels: {app: api, 'tier': \"web\"}\n  annotations:\n    pidone.io/mutations: sidecar:shipper\n");
        assert_eq!(out, expected);
        assert!(out.contains("defaultMode: 0755"));
    }

    #[test]
    fn flow_and_json_documents_stay_flow() {
        let text = "{\"kind\": \"Pod\", \"metadata\": {\"name\": \"p\"},\n \"spec\": {\"containers\": [{\"name\": \"a\", \"command\": [\"sh\", \"-c\", \"cd /x; run\"]}]}}\n";
        let mut target = read(text).unwrap();
        target["spec"]["containers"][0]["command"][2] = json!("cd /x; exec run");
        target["metadata"]["annotations"] = json!({"pidone.io/mutations": "exec:a"});
        let out = edit(
            text,
            &target,
            &["/spec/containers/0/command/2", "/metadata/annotations"],
        );
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), target);
        assert!(out.contains("\"cd /x; exec run\""), "{out}");
    }

    #[test]
    fn aliases_are_refused_not_broken() {
        let text = "base: &b [sh, -c, run]\nspec: {command: *b}\n";
        let mut target = read(text).unwrap();
        target["spec"]["command"][2] = json!("exec run");
        let e = edit_document(text, &target, &["/spec/command/2".to_string()], read).unwrap_err();
        assert!(matches!(e, EditError::Unsupported { .. }), "{e}");
    }
}

#[cfg(test)]
mod null_tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Result<Value, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn null_annotations_get_a_value() {
        let text = "metadata:\n  labels:\n    a: b\n  annotations:\n    \nspec:\n  x: 1\n";
        let mut target = read(text).unwrap();
        target["metadata"]["annotations"] = json!({"pidone.io/mutations": "exec:a"});
        let out = edit_document(text, &target, &["/metadata/annotations".into()], read).unwrap();
        assert_eq!(read(&out).unwrap(), target);
        assert_eq!(
            out,
            text.replace(
                "  annotations:\n",
                "  annotations:\n    pidone.io/mutations: exec:a\n"
            )
        );
    }
}
