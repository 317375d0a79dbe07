//! The RxDB dialect's types (with `#[datasync(rxdb)]`): `NoteRxDocument`, `NoteCheckpoint`,
//! `NotePullBulk`, and the inputs `NoteInputRxDocument`, `NoteInputCheckpoint`,
//! `NoteInputPushRow`, `NoteInputHeaders`. The operations themselves are generated into
//! `NoteQuery` (`pullNote`), `NoteMutation` (`pushNote`) and `NoteSubscription` (`streamNote`).

use proc_macro2::TokenStream;
use quote::quote;

use super::Gen;

pub fn expand(g: &Gen<'_>) -> TokenStream {
    if !g.rx.enabled {
        return TokenStream::new();
    }
    let Gen {
        rt,
        ag,
        ag_crate,
        model,
        ..
    } = g;
    let (model_ident, vis) = (model.ident, model.vis);
    let rx = &g.rx;
    let (document, input_document, checkpoint, input_checkpoint, pull_bulk, push_row, headers) = (
        &rx.document,
        &rx.input_document,
        &rx.checkpoint,
        &rx.input_checkpoint,
        &rx.pull_bulk,
        &rx.push_row,
        &rx.headers,
    );
    let name = |suffix: &str| format!("{}{suffix}", g.type_name);
    let (document_name, input_document_name, checkpoint_name, input_checkpoint_name) = (
        name("RxDocument"),
        name("InputRxDocument"),
        name("Checkpoint"),
        name("InputCheckpoint"),
    );
    let (pull_bulk_name, push_row_name, headers_name) =
        (name("PullBulk"), name("InputPushRow"), name("InputHeaders"));
    let id_ident = g.id.ident;
    let idents: Vec<_> = g.data.iter().map(|f| f.ident).collect();
    let output_fields = g.data.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: #ty,)
    });
    let input_fields = g.inputs.iter().map(|f| {
        let (ident, ty, name, docs) = (f.ident, f.ty, &f.name, &f.docs);
        quote!(#(#docs)* #[graphql(name = #name)] pub #ident: #ty,)
    });
    // The owner is sent back by clients that pulled it: accepted, and ignored.
    let owner_input = g.owner.map(|owner| {
        let (ident, name) = (owner.ident, &owner.name);
        quote! {
            /// Ignored: the server keeps the owner.
            #[graphql(name = #name)]
            pub #ident: ::core::option::Option<::std::string::String>,
        }
    });
    let input_names: Vec<_> = g.inputs.iter().map(|f| &f.name).collect();
    let input_idents: Vec<_> = g.inputs.iter().map(|f| f.ident).collect();
    let id_ty = g.id.ty;
    let id_as = quote!(<#id_ty as #rt::IdField>::as_id);
    let doc = format!(
        "A {} as RxDB replicates it: `version` is the `_version` (send it back as the assumed \
         master state), `deleted` marks deleted records (RxDB's `deletedField`).",
        g.type_name
    );
    quote! {
        #[doc = #doc]
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #document_name, crate = #ag_crate)]
        #vis struct #document {
            /// The record id.
            pub id: #ag::ID,
            #(#output_fields)*
            /// The server's version of this state (`_version`).
            pub version: i64,
            /// When the record last changed, in milliseconds since the Unix epoch.
            #[graphql(name = "updatedAt")]
            pub updated_at: ::std::string::String,
            /// The record was deleted.
            pub deleted: bool,
        }

        impl ::core::convert::From<#rt::Record<#model_ident>> for #document {
            fn from(__datasync_record: #rt::Record<#model_ident>) -> Self {
                let #rt::Record { data: __datasync_data, meta: __datasync_meta } = __datasync_record;
                let #model_ident { #id_ident, #(#idents,)* } = __datasync_data;
                #document {
                    id: #ag::ID(::std::string::ToString::to_string(#id_as(&#id_ident))),
                    #(#idents,)*
                    version: __datasync_meta.version,
                    updated_at: #rt::millis_text(__datasync_meta.updated_at),
                    deleted: __datasync_meta.deleted,
                }
            }
        }

        /// Where a pull continues: the sync token (`lastSync`), wrapped for RxDB.
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #checkpoint_name, crate = #ag_crate)]
        #vis struct #checkpoint {
            /// The sync token.
            #[graphql(name = "lastSync")]
            pub last_sync: ::std::string::String,
        }

        /// The checkpoint a client sends back.
        #[derive(#ag::InputObject)]
        #[graphql(name = #input_checkpoint_name, crate = #ag_crate)]
        #vis struct #input_checkpoint {
            /// The sync token of the last checkpoint received.
            #[graphql(name = "lastSync")]
            pub last_sync: ::std::string::String,
        }

        /// A page of documents and the checkpoint after it. An empty page from the stream
        /// asks the client to pull.
        #[derive(#ag::SimpleObject)]
        #[graphql(name = #pull_bulk_name, crate = #ag_crate)]
        #vis struct #pull_bulk {
            /// Changed documents, deleted ones included.
            pub documents: ::std::vec::Vec<#document>,
            /// Where the next pull starts.
            pub checkpoint: #checkpoint,
        }

        impl ::core::convert::From<#rt::PullBulk<#model_ident>> for #pull_bulk {
            fn from(bulk: #rt::PullBulk<#model_ident>) -> Self {
                #pull_bulk {
                    documents: bulk.documents.into_iter().map(#document::from).collect(),
                    checkpoint: #checkpoint {
                        last_sync: ::std::string::ToString::to_string(&bulk.last_sync),
                    },
                }
            }
        }

        /// A document state a client pushes (fields it does not know are left out).
        #[derive(#ag::InputObject)]
        #[graphql(name = #input_document_name, crate = #ag_crate)]
        #vis struct #input_document {
            /// The record id.
            pub id: #ag::ID,
            #(#input_fields)*
            #owner_input
            /// The version this state has on the server (from a pull).
            pub version: ::core::option::Option<i64>,
            /// Ignored: the server stamps changes.
            #[graphql(name = "updatedAt")]
            pub updated_at: ::core::option::Option<::std::string::String>,
            /// The document is deleted.
            pub deleted: ::core::option::Option<bool>,
        }

        /// One document to push: the state it is based on (none for a new document) and its
        /// new state.
        #[derive(#ag::InputObject)]
        #[graphql(name = #push_row_name, crate = #ag_crate)]
        #vis struct #push_row {
            /// The master state the change is based on.
            #[graphql(name = "assumedMasterState")]
            pub assumed_master_state: ::core::option::Option<#input_document>,
            /// The new state.
            #[graphql(name = "newDocumentState")]
            pub new_document_state: #input_document,
        }

        impl #input_document {
            /// The data fields a client may set, in stored form.
            fn into_data(self) -> #rt::Result<(::std::string::String, #rt::Document, bool, ::core::option::Option<i64>)> {
                let mut data = #rt::Document::new();
                #( #rt::put_field(&mut data, #input_names, &self.#input_idents)?; )*
                ::core::result::Result::Ok((self.id.0, data, self.deleted.unwrap_or(false), self.version))
            }
        }

        impl #push_row {
            /// The row in stored form.
            pub fn into_row(self) -> #rt::Result<#rt::PushRow> {
                let (id, data, deleted, _) = self.new_document_state.into_data()?;
                let assumed = match self.assumed_master_state {
                    ::core::option::Option::Some(state) => {
                        let (_, data, deleted, version) = state.into_data()?;
                        ::core::option::Option::Some(#rt::Assumed { version, data, deleted })
                    }
                    ::core::option::Option::None => ::core::option::Option::None,
                };
                ::core::result::Result::Ok(#rt::PushRow { id, data, deleted, assumed })
            }
        }

        /// The headers RxDB passes to its stream (authentication travels in the WebSocket's
        /// `connection_init`).
        #[derive(#ag::InputObject)]
        #[graphql(name = #headers_name, crate = #ag_crate)]
        #vis struct #headers {
            /// `Bearer <token>`.
            #[graphql(name = "Authorization")]
            pub authorization: ::core::option::Option<::std::string::String>,
        }
    }
}
