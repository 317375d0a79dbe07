//! GraphQLCRUD filters: the shared input types, the [`Filterable`] trait that maps a Rust field
//! type to its input, and the store-neutral [`Filter`] tree that stores translate.
//!
//! Semantics, identical in every store:
//! - all operators given in one input must hold (AND); an input with no operator matches all;
//! - `ne` is "not `eq`": it also matches records where the field is null or missing;
//! - `contains`, `startsWith`, `endsWith` compare literal text, case-sensitively;
//! - `between: [a, b]` is `a <= x <= b`;
//! - on a list field every operator holds when *some* element satisfies it, except `ne`,
//!   which holds when *no* element equals the value;
//! - an empty `and`/`or` list adds no condition; `not` negates.

mod eval;
mod field;

use async_graphql::{InputObject, InputType, ID};
use chrono::{DateTime, SecondsFormat, Utc};

pub use field::{FieldFilter, FilterableField};

use crate::error::{DataSyncError, Result};

/// The scalar a filterable field compares as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarKind {
    /// Text, compared by code point.
    String,
    /// 64-bit integers.
    Int,
    /// Floating point numbers.
    Float,
    /// `true`/`false`.
    Boolean,
    /// `chrono::DateTime<Utc>`: stored as RFC 3339 text with nine fraction digits, so text
    /// order is time order.
    DateTime,
}

/// How a filterable field is stored: one scalar, or a list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldKind {
    /// The scalar type.
    pub scalar: ScalarKind,
    /// A list field (`Vec<T>`): a condition holds when some element satisfies it.
    pub list: bool,
}

impl FieldKind {
    /// A single scalar of this kind.
    pub const fn scalar(scalar: ScalarKind) -> Self {
        FieldKind {
            scalar,
            list: false,
        }
    }
}

/// The field a condition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRef {
    /// The record id.
    Id,
    /// A data field, by external name.
    Data {
        /// External name.
        name: &'static str,
        /// How it is stored.
        kind: FieldKind,
    },
}

/// A typed constant in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text (also ids and normalized date-times).
    String(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

/// A comparison of one field against constants.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `=`
    Eq(Scalar),
    /// not `=` (null and missing match)
    Ne(Scalar),
    /// `<`
    Lt(Scalar),
    /// `<=`
    Le(Scalar),
    /// `>`
    Gt(Scalar),
    /// `>=`
    Ge(Scalar),
    /// one of
    In(Vec<Scalar>),
    /// inclusive range
    Between(Scalar, Scalar),
    /// literal substring
    Contains(String),
    /// literal prefix
    StartsWith(String),
    /// literal suffix
    EndsWith(String),
}

/// A store-neutral filter tree.
///
/// ```
/// use datasync_core::{Filter, FieldRef};
/// use datasync_core::filter::Op;
/// let f = Filter::all_of(vec![Filter::Cond { field: FieldRef::Id, op: Op::In(vec![]) }]);
/// assert!(matches!(f, Filter::Cond { .. }));
/// assert_eq!(Filter::all_of(vec![]), Filter::All);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every record.
    All,
    /// One comparison.
    Cond {
        /// The field compared.
        field: FieldRef,
        /// The comparison.
        op: Op,
    },
    /// Every sub-filter holds.
    And(Vec<Filter>),
    /// Some sub-filter holds.
    Or(Vec<Filter>),
    /// The sub-filter does not hold.
    Not(Box<Filter>),
}

impl Filter {
    /// AND of `filters`, simplified (`All` for none, the filter itself for one).
    pub fn all_of(mut filters: Vec<Filter>) -> Filter {
        filters.retain(|f| *f != Filter::All);
        match filters.len() {
            0 => Filter::All,
            1 => filters.pop().unwrap_or(Filter::All),
            _ => Filter::And(filters),
        }
    }

    /// OR of `filters`; an empty list adds no condition.
    pub fn any_of(mut filters: Vec<Filter>) -> Filter {
        if filters.is_empty() || filters.contains(&Filter::All) {
            return Filter::All;
        }
        match filters.len() {
            1 => filters.pop().unwrap_or(Filter::All),
            _ => Filter::Or(filters),
        }
    }
}

/// Largest accepted filter weight (see [`FilterInput::weight`]): stores translate a filter
/// into one query, so requests are limited in size.
pub const MAX_FILTER_WEIGHT: usize = 5_000;

/// Longest string operand of a filter, in bytes.
pub const MAX_TEXT_OPERAND: usize = 1_024;

/// The filter input of one field type, turned into conditions.
pub trait FilterInput {
    /// Builds the conditions for `field`; `path` names the input in error messages.
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter>;

    /// How much the input weighs towards [`MAX_FILTER_WEIGHT`]: one per operator given, plus
    /// one per value of `in` and `between`.
    fn weight(&self) -> usize;
}

/// A field type that can appear in `<Model>Filter`, and how.
///
/// ```
/// use datasync_core::{Filterable, ScalarKind};
/// assert_eq!(<Vec<String> as Filterable>::KIND.scalar, ScalarKind::String);
/// assert!(<Vec<String> as Filterable>::KIND.list);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in a datasync filter",
    label = "this field type has no filter input",
    note = "filterable types are String, bool, i32, i64, f32, f64, chrono::DateTime<Utc>, and Option or Vec of them",
    note = "mark the field `#[datasync(skip_filter)]` to store and return it without filtering"
)]
pub trait Filterable {
    /// The GraphQL input (`StringInput`, `IntInput`, ...).
    type Input: InputType + FilterInput + Clone + 'static;
    /// How the field is stored and compared.
    const KIND: FieldKind;
}

macro_rules! filterable {
    ($($ty:ty => $input:ty, $kind:ident;)*) => {$(
        impl Filterable for $ty {
            type Input = $input;
            const KIND: FieldKind = FieldKind::scalar(ScalarKind::$kind);
        }
    )*};
}

filterable! {
    String => StringInput, String;
    bool => BooleanInput, Boolean;
    i32 => IntInput, Int;
    i64 => IntInput, Int;
    f32 => FloatInput, Float;
    f64 => FloatInput, Float;
    DateTime<Utc> => StringInput, DateTime;
}

impl<T: Filterable> Filterable for Option<T> {
    type Input = T::Input;
    const KIND: FieldKind = T::KIND;
}

impl<T: Filterable> Filterable for Vec<T> {
    type Input = T::Input;
    const KIND: FieldKind = FieldKind {
        scalar: T::KIND.scalar,
        list: true,
    };
}

/// Filter on a text field: `{ ne eq le lt ge gt in contains startsWith endsWith }`.
///
/// On a `DateTime` field the comparison operators take RFC 3339 text and compare instants.
#[derive(InputObject, Debug, Clone, Default, PartialEq)]
pub struct StringInput {
    pub ne: Option<String>,
    pub eq: Option<String>,
    pub le: Option<String>,
    pub lt: Option<String>,
    pub ge: Option<String>,
    pub gt: Option<String>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<String>>,
    /// Literal substring, case-sensitive.
    pub contains: Option<String>,
    /// Literal prefix, case-sensitive.
    pub starts_with: Option<String>,
    /// Literal suffix, case-sensitive.
    pub ends_with: Option<String>,
}

/// Filter on an integer field: `{ ne eq le lt ge gt in between }`.
#[derive(InputObject, Debug, Clone, Default, PartialEq)]
pub struct IntInput {
    pub ne: Option<i64>,
    pub eq: Option<i64>,
    pub le: Option<i64>,
    pub lt: Option<i64>,
    pub ge: Option<i64>,
    pub gt: Option<i64>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<i64>>,
    /// `[low, high]`, both inclusive.
    pub between: Option<Vec<i64>>,
}

/// Filter on a float field: `{ ne eq le lt ge gt in between }`.
#[derive(InputObject, Debug, Clone, Default, PartialEq)]
pub struct FloatInput {
    pub ne: Option<f64>,
    pub eq: Option<f64>,
    pub le: Option<f64>,
    pub lt: Option<f64>,
    pub ge: Option<f64>,
    pub gt: Option<f64>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<f64>>,
    /// `[low, high]`, both inclusive.
    pub between: Option<Vec<f64>>,
}

/// Filter on a boolean field: `{ ne eq }`.
#[derive(InputObject, Debug, Clone, Default, PartialEq)]
pub struct BooleanInput {
    pub ne: Option<bool>,
    pub eq: Option<bool>,
}

/// Filter on the id: `{ ne eq le lt ge gt in }`.
#[derive(InputObject, Debug, Clone, Default, PartialEq)]
#[graphql(name = "IDInput")]
pub struct IDInput {
    pub ne: Option<ID>,
    pub eq: Option<ID>,
    pub le: Option<ID>,
    pub lt: Option<ID>,
    pub ge: Option<ID>,
    pub gt: Option<ID>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<ID>>,
}

/// Checks a string operand: at most [`MAX_TEXT_OPERAND`] bytes, and, for the text-matching
/// operators (`contains`, `startsWith`, `endsWith`), no NUL character.
fn text_operand(path: &str, value: String, matching: bool) -> Result<String> {
    if value.len() > MAX_TEXT_OPERAND {
        return Err(DataSyncError::bad_input(
            path,
            format!("string operands are at most {MAX_TEXT_OPERAND} bytes long"),
        ));
    }
    if matching && value.contains('\0') {
        return Err(DataSyncError::bad_input(
            path,
            "contains, startsWith and endsWith do not take text with a NUL character",
        ));
    }
    Ok(value)
}

/// One per operator given, plus one per list value.
macro_rules! weight {
    ($input:ident: $($op:ident),*; lists: $($list:ident),*) => {{
        let mut w = 0usize;
        $( w += usize::from($input.$op.is_some()); )*
        $( w = w.saturating_add($input.$list.as_ref().map_or(0, |l| 1 + l.len())); )*
        w
    }};
}

/// Collects the conditions of one input.
struct Conds<'a> {
    field: FieldRef,
    path: &'a str,
    out: Vec<Filter>,
}

impl<'a> Conds<'a> {
    fn new(field: FieldRef, path: &'a str) -> Self {
        Conds {
            field,
            path,
            out: Vec::new(),
        }
    }

    fn push<T: Clone>(
        &mut self,
        value: &Option<T>,
        op: impl FnOnce(T) -> Result<Op>,
    ) -> Result<()> {
        if let Some(v) = value {
            let op = op(v.clone())?;
            self.out.push(Filter::Cond {
                field: self.field,
                op,
            });
        }
        Ok(())
    }

    fn between<T: Clone>(
        &mut self,
        value: &Option<Vec<T>>,
        scalar: impl Fn(T) -> Scalar,
    ) -> Result<()> {
        let path = self.path;
        self.push(value, |pair| match <[T; 2]>::try_from(pair) {
            Ok([low, high]) => Ok(Op::Between(scalar(low), scalar(high))),
            Err(_) => Err(DataSyncError::bad_input(
                path,
                "between takes exactly two values: [low, high]",
            )),
        })
    }

    fn finish(self) -> Filter {
        Filter::all_of(self.out)
    }
}

/// The comparison operators shared by every input, over a scalar-building closure.
macro_rules! ordered_ops {
    ($c:ident, $input:ident, $s:expr) => {{
        let s = $s;
        $c.push(&$input.ne, |v| Ok(Op::Ne(s(v)?)))?;
        $c.push(&$input.eq, |v| Ok(Op::Eq(s(v)?)))?;
        $c.push(&$input.le, |v| Ok(Op::Le(s(v)?)))?;
        $c.push(&$input.lt, |v| Ok(Op::Lt(s(v)?)))?;
        $c.push(&$input.ge, |v| Ok(Op::Ge(s(v)?)))?;
        $c.push(&$input.gt, |v| Ok(Op::Gt(s(v)?)))?;
        $c.push(&$input.in_list, |vs: Vec<_>| {
            Ok(Op::In(vs.into_iter().map(s).collect::<Result<_>>()?))
        })?;
    }};
}

impl FilterInput for StringInput {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        let datetime =
            matches!(field, FieldRef::Data { kind, .. } if kind.scalar == ScalarKind::DateTime);
        let mut c = Conds::new(field, path);
        ordered_ops!(c, self, |v: String| -> Result<Scalar> {
            let v = text_operand(path, v, false)?;
            if datetime {
                normalize_datetime(&v).map(Scalar::String).ok_or_else(|| {
                    DataSyncError::bad_input(
                        path,
                        format!(
                            "{v:?} is not an RFC 3339 date-time (e.g. \"2020-06-20T06:34:59Z\")"
                        ),
                    )
                })
            } else {
                Ok(Scalar::String(v))
            }
        });
        c.push(&self.contains, |v| {
            Ok(Op::Contains(text_operand(path, v, true)?))
        })?;
        c.push(&self.starts_with, |v| {
            Ok(Op::StartsWith(text_operand(path, v, true)?))
        })?;
        c.push(&self.ends_with, |v| {
            Ok(Op::EndsWith(text_operand(path, v, true)?))
        })?;
        Ok(c.finish())
    }

    fn weight(&self) -> usize {
        weight!(self: ne, eq, le, lt, ge, gt, contains, starts_with, ends_with; lists: in_list)
    }
}

impl FilterInput for IntInput {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        let mut c = Conds::new(field, path);
        ordered_ops!(c, self, |v: i64| -> Result<Scalar> { Ok(Scalar::Int(v)) });
        c.between(&self.between, Scalar::Int)?;
        Ok(c.finish())
    }

    fn weight(&self) -> usize {
        weight!(self: ne, eq, le, lt, ge, gt; lists: in_list, between)
    }
}

impl FilterInput for FloatInput {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        let mut c = Conds::new(field, path);
        ordered_ops!(c, self, |v: f64| -> Result<Scalar> { Ok(Scalar::Float(v)) });
        c.between(&self.between, Scalar::Float)?;
        Ok(c.finish())
    }

    fn weight(&self) -> usize {
        weight!(self: ne, eq, le, lt, ge, gt; lists: in_list, between)
    }
}

impl FilterInput for BooleanInput {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        let mut c = Conds::new(field, path);
        c.push(&self.ne, |v| Ok(Op::Ne(Scalar::Bool(v))))?;
        c.push(&self.eq, |v| Ok(Op::Eq(Scalar::Bool(v))))?;
        Ok(c.finish())
    }

    fn weight(&self) -> usize {
        weight!(self: ne, eq; lists:)
    }
}

impl FilterInput for IDInput {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        let mut c = Conds::new(field, path);
        ordered_ops!(c, self, |v: ID| -> Result<Scalar> {
            Ok(Scalar::String(text_operand(path, v.0, false)?))
        });
        Ok(c.finish())
    }

    fn weight(&self) -> usize {
        weight!(self: ne, eq, le, lt, ge, gt; lists: in_list)
    }
}

/// RFC 3339 text in the stored form: UTC, nine fraction digits, `Z`. `None` if unparsable.
///
/// ```
/// use datasync_core::filter::normalize_datetime;
/// assert_eq!(normalize_datetime("2020-06-20T08:34:59+02:00").unwrap(), "2020-06-20T06:34:59.000000000Z");
/// assert!(normalize_datetime("June").is_none());
/// ```
pub fn normalize_datetime(text: &str) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        parsed
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Nanos, true),
    )
}
