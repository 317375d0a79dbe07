//! Stable `extensions.code` for errors that async-graphql raises itself.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{ErrorExtensions, Response};

use super::RequestLimits;

/// Schema extension that gives errors raised by async-graphql itself a stable code:
/// syntax errors, validation errors (unknown fields, wrong argument types, missing required
/// arguments) and argument coercion failures get `BAD_USER_INPUT`; its depth, complexity and
/// recursion limits get `LIMIT_EXCEEDED` (with `limit` and `max`). Errors that already carry
/// a code, and errors of the application's own resolvers, are left as they are.
///
/// Installed by [`SchemaBuilderExt::datasync`](super::SchemaBuilderExt::datasync).
///
/// The limits named in `LIMIT_EXCEEDED` errors are those of the schema's
/// [`Config`](super::Config).
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let limits = ctx
            .data_opt::<super::Config>()
            .map_or_else(RequestLimits::default, |c| c.limits);
        for error in &mut response.errors {
            let has_code = error
                .extensions
                .as_ref()
                .is_some_and(|ext| ext.get("code").is_some());
            // Request errors (syntax, validation) have no path; argument errors start with
            // one of async-graphql's input-coercion messages.
            let input_error = error.path.is_empty()
                || error.message.starts_with("Invalid value for argument")
                || error.message.starts_with("Failed to parse")
                || error.message.starts_with("Expected input type");
            if has_code {
                continue;
            }
            if let Some(limit) = limits.error_for(&error.message) {
                let coded = limit.extend();
                error.message = coded.message;
                error.extensions = coded.extensions;
                continue;
            }
            if input_error {
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("code", "BAD_USER_INPUT");
            }
        }
        response
    }
}
