//! Translation of [`Filter`] trees and sort orders into MongoDB query documents.
//!
//! User values only ever become BSON values (strings stay strings, so `"{\"$ne\": null}"` or
//! `"$gt"` are data); field names come from the model, never from the request. Text operators
//! become regular expressions with every ASCII punctuation character escaped. `ne` and `not`
//! use `$nor`, which, like the SQLite store, treats a null or missing field as "does not match
//! the comparison".

use mongodb::bson::{doc, Bson, Document};

use crate::filter::{FieldRef, Filter, Op, Scalar};
use crate::query::{Order, OrderField};

/// All of `parts` (empty ones left out): one of them as it is, several under `$and`.
pub(crate) fn all_of<const N: usize>(parts: [Document; N]) -> Document {
    let mut parts: Vec<Document> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    match parts.len() {
        0 => Document::new(),
        1 => parts.remove(0),
        _ => doc! { "$and": parts },
    }
}

/// The query document for `filter` (empty for [`Filter::All`]).
pub(crate) fn query(filter: &Filter) -> Document {
    match filter {
        Filter::All => Document::new(),
        Filter::And(parts) => {
            doc! { "$and": parts.iter().map(|p| Bson::Document(query(p))).collect::<Vec<_>>() }
        }
        Filter::Or(parts) if parts.is_empty() => doc! { "_id": { "$in": [] } },
        Filter::Or(parts) => {
            doc! { "$or": parts.iter().map(|p| Bson::Document(query(p))).collect::<Vec<_>>() }
        }
        Filter::Not(inner) => doc! { "$nor": [query(inner)] },
        Filter::Cond { field, op } => condition(field, op),
    }
}

fn condition(field: &FieldRef, op: &Op) -> Document {
    let (name, list) = match field {
        FieldRef::Id => ("_id", false),
        FieldRef::Data { name, kind } => (*name, kind.list),
    };
    // A list field matches when some element satisfies the condition: `$elemMatch` says so
    // explicitly (MongoDB's implicit array matching would do too, but not every server that
    // speaks the protocol implements it for ranges). `ne` means "no element equals".
    let on = |cond: Document| {
        let mut d = Document::new();
        if list {
            d.insert(name, doc! { "$elemMatch": cond });
        } else if cond.len() == 1 && cond.contains_key("$eq") {
            d.insert(name, cond.get("$eq").cloned().unwrap_or(Bson::Null));
        } else {
            d.insert(name, cond);
        }
        d
    };
    match op {
        Op::Eq(v) => on(doc! { "$eq": scalar(v) }),
        Op::Ne(v) => doc! { "$nor": [on(doc! { "$eq": scalar(v) })] },
        Op::Lt(v) => on(doc! { "$lt": scalar(v) }),
        Op::Le(v) => on(doc! { "$lte": scalar(v) }),
        Op::Gt(v) => on(doc! { "$gt": scalar(v) }),
        Op::Ge(v) => on(doc! { "$gte": scalar(v) }),
        Op::In(values) => on(doc! { "$in": values.iter().map(scalar).collect::<Vec<_>>() }),
        Op::Between(low, high) => on(doc! { "$gte": scalar(low), "$lte": scalar(high) }),
        Op::Contains(s) => on(regex(escape(s))),
        Op::StartsWith(s) => on(regex(format!("^{}", escape(s)))),
        // `$` would also match before a final newline; this lookahead is the true end.
        Op::EndsWith(s) => on(regex(format!("{}(?![\\s\\S])", escape(s)))),
    }
}

fn regex(pattern: String) -> Document {
    doc! { "$regex": pattern, "$options": "" }
}

/// `text` as a regular expression that matches exactly that text.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for ch in text.chars() {
        if ch.is_ascii() && !ch.is_ascii_alphanumeric() && ch != '_' {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

pub(crate) fn scalar(value: &Scalar) -> Bson {
    match value {
        Scalar::String(s) => Bson::String(s.clone()),
        Scalar::Int(i) => Bson::Int64(*i),
        Scalar::Float(f) => Bson::Double(*f),
        Scalar::Bool(b) => Bson::Boolean(*b),
    }
}

/// The sort document, with the id as the final tie-breaker.
pub(crate) fn sort(order: &Order) -> Document {
    let dir = if order.descending { -1 } else { 1 };
    let key = match order.field {
        OrderField::Id => return doc! { "_id": dir },
        OrderField::CreatedAt => "createdAt",
        OrderField::UpdatedAt => "updatedAt",
        OrderField::Version => "_version",
        OrderField::Data(name) => name,
    };
    let mut d = Document::new();
    d.insert(key, dir);
    d.insert("_id", 1);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_metacharacter() {
        assert_eq!(escape("a.*b"), "a\\.\\*b");
        assert_eq!(
            escape("$gt {\"$ne\": null}"),
            "\\$gt\\ \\{\\\"\\$ne\\\"\\:\\ null\\}"
        );
        assert_eq!(escape("(é)|[x]^\\"), "\\(é\\)\\|\\[x\\]\\^\\\\");
        assert_eq!(escape("plain_text9"), "plain_text9");
    }
}
