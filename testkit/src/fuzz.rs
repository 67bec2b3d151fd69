//! Property-based fuzzing helpers (issue 18): a few dozen cases per property run in the test
//! suite (seconds); `scripts/fuzz.sh DURATION` runs them long via `PROPTEST_CASES`.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// Cases per property: `PROPTEST_CASES`, or `default` (a small suite default).
pub fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Every leaf of a JSON value, as a JSON pointer (`/a/0/b`).
pub fn json_leaves(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| walk(x, format!("{at}/{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, format!("{at}/{i}"), out)),
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// Replaces the leaf `pick` of `v` (see [`json_leaves`]) by `value`; false when `v` has no
/// leaf.
pub fn replace_leaf(v: &mut Value, pick: &prop::sample::Index, value: Value) -> bool {
    let at = json_leaves(v);
    if at.is_empty() {
        return false;
    }
    let ptr = pick.get(&at).clone();
    match v.pointer_mut(&ptr) {
        Some(slot) => {
            *slot = value;
            true
        }
        None => false,
    }
}

/// Hostile JSON values to put at a leaf: extreme and negative numbers, nulls, empty and
/// path-traversing strings, empty containers.
pub fn hostile_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u32::MAX)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!(-1e30)),
        Just(serde_json::json!(null)),
        Just(serde_json::json!("")),
        Just(serde_json::json!("../../etc/passwd")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        ".{0,8}".prop_map(Value::from),
    ]
}

/// One byte-level edit: (where, byte, operation); see [`mutate_bytes`].
pub type ByteEdit = (prop::sample::Index, u8, u8);

/// Byte-level edits for [`mutate_bytes`]: 1 to `max` of them, operations `0..ops`.
pub fn byte_edits(max: usize, ops: u8) -> impl Strategy<Value = Vec<ByteEdit>> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), any::<u8>(), 0u8..ops),
        1..max,
    )
}

/// Applies byte edits: operation 0 sets a byte, 1 cuts the text there, 2 inserts a byte,
/// 3 sets a byte among the first 32 (where image headers keep their sizes), anything else
/// flips a byte.
pub fn mutate_bytes(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for (i, b, op) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = i.index(bytes.len());
        match op {
            0 => bytes[at] = *b,
            1 => bytes.truncate(at),
            2 => bytes.insert(at, *b),
            3 => {
                let h = at % bytes.len().min(32);
                bytes[h] = *b;
            }
            _ => bytes[at] ^= 0xFF,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    #[test]
    fn leaves_are_pointers_to_every_scalar() {
        let v = serde_json::json!({"a": [1, {"b": null}], "c": "x"});
        assert_eq!(json_leaves(&v), vec!["/a/0", "/a/1/b", "/c"]);
    }

    #[test]
    fn byte_edits_set_cut_and_insert() {
        let idx = |i: usize| {
            // An Index that picks position `i` of an 8-byte text.
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            loop {
                let x = any::<prop::sample::Index>()
                    .new_tree(&mut runner)
                    .unwrap()
                    .current();
                if x.index(8) == i {
                    return x;
                }
            }
        };
        let mut b = b"abcdefgh".to_vec();
        mutate_bytes(&mut b, &[(idx(0), b'X', 0)]);
        assert_eq!(b, b"Xbcdefgh");
        mutate_bytes(&mut b, &[(idx(7), b'Y', 2)]);
        assert_eq!(b, b"XbcdefgYh");
        let mut b = b"abcdefgh".to_vec();
        mutate_bytes(&mut b, &[(idx(3), 0, 1)]);
        assert_eq!(b, b"abc");
    }
}
