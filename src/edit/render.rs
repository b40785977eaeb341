//! Text for values that are new to a document. Scalars and nested collections are written by
//! serde-saphyr (which quotes every string a YAML 1.1 reader would take for something else,
//! `yes`, `0755`...); this module only places that text at the document's indentation. In a
//! flow collection or a JSON document new values are JSON, which both read alike.

use serde_json::Value;

/// A value written on one line, valid wherever a flow node may stand: in a flow collection,
/// as a block mapping value, as a block sequence item.
pub fn inline(value: &Value, flow: bool) -> String {
    match value {
        Value::String(s) if !flow && !s.contains(['\n', '\r']) => {
            let text = yaml(value);
            if text.lines().count() == 1 {
                text
            } else {
                json(value)
            }
        }
        _ => json(value),
    }
}

pub fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// serde-saphyr's block text of a value, without the final line break.
fn yaml(value: &Value) -> String {
    let options = serde_saphyr::ser_options! {
        indent_step: 2,
        compact_list_indent: true,
    };
    let text = serde_saphyr::to_string_with_options(value, options).unwrap_or_else(|_| json(value));
    text.trim_end_matches('\n').to_string()
}

/// Layout of the surrounding document: how far a sequence under a key is indented.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Columns from a key to the dashes of its block sequence (0: `key:\n- item`).
    pub sequence_indent: usize,
}

/// A source text that can stand for a new item: a container moved from another list.
pub trait Moves {
    /// The moved item's text (from its dash to the end of its last line) placed at `column`.
    fn take(&mut self, value: &Value, column: usize) -> Option<String>;
}

/// A block sequence item whose dash is at `column`, without the final line break.
pub fn block_item(value: &Value, column: usize, layout: Layout, moves: &mut dyn Moves) -> String {
    if let Some(text) = moves.take(value, column) {
        return text;
    }
    let pad = " ".repeat(column);
    let body = match value {
        Value::Array(items) if !items.is_empty() => {
            // `- - x`: a nested list starts on the dash's line.
            let inner: Vec<String> = items
                .iter()
                .map(|i| block_item(i, column + 2, layout, moves))
                .collect();
            return format!("{pad}- {}", inner.join("\n").trim_start());
        }
        Value::Object(map) if !map.is_empty() => {
            // The first entry on the dash's line, the others under it; a list item's `name`
            // first, as people write them.
            let named = map.get_key_value("name").into_iter();
            let rest = map.iter().filter(|(k, _)| k.as_str() != "name");
            let lines: Vec<String> = named
                .chain(rest)
                .map(|(k, v)| block_entry(k, v, column + 2, layout, moves))
                .collect();
            lines.join("\n").trim_start_matches(' ').to_string()
        }
        other => indent_rest(&inline_block_scalar(other), column + 2),
    };
    format!("{pad}- {body}")
}

/// A block mapping entry whose key is at `column`, without the final line break.
pub fn block_entry(
    key: &str,
    value: &Value,
    column: usize,
    layout: Layout,
    moves: &mut dyn Moves,
) -> String {
    let pad = " ".repeat(column);
    let key_text = yaml(&Value::String(key.to_string()));
    match value {
        Value::Array(items) if !items.is_empty() => {
            let dash = column + layout.sequence_indent;
            let lines: Vec<String> = items
                .iter()
                .map(|i| block_item(i, dash, layout, moves))
                .collect();
            format!("{pad}{key_text}:\n{}", lines.join("\n"))
        }
        Value::Object(map) if !map.is_empty() => {
            let lines: Vec<String> = map
                .iter()
                .map(|(k, v)| block_entry(k, v, column + 2, layout, moves))
                .collect();
            format!("{pad}{key_text}:\n{}", lines.join("\n"))
        }
        other => format!(
            "{pad}{key_text}: {}",
            indent_rest(&inline_block_scalar(other), column)
        ),
    }
}

/// A scalar (or empty collection) as serde-saphyr writes it; a string over several lines
/// becomes a block scalar whose content lines are indented by 2 from column 0.
fn inline_block_scalar(value: &Value) -> String {
    match value {
        Value::String(_) => yaml(value),
        other => json(other),
    }
}

/// Every line after the first indented by `column` more.
fn indent_rest(text: &str, column: usize) -> String {
    let pad = " ".repeat(column);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoMoves;
    impl Moves for NoMoves {
        fn take(&mut self, _: &Value, _: usize) -> Option<String> {
            None
        }
    }

    #[test]
    fn entries_and_items_at_their_column() {
        let layout = Layout { sequence_indent: 2 };
        let text = block_entry(
            "volumes",
            &json!([{"name": "v", "emptyDir": {"medium": "Memory"}}]),
            4,
            layout,
            &mut NoMoves,
        );
        let doc = format!("spec:\n  x:\n{text}\n");
        let v: Value = serde_saphyr::from_str(&doc).unwrap();
        assert_eq!(v["spec"]["x"]["volumes"][0]["emptyDir"]["medium"], "Memory");
        assert!(text.starts_with("    volumes:\n      - "), "{text}");
        let text = block_entry("mode", &json!("0755"), 0, layout, &mut NoMoves);
        assert!(
            text.contains("'0755'") || text.contains("\"0755\""),
            "{text}"
        );
        assert_eq!(inline(&json!({"a": 1}), false), "{\"a\":1}");
    }
}
