//! What the derive generates for a model: a static [`ModelSpec`] and a [`Model`] impl.

use serde_json::Value as Json;

use crate::auth::Rules;
use crate::conflict::ConflictStrategy;
use crate::error::{DataSyncError, Result};
use crate::filter::{FieldKind, Filter, ScalarKind};
use crate::meta::Document;

/// One data field of a model.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// The external name: GraphQL field name, stored key, `orderBy.field`.
    pub name: &'static str,
    /// How it filters, or `None` for `#[datasync(skip_filter)]` fields.
    pub filter: Option<FieldKind>,
}

/// Everything the runtime needs to know about a model, built by the derive as a `static`.
pub struct ModelSpec {
    /// GraphQL type name (`Note`).
    pub type_name: &'static str,
    /// Plural used in operation names (`Notes`).
    pub plural: &'static str,
    /// Store collection / table name (`notes`).
    pub collection: &'static str,
    /// The data fields (the id excluded), in declaration order.
    pub fields: &'static [FieldSpec],
    /// What happens on a stale `_version`.
    pub conflict: &'static dyn ConflictStrategy,
    /// Who may read and write (`owner`, `auth(...)` attributes).
    pub rules: Rules,
}

impl std::fmt::Debug for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSpec")
            .field("type_name", &self.type_name)
            .field("collection", &self.collection)
            .field("fields", &self.fields)
            .field("conflict", &self.conflict.name())
            .field("rules", &self.rules)
            .finish()
    }
}

impl ModelSpec {
    /// The field with this external name.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The parts of a `Mutate<Model>Input`.
#[derive(Debug, Clone, PartialEq)]
pub struct MutateParts {
    /// Which record.
    pub id: String,
    /// The `_version` the client based its change on.
    pub version: i64,
    /// The fields the client sent; explicit `null` is kept as `Json::Null`.
    pub patch: Document,
}

/// Implemented by `#[derive(DataSync)]`; not meant to be implemented by hand.
///
/// Converts between the user's struct and the stored [`Document`], and names the generated
/// input types that the [`Repository`](crate::Repository) accepts.
pub trait Model: Sized + Send + Sync + 'static {
    /// `Create<Model>Input`.
    type Create: Send;
    /// `Mutate<Model>Input`.
    type Mutate: Send;
    /// `<Model>Filter`.
    type Filter: ModelFilter + Clone + Send + Sync + 'static;

    /// The static description of this model.
    fn spec() -> &'static ModelSpec;
    /// Splits a value into its id and stored data fields.
    fn to_document(&self) -> Result<(String, Document)>;
    /// Rebuilds a value from its id and stored data fields.
    fn from_document(id: String, data: Document) -> Result<Self, FieldError>;
    /// The client-chosen id (if any) and the data fields of a create input.
    fn create_parts(input: Self::Create) -> Result<(Option<String>, Document)>;
    /// The id, base version and patch of a mutate input.
    fn mutate_parts(input: Self::Mutate) -> Result<MutateParts>;

    /// A stand-in value (the model's `Default`, if it has one): what a removal carries in
    /// place of the data of a record that left the caller's read scope.
    fn placeholder() -> Option<Self> {
        None
    }
}

/// Converts a generated `<Model>Filter` input into the store-neutral [`Filter`].
pub trait ModelFilter {
    /// Validates the input and builds the filter tree.
    fn to_filter(&self) -> Result<Filter>;

    /// How much the input weighs: one per filter object (`{}` included) plus the weight of
    /// each field's input ([`FilterInput::weight`](crate::FilterInput::weight)). Checked
    /// against [`MAX_FILTER_WEIGHT`](crate::filter::MAX_FILTER_WEIGHT) before anything else.
    fn weight(&self) -> usize;
}

/// A value that can serve as a model's id field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the id of a datasync model",
    label = "the id field must be a `String`",
    note = "ids travel as GraphQL `ID` and are stored as strings; declare the id field as `String`"
)]
pub trait IdField {
    /// Builds the field from the stored id.
    fn from_id(id: String) -> Self;
    /// The id as text.
    fn as_id(&self) -> &str;
}

impl IdField for String {
    fn from_id(id: String) -> Self {
        id
    }
    fn as_id(&self) -> &str {
        self
    }
}

/// A type that can serve as a model's owner field (`#[datasync(owner)]`): the principal's id
/// is stored in it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the owner field of a datasync model",
    label = "the owner field must be a `String`",
    note = "the owner field holds the creating principal's id; declare it as `String`"
)]
pub trait OwnerField {}

impl OwnerField for String {}

/// A field value that did not fit the model's field type.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// External field name.
    pub field: &'static str,
    /// What serde said.
    pub message: String,
}

impl FieldError {
    /// As a client error about `input.<field>`.
    pub fn into_bad_input(self) -> DataSyncError {
        DataSyncError::bad_input(
            format!("input.{}", self.field),
            format!("invalid value for field {:?}: {}", self.field, self.message),
        )
    }

    /// As a server error: stored data no longer fits the model.
    pub fn into_internal(self, id: &str) -> DataSyncError {
        DataSyncError::internal(
            "a stored record does not match the model",
            format!("record {id:?}, field {:?}: {}", self.field, self.message),
        )
    }
}

impl ModelSpec {
    /// Brings values into their stored form in place: date-time fields become RFC 3339 text
    /// in UTC with nine fraction digits, so that text order is time order in every store.
    pub fn normalize(&self, doc: &mut Document) {
        for field in self.fields {
            let Some(kind) = field.filter else { continue };
            if kind.scalar != ScalarKind::DateTime {
                continue;
            }
            match doc.get_mut(field.name) {
                Some(Json::String(text)) => normalize_text(text),
                Some(Json::Array(items)) => items.iter_mut().for_each(|item| {
                    if let Json::String(text) = item {
                        normalize_text(text)
                    }
                }),
                _ => {}
            }
        }
    }
}

fn normalize_text(text: &mut String) {
    if let Some(normal) = crate::filter::normalize_datetime(text) {
        *text = normal;
    }
}
