//! JSON Pointer (RFC 6901) look-ups, as `serde_json::Value::pointer` makes them, without its
//! two string allocations per reference token: a token is unescaped only when it holds a `~`.
//! The engine, the planner and the server look up template pointers tens of times a review.

use serde_json::Value;
use std::borrow::Cow;

/// The value `pointer` addresses in `value` (`""` is the value itself).
pub fn get<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    let mut at = value;
    for token in tokens(pointer)? {
        at = match at {
            Value::Object(map) => map.get(token.as_ref())?,
            Value::Array(items) => items.get(index(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// [`get`], mutably.
pub fn get_mut<'v>(value: &'v mut Value, pointer: &str) -> Option<&'v mut Value> {
    let mut at = value;
    for token in tokens(pointer)? {
        at = match at {
            Value::Object(map) => map.get_mut(token.as_ref())?,
            Value::Array(items) => items.get_mut(index(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// The reference tokens of `pointer`, unescaped; `None` when it is neither empty nor starts
/// with `/`.
fn tokens(pointer: &str) -> Option<impl Iterator<Item = Cow<'_, str>>> {
    let rest = match pointer.strip_prefix('/') {
        Some(rest) => Some(rest),
        None if pointer.is_empty() => None,
        None => return None,
    };
    Some(rest.into_iter().flat_map(|r| r.split('/')).map(|token| {
        if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        }
    }))
}

/// An array index as RFC 6901 writes it: digits, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "spec": {"template": {"metadata": {"annotations": {"a/b": 1, "m~n": 2, "": 3}}},
                     "containers": [{"command": ["sh", "-c", "x"]}, {"name": "b"}]},
            "": {"": 4}, "3": "three"
        })
    }

    #[test]
    fn looks_up_as_serde_json_does() {
        let v = sample();
        for pointer in [
            "",
            "/",
            "//",
            "/spec",
            "/spec/template/metadata/annotations/a~1b",
            "/spec/template/metadata/annotations/m~0n",
            "/spec/template/metadata/annotations/",
            "/spec/containers/0/command/2",
            "/spec/containers/1/name",
            "/spec/containers/01",
            "/spec/containers/+1",
            "/spec/containers/-",
            "/spec/containers/2",
            "/3",
            "spec",
            "/spec/containers/0/command/2/x",
            "/spec/containers/x",
            "/~2",
            "/spec/~",
        ] {
            assert_eq!(get(&v, pointer), v.pointer(pointer), "{pointer:?}");
            let (mut a, mut b) = (v.clone(), v.clone());
            assert_eq!(
                get_mut(&mut a, pointer),
                b.pointer_mut(pointer),
                "{pointer:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_pointer_looks_up_as_serde_json_does(
            tokens in proptest::collection::vec("[a-z0-9~/+]{0,4}|spec|containers|0|1", 0..6),
            raw in "[a-z0-9~/]{0,12}",
        ) {
            let v = sample();
            let pointer: String = tokens.iter().map(|t| format!("/{t}")).collect();
            prop_assert_eq!(get(&v, &pointer), v.pointer(&pointer));
            prop_assert_eq!(get(&v, &raw), v.pointer(&raw));
        }
    }
}
