//! One YAML (or JSON) document as a tree of byte ranges: where each node, key and item sits in
//! the text, so that an edit replaces exactly the bytes it changes and nothing else.

use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle, Span};

/// A node and where its content is in the document text.
#[derive(Debug, Clone)]
pub struct Node {
    /// Byte offset where the node's content starts: the first key or dash of a block
    /// collection, the bracket of a flow collection, the first byte of a scalar (its quote or
    /// block indicator included).
    pub start: usize,
    /// Byte offset just past the content: past the last child of a block collection, past the
    /// closing bracket of a flow collection, past the scalar.
    pub end: usize,
    /// Inside a flow collection (or a flow collection itself): edits must be flow syntax.
    pub flow: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(ScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// An alias (`*name`) or an anchored node: editing it would change more than one place.
    Shared,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// The key's text after YAML processing; `None` for keys that are not scalars.
    pub key: Option<String>,
    pub key_node: Node,
    pub value: Node,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{0}")]
    Syntax(String),
    #[error("the document nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the document has no positions for its nodes")]
    NoPositions,
    #[error("the text holds more than one document")]
    SeveralDocuments,
}

const MAX_DEPTH: usize = 256;

type Events<'a> = std::iter::Peekable<Parser<'a, granit_parser::StrInput<'a>>>;

/// Parses one document; `None` for a document without content (comments only, or `---`).
pub fn parse(text: &str) -> Result<Option<Node>, TreeError> {
    let mut events: Events<'_> = Parser::new_from_str(text).peekable();
    let mut root = None;
    while let Some(item) = events.next() {
        let (event, span) = item.map_err(|e| TreeError::Syntax(e.to_string()))?;
        match event {
            Event::StreamStart
            | Event::DocumentEnd
            | Event::StreamEnd
            | Event::Comment(..)
            | Event::Anchor(..) => {}
            Event::DocumentStart(..) => {
                if root.is_some() {
                    // A second document: only a single one is edited at a time.
                    if !matches!(
                        events.peek(),
                        Some(Ok((Event::StreamEnd | Event::DocumentEnd, _)))
                    ) {
                        return Err(TreeError::SeveralDocuments);
                    }
                }
            }
            _ => {
                if root.is_some() {
                    return Err(TreeError::SeveralDocuments);
                }
                root = Some(node(text, event, span, &mut events, false, 0)?);
            }
        }
    }
    Ok(root)
}

fn range(span: &Span) -> Result<(usize, usize), TreeError> {
    span.byte_range()
        .map(|r| (r.start, r.end))
        .ok_or(TreeError::NoPositions)
}

fn node(
    text: &str,
    event: Event<'_>,
    span: Span,
    events: &mut Events<'_>,
    in_flow: bool,
    depth: usize,
) -> Result<Node, TreeError> {
    if depth > MAX_DEPTH {
        return Err(TreeError::TooDeep);
    }
    let (start, end) = range(&span)?;
    match event {
        Event::Scalar(_, style, anchor, _) => {
            let (start, end) = match style {
                ScalarStyle::Literal | ScalarStyle::Folded => block_scalar_range(text, start, end),
                _ => (start, end),
            };
            Ok(Node {
                start,
                end,
                flow: in_flow,
                kind: if anchor == 0 {
                    Kind::Scalar(style)
                } else {
                    Kind::Shared
                },
            })
        }
        Event::Alias(_) | Event::UnresolvedAlias(_) => Ok(Node {
            start,
            end,
            flow: in_flow,
            kind: Kind::Shared,
        }),
        Event::SequenceStart(style, anchor, _) => {
            let flow = in_flow || style == granit_parser::StructureStyle::Flow;
            let mut items = Vec::new();
            let close = loop {
                let (event, span) = next(events)?;
                match event {
                    Event::SequenceEnd => break span,
                    Event::Comment(..) | Event::Anchor(..) => {}
                    e => items.push(node(text, e, span, events, flow, depth + 1)?),
                }
            };
            let (start, end) = collection_range(start, &close, flow, items.last())?;
            Ok(Node {
                start,
                end,
                flow,
                kind: if anchor == 0 {
                    Kind::Seq(items)
                } else {
                    Kind::Shared
                },
            })
        }
        Event::MappingStart(style, anchor, _) => {
            let flow = in_flow || style == granit_parser::StructureStyle::Flow;
            let mut entries = Vec::new();
            let close = loop {
                let (event, span) = next(events)?;
                match event {
                    Event::MappingEnd => break span,
                    Event::Comment(..) | Event::Anchor(..) => {}
                    e => {
                        let key = match &e {
                            Event::Scalar(text, ..) => Some(text.to_string()),
                            _ => None,
                        };
                        let key_node = node(text, e, span, events, flow, depth + 1)?;
                        let (event, span) = next_node(events)?;
                        let value = node(text, event, span, events, flow, depth + 1)?;
                        entries.push(Entry {
                            key,
                            key_node,
                            value,
                        });
                    }
                }
            };
            let last = entries.last().map(|e| &e.value);
            let (start, end) = collection_range(start, &close, flow, last)?;
            Ok(Node {
                start,
                end,
                flow,
                kind: if anchor == 0 {
                    Kind::Map(entries)
                } else {
                    Kind::Shared
                },
            })
        }
        _ => Err(TreeError::Syntax("unexpected event".into())),
    }
}

/// A block scalar from its `|` or `>` header (the parser's range starts at the content) to
/// the line break after its last line (the parser's range runs into the next line's indent).
fn block_scalar_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let end = start + text[start..end].trim_end_matches([' ', '\t']).len();
    let content_line = text[..start].rfind('\n').map_or(0, |p| p + 1);
    // The header is the last `|` or `>` before the content's first line, outside a comment.
    let mut header = None;
    let mut line_end = content_line;
    while header.is_none() && line_end > 0 {
        let line_begin = text[..line_end - 1].rfind('\n').map_or(0, |p| p + 1);
        let line = &text[line_begin..line_end - 1];
        let code = line.find(" #").map_or(line, |p| &line[..p]);
        header = code.rfind(['|', '>']).map(|p| line_begin + p);
        if !line.trim().is_empty() {
            break;
        }
        line_end = line_begin;
    }
    (header.unwrap_or(start), end)
}

/// A block collection ends with its last child (the end event sits wherever the next token
/// is); a flow collection ends with its closing bracket.
fn collection_range(
    start: usize,
    close: &Span,
    flow: bool,
    last: Option<&Node>,
) -> Result<(usize, usize), TreeError> {
    let (_, close_end) = range(close)?;
    if flow {
        return Ok((start, close_end.max(start)));
    }
    Ok((start, last.map_or(start, |n| n.end.max(start))))
}

fn next<'a>(events: &mut Events<'a>) -> Result<(Event<'a>, Span), TreeError> {
    match events.next() {
        Some(Ok(x)) => Ok(x),
        Some(Err(e)) => Err(TreeError::Syntax(e.to_string())),
        None => Err(TreeError::Syntax("the document ends early".into())),
    }
}

/// The next event that is a node (comments and anchor metadata skipped).
fn next_node<'a>(events: &mut Events<'a>) -> Result<(Event<'a>, Span), TreeError> {
    loop {
        let (event, span) = next(events)?;
        if !matches!(event, Event::Comment(..) | Event::Anchor(..)) {
            return Ok((event, span));
        }
    }
}

impl Node {
    /// The child at one JSON Pointer reference token (already unescaped).
    pub fn child(&self, token: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|e| e.key.as_deref() == Some(token))
                .map(|e| &e.value),
            Kind::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            Kind::Scalar(_) | Kind::Shared => None,
        }
    }

    /// The node at a JSON Pointer, or `None` when some part of it is absent.
    pub fn pointer(&self, pointer: &str) -> Option<&Node> {
        let mut node = self;
        for token in tokens(pointer) {
            node = node.child(&token)?;
        }
        Some(node)
    }
}

impl Node {
    /// The key node of the entry a JSON Pointer ends at (`command` in `.../command`), when its
    /// parent is a mapping.
    pub fn key_of(&self, pointer: &str) -> Option<&Node> {
        let tokens = tokens(pointer);
        let (last, parents) = tokens.split_last()?;
        let mut node = self;
        for token in parents {
            node = node.child(token)?;
        }
        match &node.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|e| e.key.as_deref() == Some(last.as_str()))
                .map(|e| &e.key_node),
            _ => None,
        }
    }
}

/// The unescaped reference tokens of a JSON Pointer (RFC 6901).
pub fn tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = text
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count())
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice<'t>(text: &'t str, n: &Node) -> &'t str {
        &text[n.start..n.end]
    }

    #[test]
    fn ranges_of_block_and_flow_nodes() {
        let text = "# head\nkind: Pod # trailing\nspec:\n  containers:\n  - name: a\n    args: [x, \"y z\"]\n    command:\n    - |\n      echo hi\n      exec app\n  - {name: b}\n";
        let root = parse(text).unwrap().unwrap();
        assert_eq!(slice(text, root.pointer("/kind").unwrap()), "Pod");
        let list = root.pointer("/spec/containers").unwrap();
        // A block list starts at its first item's content (the dash is found from there).
        assert!(slice(text, list).starts_with("name: a"));
        assert!(slice(text, list).ends_with("{name: b}"));
        let args = root.pointer("/spec/containers/0/args").unwrap();
        assert_eq!(slice(text, args), "[x, \"y z\"]");
        assert!(args.flow);
        assert_eq!(
            slice(text, root.pointer("/spec/containers/0/args/1").unwrap()),
            "\"y z\""
        );
        let script = root.pointer("/spec/containers/0/command/0").unwrap();
        assert!(
            slice(text, script).starts_with('|'),
            "{:?}",
            slice(text, script)
        );
        assert!(slice(text, script).contains("exec app"));
        assert!(root.pointer("/spec/containers/2").is_none());
    }

    #[test]
    fn anchors_and_aliases_are_shared() {
        let text = "a: &x {k: v}\nb: *x\n";
        let root = parse(text).unwrap().unwrap();
        assert!(matches!(root.pointer("/a").unwrap().kind, Kind::Shared));
        assert!(matches!(root.pointer("/b").unwrap().kind, Kind::Shared));
    }

    #[test]
    fn empty_and_several_documents() {
        assert!(parse("# only a comment\n").unwrap().is_none());
        assert!(matches!(
            parse("a: 1\n---\nb: 2\n"),
            Err(TreeError::SeveralDocuments)
        ));
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
