//! The schema check that no two models generate the same query operation.
//!
//! async-graphql's `MergedObject` keeps one of two fields with the same name and drops the
//! other without a word. Two models with the same plural (`#[datasync(plural = "Items")]`
//! on both) would therefore lose one model's `findItems` and `syncItems`. A derive sees one
//! model at a time, so the check runs when the schema is wired: the generated operations
//! are recognised by name and result type (`find<Plural>: <Model>ResultList!`,
//! `sync<Plural>: <Model>DeltaList!`) in the generated query objects (`<Model>Query`)
//! among the merged parts. Fields of the user's own types are never counted.

use std::collections::BTreeMap;

use async_graphql::registry::{MetaType, Registry};
use async_graphql::OutputType;

/// Why two models cannot share a schema, if they cannot.
///
/// ```
/// use async_graphql::{MergedObject, Object};
/// use datasync_core::graphql::colliding_operations;
///
/// #[derive(Default)]
/// struct Hello;
/// #[Object]
/// impl Hello {
///     async fn hello(&self) -> &str { "hi" }
/// }
/// #[derive(MergedObject, Default)]
/// struct Query(Hello);
///
/// assert_eq!(colliding_operations::<Query>(), None);
/// ```
pub fn colliding_operations<Q: OutputType>() -> Option<String> {
    let mut registry = Registry::default();
    // `Schema::build` has already registered these types and refused GraphQL name
    // conflicts, so this only panics for names the schema was told to ignore
    // (`build_with_ignore_name_conflicts`); the check is then left out.
    let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Q::create_type_info(&mut registry);
    }));
    if filled.is_err() {
        return None;
    }
    // Every merged part stays in this registry as its own object type, so a field the
    // merged root lost is still found in the part that declared it: the generated query
    // object of its model, `<Model>Query`.
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (type_name, ty) in &registry.types {
        let MetaType::Object { fields, .. } = ty else {
            continue;
        };
        for field in fields.values() {
            let Some(model) = generated_by(&field.name, &field.ty) else {
                continue;
            };
            if type_name.strip_suffix("Query") != Some(model) {
                continue;
            }
            match owners.insert(&field.name, model) {
                Some(other) if other != model => {
                    let (first, second) = (other.min(model), other.max(model));
                    return Some(format!(
                        "models `{first}` and `{second}` both define `{}`, and the schema would keep only one of them: give one model another `#[datasync(plural = \"...\")]`",
                        field.name
                    ));
                }
                _ => {}
            }
        }
    }
    None
}

/// The model a `find<Plural>`/`sync<Plural>` field of type `ty` was generated for.
fn generated_by<'a>(name: &str, ty: &'a str) -> Option<&'a str> {
    let ty = ty.strip_suffix('!')?;
    if name.strip_prefix("find").is_some_and(|p| !p.is_empty()) {
        ty.strip_suffix("ResultList")
    } else if name.strip_prefix("sync").is_some_and(|p| !p.is_empty()) {
        ty.strip_suffix("DeltaList")
    } else {
        None
    }
    .filter(|model| !model.is_empty())
}

#[cfg(test)]
mod tests {
    use super::generated_by;

    #[test]
    fn recognises_generated_operations() {
        assert_eq!(generated_by("findNotes", "NoteResultList!"), Some("Note"));
        assert_eq!(generated_by("syncNotes", "NoteDeltaList!"), Some("Note"));
        assert_eq!(generated_by("findNotes", "[Note!]!"), None);
        assert_eq!(generated_by("getNote", "Note"), None);
        assert_eq!(generated_by("find", "NoteResultList!"), None);
        assert_eq!(generated_by("findX", "ResultList!"), None);
    }
}
