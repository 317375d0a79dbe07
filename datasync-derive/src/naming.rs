//! Name conversions: GraphQL field names, plurals, collection names.

/// `note_id` -> `noteId` (the async-graphql field naming rule).
pub fn lower_camel(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let leading = ident.len() - ident.trim_start_matches('_').len();
    let mut out = "_".repeat(leading);
    let mut upper = false;
    for ch in ident[leading..].chars() {
        if ch == '_' {
            upper = !out.is_empty() && out.len() > leading;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `TodoItem` -> `todoItem`.
pub fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `TodoItems` -> `todo_items`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// English plural of a type name: `Note` -> `Notes`, `Category` -> `Categories`,
/// `Box` -> `Boxes`.
pub fn plural(singular: &str) -> String {
    let lower = singular.to_lowercase();
    let ends_consonant_y = lower.ends_with('y')
        && lower
            .chars()
            .rev()
            .nth(1)
            .is_some_and(|c| !"aeiou".contains(c));
    if ends_consonant_y {
        format!("{}ies", &singular[..singular.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        format!("{singular}es")
    } else {
        format!("{singular}s")
    }
}

/// A valid GraphQL name that GraphQL does not reserve (`__` prefix).
pub fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(lower_camel("note_id"), "noteId");
        assert_eq!(lower_camel("title"), "title");
        assert_eq!(lower_camel("r#type"), "type");
        assert_eq!(lower_camel("a_b_c"), "aBC");
        assert_eq!(snake("TodoItems"), "todo_items");
        assert_eq!(lower_first("TodoItem"), "todoItem");
        assert_eq!(plural("Note"), "Notes");
        assert_eq!(plural("Category"), "Categories");
        assert_eq!(plural("Day"), "Days");
        assert_eq!(plural("Box"), "Boxes");
        assert_eq!(plural("Address"), "Addresses");
        assert_eq!(plural("Match"), "Matches");
        assert!(is_graphql_name("_version") && !is_graphql_name("__x") && !is_graphql_name("1a"));
    }
}
