//! Translation of [`Filter`] trees and sort orders into SQLite SQL over the JSON `data` column.
//!
//! Every condition is two-valued (`IFNULL(.., 0)`), so `not` and `ne` treat a null or missing
//! field the same way MongoDB does: as "does not match the comparison".

use rusqlite::types::Value as SqlValue;

use crate::filter::{FieldRef, Filter, Op, Scalar};
use crate::query::{Order, OrderField};

/// SQL text with its positional parameters, in order.
#[derive(Debug, Default)]
pub(crate) struct SqlBuf {
    pub text: String,
    pub params: Vec<SqlValue>,
}

/// What a comparison reads: a column, or a JSON path into `t.data`.
#[derive(Clone, Copy)]
enum Target<'a> {
    Column(&'static str),
    Json(&'a str),
}

impl SqlBuf {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn param(&mut self, value: SqlValue) {
        self.text.push('?');
        self.params.push(value);
    }

    fn scalar(&mut self, value: &Scalar) {
        self.param(match value {
            Scalar::String(s) => SqlValue::Text(s.clone()),
            Scalar::Int(i) => SqlValue::Integer(*i),
            Scalar::Float(f) => SqlValue::Real(*f),
            Scalar::Bool(b) => SqlValue::Integer(i64::from(*b)),
        });
    }

    fn target(&mut self, target: Target<'_>) {
        match target {
            Target::Column(c) => self.push(c),
            Target::Json(name) => {
                self.push("json_extract(t.data, ");
                self.param(SqlValue::Text(json_path(name)));
                self.push(")");
            }
        }
    }

    /// Appends a boolean SQL expression for `filter`.
    pub(crate) fn filter(&mut self, filter: &Filter) {
        match filter {
            Filter::All => self.push("1"),
            Filter::And(parts) => self.balanced(parts, " AND ", "1"),
            Filter::Or(parts) => self.balanced(parts, " OR ", "0"),
            Filter::Not(inner) => {
                self.push("NOT (");
                self.filter(inner);
                self.push(")");
            }
            Filter::Cond { field, op } => self.condition(field, op),
        }
    }

    /// `parts` joined by `joiner` as a balanced tree, so that SQLite's expression depth grows
    /// with the logarithm of the number of parts.
    fn balanced(&mut self, parts: &[Filter], joiner: &str, empty: &str) {
        match parts {
            [] => self.push(empty),
            [one] => self.filter(one),
            _ => {
                let (left, right) = parts.split_at(parts.len() / 2);
                self.push("(");
                self.balanced(left, joiner, empty);
                self.push(joiner);
                self.balanced(right, joiner, empty);
                self.push(")");
            }
        }
    }

    fn condition(&mut self, field: &FieldRef, op: &Op) {
        match field {
            FieldRef::Id => self.compare(Target::Column("t.id"), op),
            FieldRef::Data { name, kind } if !kind.list => self.compare(Target::Json(name), op),
            FieldRef::Data { name, .. } => {
                // Some element satisfies the comparison; `ne`: no element equals the value.
                let (negate, op) = match op {
                    Op::Ne(v) => (true, Op::Eq(v.clone())),
                    other => (false, other.clone()),
                };
                self.push(if negate { "NOT EXISTS" } else { "EXISTS" });
                self.push(" (SELECT 1 FROM json_each(t.data, ");
                self.param(SqlValue::Text(json_path(name)));
                self.push(") AS j WHERE ");
                self.compare(Target::Column("j.value"), &op);
                self.push(")");
            }
        }
    }

    fn compare(&mut self, x: Target<'_>, op: &Op) {
        let binary = |buf: &mut SqlBuf, sql_op: &str, v: &Scalar| {
            buf.push("IFNULL(");
            buf.target(x);
            buf.push(sql_op);
            buf.scalar(v);
            buf.push(", 0)");
        };
        match op {
            Op::Eq(v) => binary(self, " = ", v),
            Op::Ne(v) => {
                self.push("NOT ");
                binary(self, " = ", v);
            }
            Op::Lt(v) => binary(self, " < ", v),
            Op::Le(v) => binary(self, " <= ", v),
            Op::Gt(v) => binary(self, " > ", v),
            Op::Ge(v) => binary(self, " >= ", v),
            Op::In(values) if values.is_empty() => self.push("0"),
            Op::In(values) => {
                // One parameter: the values as a JSON array.
                let list: Vec<serde_json::Value> = values.iter().map(scalar_json).collect();
                self.push("IFNULL(");
                self.target(x);
                self.push(" IN (SELECT value FROM json_each(");
                self.param(SqlValue::Text(serde_json::Value::Array(list).to_string()));
                self.push(")), 0)");
            }
            Op::Between(low, high) => {
                self.push("IFNULL(");
                self.target(x);
                self.push(" BETWEEN ");
                self.scalar(low);
                self.push(" AND ");
                self.scalar(high);
                self.push(", 0)");
            }
            // Text operators compare bytes (UTF-8), so a NUL inside a value counts like any
            // other character, and only the part of the value they need is read.
            Op::Contains(s) => self.text_match(x, |buf| {
                buf.push("instr(CAST(");
                buf.target(x);
                buf.push(" AS BLOB), ");
                buf.param(SqlValue::Blob(s.as_bytes().to_vec()));
                buf.push(") > 0");
            }),
            Op::StartsWith(s) => self.text_match(x, |buf| {
                buf.push("substr(CAST(");
                buf.target(x);
                buf.push(" AS BLOB), 1, ");
                buf.param(SqlValue::Integer(s.len() as i64));
                buf.push(") = ");
                buf.param(SqlValue::Blob(s.as_bytes().to_vec()));
            }),
            Op::EndsWith(s) if s.is_empty() => self.text_match(x, |buf| buf.push("1")),
            Op::EndsWith(s) => self.text_match(x, |buf| {
                buf.push("substr(CAST(");
                buf.target(x);
                buf.push(" AS BLOB), ");
                buf.param(SqlValue::Integer(-(s.len() as i64)));
                buf.push(") = ");
                buf.param(SqlValue::Blob(s.as_bytes().to_vec()));
            }),
        }
    }

    /// `cond` on text values only (a number never "contains" text).
    fn text_match(&mut self, x: Target<'_>, cond: impl FnOnce(&mut SqlBuf)) {
        self.push("IFNULL(typeof(");
        self.target(x);
        self.push(") = 'text' AND ");
        cond(self);
        self.push(", 0)");
    }

    /// Appends `ORDER BY ...` with the id as the final tie-breaker.
    pub(crate) fn order_by(&mut self, order: &Order) {
        let dir = if order.descending { " DESC" } else { " ASC" };
        self.push(" ORDER BY ");
        match order.field {
            OrderField::Id => {}
            OrderField::CreatedAt => self.push("t.created_at"),
            OrderField::UpdatedAt => self.push("t.updated_at"),
            OrderField::Version => self.push("t.version"),
            OrderField::Data(name) => self.target(Target::Json(name)),
        }
        if order.field != OrderField::Id {
            self.push(dir);
            self.push(", t.id ASC");
        } else {
            self.push("t.id");
            self.push(dir);
        }
    }
}

/// A constant as JSON, the way `json_each` hands it back (booleans as 1/0, like stored ones).
fn scalar_json(value: &Scalar) -> serde_json::Value {
    match value {
        Scalar::String(s) => serde_json::Value::from(s.as_str()),
        Scalar::Int(i) => serde_json::Value::from(*i),
        Scalar::Float(f) => serde_json::Value::from(*f),
        Scalar::Bool(b) => serde_json::Value::from(i64::from(*b)),
    }
}

/// JSON path of a top-level key, quoted so any key is taken literally.
fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
