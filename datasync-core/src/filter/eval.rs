//! Evaluating a [`Filter`] on a record in memory, with the semantics every store implements
//! (see the module documentation of [`filter`](super)): realtime subscribers filter the
//! changes of their collection this way, without asking the store again.

use std::cmp::Ordering;

use serde_json::Value as Json;

use super::{FieldRef, Filter, Op, Scalar};
use crate::meta::StoredRecord;

impl Filter {
    /// Whether `record` matches, exactly as a store's query would decide.
    ///
    /// ```
    /// use datasync_core::filter::{FieldKind, FieldRef, Filter, Op, Scalar, ScalarKind};
    /// use datasync_core::{StoredRecord, SyncMeta};
    /// let record = StoredRecord {
    ///     id: "n1".into(),
    ///     data: serde_json::json!({"title": "Buy milk", "tags": ["home"]}).as_object().unwrap().clone(),
    ///     meta: SyncMeta { version: 1, created_at: 1, updated_at: 1, deleted: false },
    ///     field_versions: Default::default(),
    ///     created_version: 1,
    /// };
    /// let title = FieldRef::Data { name: "title", kind: FieldKind::scalar(ScalarKind::String) };
    /// let tags = FieldRef::Data { name: "tags", kind: FieldKind { scalar: ScalarKind::String, list: true } };
    /// assert!(Filter::Cond { field: title, op: Op::Contains("milk".into()) }.matches(&record));
    /// assert!(Filter::Cond { field: tags, op: Op::Eq(Scalar::String("home".into())) }.matches(&record));
    /// assert!(!Filter::Cond { field: tags, op: Op::Ne(Scalar::String("home".into())) }.matches(&record));
    /// ```
    pub fn matches(&self, record: &StoredRecord) -> bool {
        match self {
            Filter::All => true,
            Filter::And(parts) => parts.iter().all(|p| p.matches(record)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(record)),
            Filter::Not(inner) => !inner.matches(record),
            Filter::Cond { field, op } => condition(record, field, op),
        }
    }
}

fn condition(record: &StoredRecord, field: &FieldRef, op: &Op) -> bool {
    let id;
    let value = match field {
        FieldRef::Id => {
            id = Json::String(record.id.clone());
            &id
        }
        FieldRef::Data { name, .. } => record.data.get(*name).unwrap_or(&Json::Null),
    };
    let list = matches!(field, FieldRef::Data { kind, .. } if kind.list);
    if !list {
        return compare(value, op);
    }
    let items: &[Json] = match value {
        Json::Array(items) => items,
        _ => &[],
    };
    match op {
        // On a list, `ne` holds when no element equals the value.
        Op::Ne(v) => !items.iter().any(|item| equal(item, v)),
        _ => items.iter().any(|item| compare(item, op)),
    }
}

/// One value against one operator; a null (or missing) value satisfies only `ne`.
fn compare(x: &Json, op: &Op) -> bool {
    match op {
        Op::Eq(v) => equal(x, v),
        Op::Ne(v) => !equal(x, v),
        Op::Lt(v) => order(x, v) == Some(Ordering::Less),
        Op::Le(v) => matches!(order(x, v), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt(v) => order(x, v) == Some(Ordering::Greater),
        Op::Ge(v) => matches!(order(x, v), Some(Ordering::Greater | Ordering::Equal)),
        Op::In(values) => values.iter().any(|v| equal(x, v)),
        Op::Between(low, high) => {
            matches!(order(x, low), Some(Ordering::Greater | Ordering::Equal))
                && matches!(order(x, high), Some(Ordering::Less | Ordering::Equal))
        }
        Op::Contains(s) => text(x).is_some_and(|t| t.contains(s.as_str())),
        Op::StartsWith(s) => text(x).is_some_and(|t| t.starts_with(s.as_str())),
        Op::EndsWith(s) => text(x).is_some_and(|t| t.ends_with(s.as_str())),
    }
}

fn text(x: &Json) -> Option<&str> {
    x.as_str()
}

fn equal(x: &Json, v: &Scalar) -> bool {
    order(x, v) == Some(Ordering::Equal)
}

/// How a stored value compares with a constant of the same kind; `None` across kinds (a
/// number never equals text) and for null.
fn order(x: &Json, v: &Scalar) -> Option<Ordering> {
    match (x, v) {
        // Text compares by bytes (UTF-8), as both stores do.
        (Json::String(a), Scalar::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Json::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Json::Number(a), Scalar::Int(b)) => match a.as_i64() {
            Some(a) => Some(a.cmp(b)),
            None => a.as_f64()?.partial_cmp(&(*b as f64)),
        },
        (Json::Number(a), Scalar::Float(b)) => a.as_f64()?.partial_cmp(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::filter::{FieldKind, ScalarKind};
    use crate::meta::SyncMeta;

    fn record(data: Json) -> StoredRecord {
        StoredRecord {
            id: "r1".into(),
            data: data.as_object().unwrap().clone(),
            meta: SyncMeta {
                version: 1,
                created_at: 1,
                updated_at: 1,
                deleted: false,
            },
            field_versions: Default::default(),
            created_version: 1,
        }
    }

    fn field(name: &'static str, scalar: ScalarKind, list: bool) -> FieldRef {
        FieldRef::Data {
            name,
            kind: FieldKind { scalar, list },
        }
    }

    #[test]
    fn store_semantics() {
        let r = record(
            json!({"n": 2, "f": 2.5, "s": "héllo\u{0}x", "b": true, "none": null, "l": [1, 5]}),
        );
        let n = field("n", ScalarKind::Int, false);
        let f = field("f", ScalarKind::Float, false);
        let s = field("s", ScalarKind::String, false);
        let b = field("b", ScalarKind::Boolean, false);
        let none = field("none", ScalarKind::String, false);
        let missing = field("missing", ScalarKind::Int, false);
        let l = field("l", ScalarKind::Int, true);
        let cases = [
            (n, Op::Eq(Scalar::Int(2)), true),
            (n, Op::Eq(Scalar::Float(2.0)), true),
            (n, Op::Between(Scalar::Int(2), Scalar::Int(3)), true),
            (f, Op::Gt(Scalar::Int(2)), true),
            (s, Op::EndsWith("x".into()), true),
            (s, Op::EndsWith("o".into()), false),
            (s, Op::StartsWith("hé".into()), true),
            (s, Op::Lt(Scalar::String("i".into())), true),
            (b, Op::Ne(Scalar::Bool(false)), true),
            (none, Op::Ne(Scalar::String("a".into())), true),
            (none, Op::Eq(Scalar::String("a".into())), false),
            (missing, Op::Lt(Scalar::Int(100)), false),
            (missing, Op::Ne(Scalar::Int(1)), true),
            (n, Op::Contains("2".into()), false),
            (l, Op::Ge(Scalar::Int(5)), true),
            (l, Op::Ne(Scalar::Int(5)), false),
            (l, Op::In(vec![Scalar::Int(9), Scalar::Int(1)]), true),
            (FieldRef::Id, Op::Eq(Scalar::String("r1".into())), true),
        ];
        for (field, op, want) in cases {
            let filter = Filter::Cond {
                field,
                op: op.clone(),
            };
            assert_eq!(filter.matches(&r), want, "{field:?} {op:?}");
        }
        assert!(
            !Filter::Or(vec![]).matches(&r),
            "an empty OR matches nothing, as in SQL"
        );
        assert!(!Filter::Not(Box::new(Filter::All)).matches(&r));
    }
}
