//! [`FieldFilter`]: the condition on one field inside a generated `<Model>Filter`.
//!
//! The generated filter type names its fields' inputs through the model
//! (`FieldFilter<Note, 0>`) rather than through the field types, so the filter type stays
//! well-formed whatever a field's type is. A field type that cannot be filtered is then
//! reported once, where the derive names it, instead of at every use of the filter type.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use async_graphql::registry::Registry;
use async_graphql::{InputType, InputValueError, InputValueResult, Value};

use super::FieldKind;
use super::{FieldRef, Filter, FilterInput, Filterable};
use crate::error::Result;

/// Names the type of a model's filterable field number `I` (its position among the data
/// fields).
///
/// Implemented by `#[derive(DataSync)]`, once per filterable field; not meant to be
/// implemented by hand. For `title: String`, the first data field of `Note`, it writes:
///
/// ```
/// use datasync_core::{FilterableField, Filterable};
/// # pub struct Note;
///
/// impl FilterableField<0> for Note {
///     type Type = String;
/// }
///
/// let kind = <<Note as FilterableField<0>>::Type as Filterable>::KIND;
/// assert_eq!(kind, <String as Filterable>::KIND);
/// ```
pub trait FilterableField<const I: usize>: 'static {
    /// The field's Rust type.
    type Type: Filterable;
}

/// The condition on one field of a generated `<Model>Filter`: the field type's filter input
/// (`StringInput`, `IntInput`, ...). In GraphQL it is exactly that input.
///
/// ```
/// use datasync_core::{FieldFilter, FilterableField, StringInput};
/// # pub struct Note;
/// # impl FilterableField<0> for Note { type Type = String; }
///
/// // In `NoteFilter { title: Option<FieldFilter<Note, 0>>, .. }`:
/// let title: FieldFilter<Note, 0> = FieldFilter::new(StringInput {
///     contains: Some("Rust".into()),
///     ..Default::default()
/// });
/// assert_eq!(title.input().contains.as_deref(), Some("Rust"));
/// assert_eq!(title.clone(), title);
/// ```
pub struct FieldFilter<M, const I: usize> {
    input: Box<dyn AnyInput>,
    model: PhantomData<fn() -> M>,
}

/// The input a field type filters with.
type InputOf<M, const I: usize> = <<M as FilterableField<I>>::Type as Filterable>::Input;

impl<M: FilterableField<I>, const I: usize> FieldFilter<M, I> {
    /// How the field is stored and compared.
    pub const KIND: FieldKind = <M::Type as Filterable>::KIND;

    /// Wraps the field type's input.
    pub fn new(input: InputOf<M, I>) -> Self {
        FieldFilter {
            input: Box::new(input),
            model: PhantomData,
        }
    }

    /// The wrapped input.
    pub fn input(&self) -> &InputOf<M, I> {
        match self.input.as_any().downcast_ref() {
            Some(input) => input,
            // `new` is the only constructor, and it stores exactly this type.
            None => unreachable!("a FieldFilter always holds its field's input type"),
        }
    }

    /// The conditions on field `name`; `path` names the input in error messages. Used by
    /// the generated `ModelFilter` impl.
    #[doc(hidden)]
    pub fn to_filter(&self, name: &'static str, path: &str) -> Result<Filter> {
        let field = FieldRef::Data {
            name,
            kind: Self::KIND,
        };
        self.input.to_filter(field, path)
    }

    /// The input's weight (see [`FilterInput::weight`]).
    #[doc(hidden)]
    pub fn weight(&self) -> usize {
        self.input.weight()
    }
}

impl<M: FilterableField<I>, const I: usize> InputType for FieldFilter<M, I> {
    type RawValueType = Self;

    fn type_name() -> Cow<'static, str> {
        InputOf::<M, I>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        InputOf::<M, I>::create_type_info(registry)
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        InputOf::<M, I>::parse(value)
            .map(Self::new)
            .map_err(InputValueError::propagate)
    }

    fn to_value(&self) -> Value {
        self.input.to_value()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }
}

impl<M, const I: usize> Clone for FieldFilter<M, I> {
    fn clone(&self) -> Self {
        FieldFilter {
            input: self.input.clone_box(),
            model: PhantomData,
        }
    }
}

/// Equal when the inputs are: same operators, same values.
impl<M, const I: usize> PartialEq for FieldFilter<M, I> {
    fn eq(&self, other: &Self) -> bool {
        self.input.to_value() == other.input.to_value()
    }
}

impl<M, const I: usize> fmt::Debug for FieldFilter<M, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FieldFilter")
            .field(&self.input.to_value())
            .finish()
    }
}

/// A filter input with its type erased.
trait AnyInput: Send + Sync {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter>;
    fn weight(&self) -> usize;
    fn to_value(&self) -> Value;
    fn as_any(&self) -> &dyn Any;
    fn clone_box(&self) -> Box<dyn AnyInput>;
}

impl<T: InputType + FilterInput + Clone + 'static> AnyInput for T {
    fn to_filter(&self, field: FieldRef, path: &str) -> Result<Filter> {
        FilterInput::to_filter(self, field, path)
    }

    fn weight(&self) -> usize {
        FilterInput::weight(self)
    }

    fn to_value(&self) -> Value {
        InputType::to_value(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn clone_box(&self) -> Box<dyn AnyInput> {
        Box::new(self.clone())
    }
}
