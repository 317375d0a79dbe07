//! Request limits, on by default: how deep a query nests, how much it may cost (aliases and
//! list sizes count), how many fields and root fields it may select once fragments are
//! expanded. async-graphql enforces depth and complexity; the field counts are checked here,
//! before async-graphql validates anything (a query made of nested fragment spreads is tiny as
//! text, but each level doubles what validation walks).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Request, ServerError, ServerResult};

use crate::error::DataSyncError;
use crate::query::{DEFAULT_FIND_LIMIT, DEFAULT_SYNC_LIMIT, MAX_LIMIT};

/// The limits every request is checked against. Defaults let every query of a normal client
/// through (a full `syncNotes(limit: 1000)` page, GraphiQL's introspection) and refuse alias
/// amplification, deep nesting and fragment bombs.
///
/// ```
/// use datasync_core::graphql::RequestLimits;
/// let limits = RequestLimits::default().complexity(50_000).depth(12);
/// assert_eq!(limits.max_complexity(), 50_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    depth: usize,
    complexity: usize,
    recursive_depth: usize,
    fields: usize,
    root_fields: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            depth: 20,
            complexity: 20_000,
            recursive_depth: 24,
            fields: 2_000,
            root_fields: 50,
        }
    }
}

impl RequestLimits {
    /// How deep selections may nest (default 20).
    pub fn depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// The most a query may cost (default 20,000): every selected field counts 1, and the
    /// items of `find<Models>` and `sync<Models>` count once per record the page can hold
    /// (`page.limit`, default 100; `limit`, default 100), so 2,000 aliased `findNotes` are
    /// refused before anything runs.
    pub fn complexity(mut self, complexity: usize) -> Self {
        self.complexity = complexity;
        self
    }

    /// How deeply selection sets and fragment spreads may nest (default 24).
    pub fn recursive_depth(mut self, depth: usize) -> Self {
        self.recursive_depth = depth;
        self
    }

    /// How many fields one request may select, aliases and fragments expanded (default
    /// 2,000).
    pub fn fields(mut self, fields: usize) -> Self {
        self.fields = fields;
        self
    }

    /// How many root fields (aliases included) one operation may select (default 50).
    pub fn root_fields(mut self, fields: usize) -> Self {
        self.root_fields = fields;
        self
    }

    /// The depth limit.
    pub fn max_depth(&self) -> usize {
        self.depth
    }

    /// The complexity limit.
    pub fn max_complexity(&self) -> usize {
        self.complexity
    }

    /// The recursion limit.
    pub fn max_recursive_depth(&self) -> usize {
        self.recursive_depth
    }

    pub(crate) fn error_for(&self, message: &str) -> Option<DataSyncError> {
        let (limit, max) = if message.starts_with("Query is too complex") {
            ("complexity", self.complexity)
        } else if message.starts_with("Query is nested too deep") {
            ("depth", self.depth)
        } else if message.starts_with("The recursion depth of the query") {
            ("recursiveDepth", self.recursive_depth)
        } else {
            return None;
        };
        Some(exceeded(limit, max, message))
    }
}

fn exceeded(limit: &str, max: usize, what: &str) -> DataSyncError {
    DataSyncError::LimitExceeded {
        limit: limit.to_owned(),
        max: max as u64,
        message: format!("{what} (limit `{limit}`: {max}); nothing was run"),
    }
}

/// The cost of a `find<Models>` field: its selection once per record a page can hold.
pub fn find_cost(page: &Option<super::PageRequest>, child_complexity: usize) -> usize {
    let rows = page
        .as_ref()
        .and_then(|p| p.limit)
        .map_or(DEFAULT_FIND_LIMIT, |l| l.clamp(0, MAX_LIMIT as i32) as u32);
    1usize.saturating_add((rows.max(1) as usize).saturating_mul(child_complexity))
}

/// The cost of a `sync<Models>` field: its selection once per change a page can hold.
pub fn sync_cost(limit: &Option<i32>, child_complexity: usize) -> usize {
    let rows = limit.map_or(DEFAULT_SYNC_LIMIT, |l| l.clamp(1, MAX_LIMIT as i32) as u32);
    1usize.saturating_add((rows as usize).saturating_mul(child_complexity))
}

/// The extension that counts fields before validation.
pub(crate) struct FieldCounts(pub RequestLimits);

impl ExtensionFactory for FieldCounts {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldCounts(self.0))
    }
}

#[async_trait::async_trait]
impl Extension for FieldCounts {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // The parser recurses: too deeply nested text is refused before it is parsed.
        if super::input_depth::too_deeply_nested_text(&request.query) {
            return Err(super::input_depth::too_deep_error());
        }
        let document = request.parsed_query()?;
        check(document, &self.0)?;
        next.run(ctx, request).await
    }
}

fn check(document: &ExecutableDocument, limits: &RequestLimits) -> ServerResult<()> {
    let mut counter = Counter {
        document,
        memo: HashMap::new(),
    };
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        let (fields, roots) = counter.selection_set(&operation.node.selection_set.node, 0);
        if roots > limits.root_fields {
            return Err(limit_error(exceeded(
                "rootFields",
                limits.root_fields,
                &format!("the operation selects {roots} root fields"),
            )));
        }
        total = total.saturating_add(fields);
    }
    if total > limits.fields {
        return Err(limit_error(exceeded(
            "fields",
            limits.fields,
            &format!("the request selects {total} fields (fragments expanded)"),
        )));
    }
    Ok(())
}

fn limit_error(error: DataSyncError) -> ServerError {
    error.into_request_error()
}

/// Counts fields with fragments expanded, each fragment counted once (memoized), so the
/// count costs as much as the document is long, whatever its expansion.
struct Counter<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<&'a Name, (usize, usize)>,
}

impl<'a> Counter<'a> {
    /// (all fields, fields at this level) of a selection set.
    fn selection_set(&mut self, set: &'a SelectionSet, depth: usize) -> (usize, usize) {
        // Deeper than any allowed query: validation refuses it anyway; stop counting.
        if depth > 256 {
            return (0, 0);
        }
        let (mut all, mut here) = (0usize, 0usize);
        for selection in &set.items {
            let (a, h) = match &selection.node {
                Selection::Field(field) => {
                    let (below, _) = self.selection_set(&field.node.selection_set.node, depth + 1);
                    (below.saturating_add(1), 1)
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, depth + 1)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match self.memo.get(name) {
                        Some(counted) => *counted,
                        None => {
                            // Cycles are invalid (validation says so); count them as empty.
                            self.memo.insert(name, (0, 0));
                            let counted = match self.document.fragments.get(name) {
                                Some(fragment) => self.fragment(fragment, depth),
                                None => (0, 0),
                            };
                            self.memo.insert(name, counted);
                            counted
                        }
                    }
                }
            };
            all = all.saturating_add(a);
            here = here.saturating_add(h);
        }
        (all, here)
    }

    fn fragment(
        &mut self,
        fragment: &'a Positioned<FragmentDefinition>,
        depth: usize,
    ) -> (usize, usize) {
        self.selection_set(&fragment.node.selection_set.node, depth + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(query: &str) -> ServerResult<()> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        check(&document, &RequestLimits::default())
    }

    #[test]
    fn fragments_are_counted_once_expanded() {
        assert!(counts("{ a b c { d } }").is_ok());
        // 2^30 fields when expanded, counted in 30 steps.
        let mut bomb = String::from("query { ...F30 }\nfragment F0 on Query { a }\n");
        for i in 1..=30 {
            bomb.push_str(&format!(
                "fragment F{i} on Query {{ ...F{j} ...F{j} }}\n",
                j = i - 1
            ));
        }
        let err = counts(&bomb).unwrap_err();
        assert!(err.message.contains("fields"), "{}", err.message);
        let aliases: String = (0..60).map(|i| format!("a{i}: x ")).collect();
        let err = counts(&format!("{{ {aliases} }}")).unwrap_err();
        assert!(err.message.contains("root fields"), "{}", err.message);
    }
}
