//! JSON values for the scanners' property tests: objects whose member names are mostly the
//! names a scan looks for, and otherwise arbitrary text (quotes, backslashes and brackets
//! included); numbers that print and read back exactly.

use proptest::prelude::*;
use serde_json::Value;

/// What the generated values look like.
pub struct Shape {
    /// Member names a scan looks for, each drawn as often as any other name.
    pub names: &'static [&'static str],
    /// A regex for the other member names.
    pub other_names: &'static str,
    /// A regex for string values.
    pub strings: &'static str,
    /// Levels of nesting, nodes in all, members or elements per object or array.
    pub depth: u32,
    pub size: u32,
    pub width: usize,
}

pub fn values(shape: Shape) -> impl Strategy<Value = Value> {
    let names = shape.names;
    let name = prop_oneof![
        names.len() as u32 => prop::sample::select(names).prop_map(str::to_string),
        1 => shape.other_names,
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Eighths print and read back exactly (serde_json's float parsing is not exact).
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        shape.strings.prop_map(Value::String),
    ];
    let width = shape.width;
    leaf.prop_recursive(shape.depth, shape.size, width as u32, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..width).prop_map(Value::Array),
            prop::collection::vec((name.clone(), inner), 0..width)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}
