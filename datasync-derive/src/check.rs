//! Validation of a parsed model, separate from parsing; every problem is recorded.

use std::collections::HashMap;

use crate::ast::Model;
use crate::attr::{edit_distance, AUTH_RULES, CONFLICT_STRATEGIES};
use crate::ctxt::Ctxt;
use crate::naming::is_graphql_name;

/// External names the generated types use themselves.
const RESERVED_NAMES: &[&str] = &[
    "_version",
    "_deleted",
    "createdAt",
    "updatedAt",
    "and",
    "or",
    "not",
];
/// Rust field names the generated types use themselves.
const RESERVED_IDENTS: &[&str] = &[
    "_version",
    "_deleted",
    "_created_at",
    "_updated_at",
    "and",
    "or",
    "not",
];

pub fn check(cx: &mut Ctxt, input: &syn::DeriveInput, model: &Model<'_>) {
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "DataSync models cannot be generic: each model is one concrete GraphQL type",
        );
    }
    check_id(cx, model);
    check_fields(cx, model);
    check_container(cx, model);
    check_auth(cx, model);
    check_rxdb(cx, model);
}

/// Names the RxDB documents use for metadata.
const RXDB_NAMES: &[&str] = &["version", "deleted"];

fn check_rxdb(cx: &mut Ctxt, model: &Model<'_>) {
    if model.attrs.rxdb.is_none() {
        return;
    }
    for field in model.data_fields() {
        if RXDB_NAMES.contains(&field.name.as_str()) {
            cx.error_spanned_by(
                field.ident,
                format!(
                    "`{}` is the name RxDB documents use for datasync metadata (`rxdb` is on): rename the field or use `#[datasync(rename = \"...\")]`",
                    field.name
                ),
            );
        }
    }
}

/// A rule of `auth(read = ..., write = ...)`: one of `AUTH_RULES`, or `group:a[,b...]`.
pub fn parse_rule(text: &str) -> Result<Rule<'_>, String> {
    if let Some(groups) = text.strip_prefix("group:") {
        let names: Vec<&str> = groups.split(',').map(str::trim).collect();
        if names.iter().any(|n| n.is_empty()) {
            return Err(
                "`group:` needs group names, e.g. \"group:editors\" or \"group:editors,admins\""
                    .into(),
            );
        }
        return Ok(Rule::Groups(names));
    }
    match text {
        "public" => Ok(Rule::Named("Public")),
        "private" => Ok(Rule::Named("Private")),
        "owner" => Ok(Rule::Named("Owner")),
        "nobody" => Ok(Rule::Named("Nobody")),
        other => {
            let hint = AUTH_RULES
                .iter()
                .find(|r| edit_distance(r, other) <= 2)
                .map(|r| format!("; did you mean \"{r}\"?"))
                .unwrap_or_default();
            Err(format!(
                "unknown rule \"{other}\"{hint} (expected public, private, owner, nobody or group:<name>)"
            ))
        }
    }
}

/// A checked rule: a variant of the runtime's `Rule`, or its groups.
pub enum Rule<'a> {
    Named(&'static str),
    Groups(Vec<&'a str>),
}

fn check_auth(cx: &mut Ctxt, model: &Model<'_>) {
    let marked: Vec<_> = model
        .fields
        .iter()
        .filter(|f| f.attrs.owner.is_some())
        .collect();
    for extra in marked.iter().skip(1) {
        cx.error_spanned_by(extra.ident, "only one field can be `#[datasync(owner)]`");
    }
    if let Some(named) = &model.attrs.owner {
        match model.fields.iter().find(|f| f.ident == named.text.as_str()) {
            None => cx.error_spanned_by(
                &named.lit,
                format!("`owner = \"{}\"` names no field of this struct", named.text),
            ),
            Some(field) if !marked.is_empty() && marked[0].ident != field.ident => cx.error_spanned_by(
                &named.lit,
                "the owner is named twice: keep `#[datasync(owner)]` on the field or `owner = \"...\"` on the struct",
            ),
            Some(_) => {}
        }
    }
    if let (Some(owner), Some(id)) = (model.owner_field(), model.id_field()) {
        if owner.ident == id.ident {
            cx.error_spanned_by(owner.ident, "the id field cannot be the owner field");
        }
    }
    for value in [&model.attrs.auth.read, &model.attrs.auth.write]
        .into_iter()
        .flatten()
    {
        match parse_rule(&value.text) {
            Err(message) => cx.error_spanned_by(&value.lit, message),
            Ok(Rule::Named("Owner")) if model.owner_field().is_none() => cx.error_spanned_by(
                &value.lit,
                "rule \"owner\" needs an owner field: mark a `String` field `#[datasync(owner)]`",
            ),
            Ok(_) => {}
        }
    }
}

fn check_id(cx: &mut Ctxt, model: &Model<'_>) {
    let marked: Vec<_> = model
        .fields
        .iter()
        .filter(|f| f.attrs.id.is_some())
        .collect();
    if marked.len() > 1 {
        for f in &marked[1..] {
            cx.error_spanned_by(f.ident, "only one field can be `#[datasync(id)]`");
        }
    }
    match model.id_field() {
        None => cx.error_spanned_by(
            model.ident,
            "DataSync model has no id field: add `pub id: String` or mark a `String` field `#[datasync(id)]`",
        ),
        Some(id) => {
            if let Some(rename) = &id.attrs.rename {
                cx.error_spanned_by(&rename.lit, "the id field is always `id` in GraphQL; remove `rename`");
            }
            if let Some(span) = id.attrs.skip_filter {
                cx.syn_error(syn::Error::new(span, "the id field is always filterable; remove `skip_filter`"));
            }
            if let Some(other) = model.fields.iter().find(|f| f.ident == "id" && f.ident != id.ident) {
                cx.error_spanned_by(
                    other.ident,
                    "a field named `id` must be the id field: rename it, or drop `#[datasync(id)]` from the other field",
                );
            }
        }
    }
}

fn check_fields(cx: &mut Ctxt, model: &Model<'_>) {
    let mut seen: HashMap<&str, &syn::Ident> = HashMap::new();
    for field in model.data_fields() {
        let name = field.name.as_str();
        let span_of = |cx: &mut Ctxt, msg: String| match &field.attrs.rename {
            Some(r) => cx.error_spanned_by(&r.lit, msg),
            None => cx.error_spanned_by(field.ident, msg),
        };
        if RESERVED_NAMES.contains(&name)
            || RESERVED_IDENTS.contains(&field.ident.to_string().as_str())
        {
            span_of(
                cx,
                format!(
                    "`{name}` is reserved by datasync (server-owned metadata and filter operators: {}); rename the field or use `#[datasync(rename = \"...\")]`",
                    RESERVED_NAMES.join(", ")
                ),
            );
        } else if name.starts_with('_') {
            span_of(cx, format!("`{name}`: field names starting with `_` are reserved for datasync metadata; rename the field or use `#[datasync(rename = \"...\")]`"));
        } else if name == "id" {
            span_of(
                cx,
                "`id` is the GraphQL name of the id field; choose another name".into(),
            );
        } else if !is_graphql_name(name) {
            span_of(cx, format!("`{name}` is not a valid GraphQL field name (letters, digits, `_`; not starting with a digit or `__`)"));
        } else if let Some(first) = seen.insert(name, field.ident) {
            span_of(
                cx,
                format!("two fields are named `{name}` in GraphQL (the other is `{first}`)"),
            );
        }
    }
}

fn check_container(cx: &mut Ctxt, model: &Model<'_>) {
    if let Some(conflict) = &model.attrs.conflict {
        let names: Vec<&str> = CONFLICT_STRATEGIES.iter().map(|(n, _)| *n).collect();
        if !names.contains(&conflict.text.as_str()) {
            let hint = names
                .iter()
                .find(|s| edit_distance(s, &conflict.text) <= 2)
                .map(|s| format!("; did you mean \"{s}\"?"))
                .unwrap_or_default();
            cx.error_spanned_by(
                &conflict.lit,
                format!(
                    "unknown conflict strategy \"{}\"{hint} (expected one of: {})",
                    conflict.text,
                    names.join(", ")
                ),
            );
        }
    }
    if let Some(plural) = &model.attrs.plural {
        if plural.text == model.type_name() {
            let name = &plural.text;
            cx.error_spanned_by(
                &plural.lit,
                format!(
                    "`plural` must differ from the type name: `find{name}` and `sync{name}` return many records but read like `get{name}`; remove `plural` to get \"{}\", or name the plural yourself",
                    crate::naming::plural(name)
                ),
            );
        } else if !is_graphql_name(&plural.text) {
            cx.error_spanned_by(&plural.lit, "`plural` must be a valid GraphQL name (letters, digits, `_`), e.g. `plural = \"People\"`");
        }
    }
    if let Some(collection) = &model.attrs.collection {
        let text = &collection.text;
        let valid = !text.is_empty()
            && text.len() <= 120
            && text
                .chars()
                .all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric())
            && !text.starts_with("_datasync");
        if !valid {
            cx.error_spanned_by(
                &collection.lit,
                "`collection` must be 1 to 120 letters, digits, `_` or `-`, not starting with `_datasync`",
            );
        }
    }
}
