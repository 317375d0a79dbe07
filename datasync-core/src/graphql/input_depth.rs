//! A limit on how deeply input values nest.
//!
//! Recursive inputs (`NoteFilter.not`, `and`, `or`) let a client send values nested thousands
//! of levels deep, and every layer that walks them (validation, input parsing, filter
//! translation) recurses. async-graphql limits the depth of selection sets, not of values; this
//! extension rejects over-deep values, in variables and in the query text, before anything else
//! looks at them.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Request, ServerError, ServerResult, Value, Variables};

use crate::error::DataSyncError;

/// The deepest nesting of lists and objects accepted in one input value.
pub const MAX_INPUT_DEPTH: usize = 64;
/// The deepest bracket nesting accepted in query text, checked before parsing (the parser
/// itself recurses): room for [`MAX_INPUT_DEPTH`] inside deep selection sets.
const MAX_TEXT_NESTING: usize = 160;

/// Rejects input values nested deeper than [`MAX_INPUT_DEPTH`] with `BAD_USER_INPUT`.
///
/// Installed by [`SchemaBuilderExt::datasync`](crate::SchemaBuilderExt::datasync).
#[derive(Debug, Clone, Copy, Default)]
pub struct InputDepthLimit;

impl ExtensionFactory for InputDepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputDepthLimit)
    }
}

#[async_trait::async_trait]
impl Extension for InputDepthLimit {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.variables.values().any(too_deep) {
            return Err(too_deep_error());
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if text_nesting(query) > MAX_TEXT_NESTING {
            return Err(too_deep_error());
        }
        let doc = next.run(ctx, query, variables).await?;
        if document_too_deep(&doc) {
            return Err(too_deep_error());
        }
        Ok(doc)
    }
}

/// Whether GraphQL text nests brackets deeper than the parser may safely go.
pub(crate) fn too_deeply_nested_text(query: &str) -> bool {
    text_nesting(query) > MAX_TEXT_NESTING
}

/// The deepest nesting of `{`, `[` and `(` in GraphQL text, ignoring strings and comments.
fn text_nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut i, mut depth, mut max) = (0, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            // Comments and single-line strings end at any line terminator, `\r` included.
            b'#' => {
                while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    max
}

pub(crate) fn too_deep_error() -> ServerError {
    let err = DataSyncError::BadInput {
        field: None,
        message: format!("an input value is nested deeper than {MAX_INPUT_DEPTH} levels"),
    };
    err.extend().into_server_error(Default::default())
}

/// Nesting depth of a value, without recursion.
fn too_deep(value: &Value) -> bool {
    deeper_than(value, |v| match v {
        Value::List(items) => Some(Box::new(items.iter())),
        Value::Object(map) => Some(Box::new(map.values())),
        _ => None,
    })
}

fn deeper_than<'a, V: 'a>(
    root: &'a V,
    children: impl Fn(&'a V) -> Option<Box<dyn Iterator<Item = &'a V> + 'a>>,
) -> bool {
    let mut stack = vec![(root, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        if let Some(kids) = children(value) {
            if depth > MAX_INPUT_DEPTH {
                return true;
            }
            stack.extend(kids.map(|kid| (kid, depth + 1)));
        }
    }
    false
}

fn document_too_deep(doc: &ExecutableDocument) -> bool {
    use async_graphql::parser::types::Directive;
    use async_graphql_value::Value as ParserValue;

    let value_too_deep = |v: &ParserValue| {
        deeper_than(v, |v| match v {
            ParserValue::List(items) => Some(Box::new(items.iter())),
            ParserValue::Object(map) => Some(Box::new(map.values())),
            _ => None,
        })
    };
    let directives_too_deep = |ds: &[async_graphql::Positioned<Directive>]| {
        ds.iter().any(|d| {
            d.node
                .arguments
                .iter()
                .any(|(_, v)| value_too_deep(&v.node))
        })
    };
    fn selections<'a>(set: &'a SelectionSet, out: &mut Vec<&'a Selection>) {
        for sel in &set.items {
            out.push(&sel.node);
            match &sel.node {
                Selection::Field(f) => selections(&f.node.selection_set.node, out),
                Selection::InlineFragment(f) => selections(&f.node.selection_set.node, out),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut all = Vec::new();
    for (_, op) in doc.operations.iter() {
        if directives_too_deep(&op.node.directives)
            || op.node.variable_definitions.iter().any(|var| {
                var.node
                    .default_value
                    .as_ref()
                    .is_some_and(|d| too_deep(&d.node))
            })
        {
            return true;
        }
        selections(&op.node.selection_set.node, &mut all);
    }
    for fragment in doc.fragments.values() {
        selections(&fragment.node.selection_set.node, &mut all);
    }
    all.iter().any(|sel| match sel {
        Selection::Field(f) => {
            f.node
                .arguments
                .iter()
                .any(|(_, v)| value_too_deep(&v.node))
                || directives_too_deep(&f.node.directives)
        }
        Selection::InlineFragment(f) => directives_too_deep(&f.node.directives),
        Selection::FragmentSpread(f) => directives_too_deep(&f.node.directives),
    })
}

#[cfg(test)]
mod tests {
    use super::text_nesting;

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert_eq!(text_nesting("{ a(x: [1, {b: 2}]) { c } }"), 4);
        assert_eq!(text_nesting(r#"{ a(s: "{{{[[[(((") }"#), 2);
        assert_eq!(text_nesting("{ a # {{{{{\n }"), 1);
        assert_eq!(text_nesting("#\r{{{"), 3);
        assert_eq!(text_nesting("\"\r{{{"), 3);
        assert_eq!(text_nesting(r#"{ a(s: """ {{{ \""" {{ """) }"#), 2);
        assert_eq!(text_nesting(r#"{ a(s: "\"{{{") }"#), 2);
        assert_eq!(text_nesting("{{{"), 3);
    }
}
