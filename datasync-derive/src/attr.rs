//! The whole `#[datasync(...)]` attribute grammar.
//!
//! Container: `collection = "..."`, `plural = "..."`, `conflict = "..."`, `owner = "..."`,
//! `auth(read = "...", write = "...")`, `rxdb`.
//! Field: `id`, `skip_filter`, `rename = "..."`, `owner`.

use proc_macro2::Span;
use syn::{Attribute, LitStr, Token};

use crate::ctxt::Ctxt;

/// Container attributes.
pub const CONTAINER_KEYS: &[&str] = &["collection", "plural", "conflict", "owner", "auth", "rxdb"];
/// Field attributes.
pub const FIELD_KEYS: &[&str] = &["id", "skip_filter", "rename", "owner"];
/// The keys inside `auth(...)`.
pub const AUTH_KEYS: &[&str] = &["read", "write"];
/// The rules `auth(read = ..., write = ...)` accepts, besides `group:<name>[,<name>...]`.
pub const AUTH_RULES: &[&str] = &["public", "private", "owner", "nobody"];
/// Accepted `conflict` strategies, each with the runtime type (under `__private`) that
/// implements it.
pub const CONFLICT_STRATEGIES: &[(&str, &str)] = &[
    ("throw", "Throw"),
    ("client_wins", "ClientWins"),
    ("server_wins", "ServerWins"),
    ("merge", "Merge"),
];

/// The runtime type implementing a (checked) `conflict` strategy.
pub fn strategy_type(name: &str) -> syn::Ident {
    let ty = CONFLICT_STRATEGIES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("Throw", |(_, ty)| ty);
    syn::Ident::new(ty, Span::call_site())
}

/// A string attribute value with where it was written.
#[derive(Clone)]
pub struct Value {
    pub text: String,
    pub lit: LitStr,
}

#[derive(Default)]
pub struct ContainerAttrs {
    pub collection: Option<Value>,
    pub plural: Option<Value>,
    pub conflict: Option<Value>,
    /// `owner = "field"`: names the owner field.
    pub owner: Option<Value>,
    pub auth: AuthAttrs,
    /// `rxdb`: generate the RxDB replication dialect.
    pub rxdb: Option<Span>,
}

/// `auth(read = "...", write = "...")`.
#[derive(Default)]
pub struct AuthAttrs {
    pub read: Option<Value>,
    pub write: Option<Value>,
}

#[derive(Default)]
pub struct FieldAttrs {
    pub id: Option<Span>,
    pub skip_filter: Option<Span>,
    pub rename: Option<Value>,
    pub owner: Option<Span>,
}

pub fn container(cx: &mut Ctxt, attrs: &[Attribute]) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    each_key(cx, attrs, |cx, key, meta| {
        let slot = match key.as_str() {
            "collection" => &mut out.collection,
            "plural" => &mut out.plural,
            "conflict" => &mut out.conflict,
            "owner" => &mut out.owner,
            "auth" => {
                auth(cx, &mut out.auth, meta)?;
                return Ok(true);
            }
            "rxdb" => {
                flag(cx, &mut out.rxdb, meta, &key)?;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        let value = string_value(meta)?;
        set_once(cx, slot, value, &key);
        Ok(true)
    });
    out
}

/// `auth(read = "...", write = "...")`.
fn auth(
    cx: &mut Ctxt,
    out: &mut AuthAttrs,
    meta: &syn::meta::ParseNestedMeta<'_>,
) -> syn::Result<()> {
    meta.parse_nested_meta(|inner| {
        let key = inner
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let slot = match key.as_str() {
            "read" => &mut out.read,
            "write" => &mut out.write,
            _ => {
                let path = &inner.path;
                let name = quote::quote!(#path).to_string().replace(' ', "");
                let hint = AUTH_KEYS
                    .iter()
                    .find(|k| edit_distance(k, &key) <= 2)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                cx.error_spanned_by(
                    &inner.path,
                    format!(
                        "unknown key `{name}` in `auth(...)`{hint} (expected `read` or `write`)"
                    ),
                );
                if inner.input.peek(Token![=]) {
                    inner.value()?.parse::<syn::Expr>()?;
                }
                return Ok(());
            }
        };
        let value = string_value(&inner)?;
        set_once(cx, slot, value, &format!("auth({key})"));
        Ok(())
    })
}

pub fn field(cx: &mut Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    each_key(cx, attrs, |cx, key, meta| {
        match key.as_str() {
            "id" => flag(cx, &mut out.id, meta, &key)?,
            "skip_filter" => flag(cx, &mut out.skip_filter, meta, &key)?,
            "owner" => flag(cx, &mut out.owner, meta, &key)?,
            "rename" => {
                let value = string_value(meta)?;
                set_once(cx, &mut out.rename, value, &key);
            }
            _ => return Ok(false),
        }
        Ok(true)
    });
    out
}

/// Calls `handle` for every key of every `#[datasync(...)]`; reports unknown keys (with a
/// suggestion) and keeps going, so all problems are reported at once.
fn each_key(
    cx: &mut Ctxt,
    attrs: &[Attribute],
    mut handle: impl FnMut(&mut Ctxt, String, &syn::meta::ParseNestedMeta<'_>) -> syn::Result<bool>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("datasync")) {
        if let syn::Meta::Path(_) = attr.meta {
            cx.error_spanned_by(
                attr,
                "expected `#[datasync(...)]` with at least one setting",
            );
            continue;
        }
        let mut unknown = Vec::new();
        let parsed = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            if !handle(&mut *cx, key, &meta)? {
                unknown.push(meta.path.clone());
                // Skip the value so parsing can go on to the next key.
                if meta.input.peek(Token![=]) {
                    meta.value()?.parse::<syn::Expr>()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    content.parse::<proc_macro2::TokenStream>()?;
                }
            }
            Ok(())
        });
        if let Err(err) = parsed {
            cx.syn_error(err);
        }
        for path in unknown {
            cx.error_spanned_by(&path, unknown_message(&path));
        }
    }
}

fn unknown_message(path: &syn::Path) -> String {
    let name = quote::quote!(#path).to_string().replace(' ', "");
    let (kind, keys) = (
        "datasync attribute",
        CONTAINER_KEYS
            .iter()
            .chain(FIELD_KEYS)
            .copied()
            .collect::<Vec<_>>(),
    );
    match keys.iter().find(|k| edit_distance(k, &name) <= 2) {
        Some(close) => format!("unknown {kind} `{name}`; did you mean `{close}`?"),
        None => format!("unknown {kind} `{name}`"),
    }
}

fn string_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Value> {
    let lit: LitStr = meta.value()?.parse()?;
    Ok(Value {
        text: lit.value(),
        lit,
    })
}

fn set_once(cx: &mut Ctxt, slot: &mut Option<Value>, value: Value, key: &str) {
    if slot.is_some() {
        cx.error_spanned_by(&value.lit, format!("duplicate datasync attribute `{key}`"));
    } else {
        *slot = Some(value);
    }
}

fn flag(
    cx: &mut Ctxt,
    slot: &mut Option<Span>,
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` takes no value: write `#[datasync({key})]`"),
        );
    }
    if slot.is_some() {
        cx.error_spanned_by(&meta.path, format!("duplicate datasync attribute `{key}`"));
    } else {
        *slot = Some(
            meta.path
                .get_ident()
                .map_or_else(Span::call_site, |i| i.span()),
        );
    }
    Ok(())
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attribute reference in README.md lists exactly what the parser accepts.
    #[test]
    fn readme_reference_matches_the_parser() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = readme
            .split("## Attribute reference")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has an attribute reference");
        // Rows of the two tables: "| `key ...` | ...".
        let documented: Vec<String> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .map(|l| l.split(['`', ' ']).next().unwrap_or_default().to_owned())
            .collect();
        let accepted: Vec<String> = CONTAINER_KEYS
            .iter()
            .chain(FIELD_KEYS)
            .map(|k| k.to_string())
            .collect();
        assert_eq!(
            documented, accepted,
            "README attribute tables vs. the parser"
        );
        for (strategy, _) in CONFLICT_STRATEGIES {
            assert!(
                section.contains(&format!("`{strategy}`")),
                "README lists conflict strategy {strategy}"
            );
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("collecton", "collection"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(strategy_type("merge").to_string(), "Merge");
    }
}
