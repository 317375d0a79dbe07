//! `NoteSubscription`: `noteChanges`, `newNote`, `updatedNote`, `deletedNote`, to merge into
//! the user's Subscription.

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        object,
        delta,
        delta_list,
        filter,
        subscription,
        ..
    } = g;
    let (ident, vis) = (model.ident, model.vis);
    let singular = crate::naming::lower_first(&g.type_name);
    let changes = format!("{singular}Changes");
    let (created, updated, deleted) = (
        g.op("new", false),
        g.op("updated", false),
        g.op("deleted", false),
    );
    let doc = format!(
        "The subscriptions of {}: `{changes}`, `{created}`, `{updated}`, `{deleted}`. Merge it \
         into your Subscription with `MergedSubscription`.",
        g.type_name
    );
    let changes_doc = format!(
        "Changes to {} as they happen, resumable. With `lastSync`, first everything after it \
         (in pages, `hasMore` until caught up), then one list per batch of new changes; without, \
         from now on (the first message carries the current `lastSync`). Store the `lastSync` of \
         each message and subscribe with it after a disconnect: nothing is missed.",
        g.plural
    );
    let event_doc = |what: &str| {
        format!(
            "Each {} {what} from now on, if it matches `filter`.",
            g.type_name
        )
    };
    let (created_doc, updated_doc, deleted_doc) = (
        event_doc("created"),
        event_doc("changed"),
        event_doc("deleted"),
    );
    let stream = |item: &syn::Ident| quote!(#rt::BoxStream<'static, #ag::Result<#item>>);
    let (changes_ty, object_ty, delta_ty) = (stream(delta_list), stream(object), stream(delta));
    let stream_op = g.rx.enabled.then(|| {
        let (pull_bulk, headers) = (&g.rx.pull_bulk, &g.rx.headers);
        let name = g.op("stream", false);
        let doc = format!(
            "RxDB replication: new changes to {} as pull bulks. The first message (and one \
             after any restart of the feed) has no documents: pull then. Never sends an error.",
            g.plural
        );
        let ty = stream(pull_bulk);
        quote! {
            #[doc = #doc]
            #[graphql(name = #name)]
            async fn stream(
                &self,
                ctx: &#ag::Context<'_>,
                headers: ::core::option::Option<#headers>,
            ) -> #ag::Result<#ty> {
                let _ = headers;
                let stream = #rt::resolve::stream::<#ident>(ctx).await?;
                ::core::result::Result::Ok(#rt::StreamExt::boxed(#rt::StreamExt::map(stream, |bulk| ::core::result::Result::Ok(#pull_bulk::from(bulk)))))
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::default::Default, ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #subscription;

        #[#ag::Subscription(crate = #ag_crate)]
        impl #subscription {
            #[doc = #changes_doc]
            #[graphql(name = #changes)]
            async fn changes(
                &self,
                ctx: &#ag::Context<'_>,
                #[graphql(name = "lastSync")] last_sync: ::core::option::Option<::std::string::String>,
                filter: ::core::option::Option<#filter>,
            ) -> #ag::Result<#changes_ty> {
                let stream = #rt::resolve::changes::<#ident>(ctx, last_sync.as_deref(), filter).await?;
                ::core::result::Result::Ok(#rt::StreamExt::boxed(#rt::StreamExt::map(stream, |item| item.map(#delta_list::from))))
            }

            #[doc = #created_doc]
            #[graphql(name = #created)]
            async fn created(
                &self,
                ctx: &#ag::Context<'_>,
                filter: ::core::option::Option<#filter>,
            ) -> #ag::Result<#object_ty> {
                let stream = #rt::resolve::events::<#ident>(ctx, #rt::Event::Created, filter).await?;
                ::core::result::Result::Ok(#rt::StreamExt::boxed(#rt::StreamExt::map(stream, |item| item.map(#object::from))))
            }

            #[doc = #updated_doc]
            #[graphql(name = #updated)]
            async fn updated(
                &self,
                ctx: &#ag::Context<'_>,
                filter: ::core::option::Option<#filter>,
            ) -> #ag::Result<#object_ty> {
                let stream = #rt::resolve::events::<#ident>(ctx, #rt::Event::Updated, filter).await?;
                ::core::result::Result::Ok(#rt::StreamExt::boxed(#rt::StreamExt::map(stream, |item| item.map(#object::from))))
            }

            #[doc = #deleted_doc]
            #[graphql(name = #deleted)]
            async fn deleted(
                &self,
                ctx: &#ag::Context<'_>,
                filter: ::core::option::Option<#filter>,
            ) -> #ag::Result<#delta_ty> {
                let stream = #rt::resolve::events::<#ident>(ctx, #rt::Event::Deleted, filter).await?;
                ::core::result::Result::Ok(#rt::StreamExt::boxed(#rt::StreamExt::map(stream, |item| item.map(#delta::from))))
            }

            #stream_op
        }
    }
}
