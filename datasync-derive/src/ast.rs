//! The derive input, parsed once into the few things generation needs.

use syn::{Attribute, Data, DeriveInput, Fields, Ident, Type, Visibility};

use crate::attr::{self, ContainerAttrs, FieldAttrs};
use crate::ctxt::Ctxt;
use crate::naming;

/// A model struct.
pub struct Model<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub docs: Vec<&'a Attribute>,
    pub attrs: ContainerAttrs,
    /// Every named field, in declaration order.
    pub fields: Vec<Field<'a>>,
}

/// One named field.
pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub docs: Vec<&'a Attribute>,
    pub attrs: FieldAttrs,
    /// External name: GraphQL name and stored key (`rename`, or the lowerCamelCase ident).
    pub name: String,
}

impl<'a> Model<'a> {
    /// Parses `input`; `None` (with errors recorded) if it is not a struct with named fields.
    pub fn from_input(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Model<'a>> {
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named),
                Fields::Unnamed(_) => {
                    cx.error_spanned_by(
                        &data.fields,
                        "DataSync needs a struct with named fields; tuple structs have no field names to expose",
                    );
                    None
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "DataSync needs a struct with named fields, including an id field",
                    );
                    None
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "DataSync can only be derived for structs with named fields, not enums",
                );
                None
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "DataSync can only be derived for structs with named fields, not unions",
                );
                None
            }
        };
        let attrs = attr::container(cx, &input.attrs);
        let fields = named?
            .named
            .iter()
            .filter_map(|f| {
                let ident = f.ident.as_ref()?;
                let attrs = attr::field(cx, &f.attrs);
                let name = attrs.rename.as_ref().map_or_else(
                    || naming::lower_camel(&ident.to_string()),
                    |r| r.text.clone(),
                );
                Some(Field {
                    ident,
                    ty: &f.ty,
                    docs: docs(&f.attrs),
                    attrs,
                    name,
                })
            })
            .collect();
        Some(Model {
            ident: &input.ident,
            vis: &input.vis,
            docs: docs(&input.attrs),
            attrs,
            fields,
        })
    }

    /// The id field: marked `#[datasync(id)]`, else named `id`.
    pub fn id_field(&self) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.attrs.id.is_some())
            .or_else(|| self.fields.iter().find(|f| f.ident == "id"))
    }

    /// The owner field: marked `#[datasync(owner)]`, or named by `#[datasync(owner = "...")]`
    /// on the struct.
    pub fn owner_field(&self) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.attrs.owner.is_some())
            .or_else(|| {
                let named = self.attrs.owner.as_ref()?;
                self.fields.iter().find(|f| f.ident == named.text.as_str())
            })
    }

    /// The read rule (`auth(read = ...)`), or the default: `owner` for a model with an owner
    /// field, else `public`.
    pub fn read_rule(&self) -> String {
        self.rule(self.attrs.auth.read.as_ref())
    }

    /// The write rule, defaulting like [`read_rule`](Self::read_rule).
    pub fn write_rule(&self) -> String {
        self.rule(self.attrs.auth.write.as_ref())
    }

    fn rule(&self, value: Option<&crate::attr::Value>) -> String {
        match value {
            Some(v) => v.text.clone(),
            None if self.owner_field().is_some() => "owner".to_owned(),
            None => "public".to_owned(),
        }
    }

    /// Every field but the id.
    pub fn data_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        let id = self.id_field().map(|f| f.ident);
        self.fields.iter().filter(move |f| Some(f.ident) != id)
    }

    /// GraphQL type name.
    pub fn type_name(&self) -> String {
        self.ident.to_string()
    }

    /// Plural used in operation names.
    pub fn plural(&self) -> String {
        self.attrs
            .plural
            .as_ref()
            .map_or_else(|| naming::plural(&self.type_name()), |p| p.text.clone())
    }

    /// Collection / table name.
    pub fn collection(&self) -> String {
        self.attrs
            .collection
            .as_ref()
            .map_or_else(|| naming::snake(&self.plural()), |c| c.text.clone())
    }

    /// Conflict strategy name.
    pub fn conflict(&self) -> String {
        self.attrs
            .conflict
            .as_ref()
            .map_or_else(|| "throw".to_owned(), |c| c.text.clone())
    }
}

fn docs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("doc")).collect()
}
