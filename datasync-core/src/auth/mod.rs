//! Authorization: who is calling ([`Principal`]), which records they may read (a [`Scope`]
//! ANDed into every read, sync page and subscription) and which writes they may make.
//!
//! A model's rules come from its attributes (`#[datasync(owner)]`,
//! `#[datasync(auth(read = "...", write = "..."))]`), or from an [`Authorize`] implementation
//! registered with [`Config::authorize`](crate::Config::authorize). The runtime reads the
//! caller from the request's context data, so any HTTP stack can put a `Principal` there;
//! `datasync::http` builds it from a bearer token.
//!
//! Another owner's record is indistinguishable from a missing one: `get` answers null,
//! `update`/`delete` answer `NOT_FOUND`, finds and counts leave it out, sync and
//! subscriptions never send it.

#[cfg(feature = "jwt")]
mod jwt;

#[cfg(feature = "jwt")]
pub use jwt::Jwt;

use crate::error::DataSyncError;
use crate::filter::{FieldKind, FieldRef, Filter, Op, Scalar, ScalarKind};
use crate::meta::StoredRecord;
use crate::model::ModelSpec;

/// An authenticated caller: a user id and the groups (roles) it belongs to.
///
/// ```
/// use datasync_core::Principal;
/// let alice = Principal::new("alice").with_groups(["editors"]);
/// assert!(alice.in_group("editors"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The user id (a JWT's `sub`).
    pub id: String,
    /// Groups or roles.
    pub groups: Vec<String>,
}

impl Principal {
    /// A principal with no groups.
    pub fn new(id: impl Into<String>) -> Self {
        Principal {
            id: id.into(),
            groups: Vec::new(),
        }
    }

    /// The same principal in these groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the principal belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// On whose behalf an operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The server itself (the Rust API without a principal): no rules apply.
    System,
    /// A request without a principal.
    Anonymous,
    /// An authenticated user.
    User(Principal),
    /// A member of the admin group: sees and writes everything.
    Admin(Principal),
}

impl Caller {
    /// The principal, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::User(p) | Caller::Admin(p) => Some(p),
            Caller::System | Caller::Anonymous => None,
        }
    }

    /// Whether rules are bypassed.
    pub fn is_unrestricted(&self) -> bool {
        matches!(self, Caller::System | Caller::Admin(_))
    }
}

/// Which records a caller may read.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every record.
    All,
    /// None at all.
    Nothing,
    /// Records matching the filter, which never changes for a record (it depends only on
    /// fields that are never written after create, like the owner): other records are never
    /// sent, not even as removals.
    Fixed(Filter),
    /// Records matching the filter, which may change for a record: after a token, a changed
    /// record that no longer matches arrives as a removal that carries the model's
    /// `Default` values instead of its data (the record is left out if the model has no
    /// `Default`).
    Where(Filter),
}

impl Scope {
    /// The filter a record must match, if any.
    pub fn filter(&self) -> Option<&Filter> {
        match self {
            Scope::Fixed(f) | Scope::Where(f) => Some(f),
            Scope::All | Scope::Nothing => None,
        }
    }

    /// Whether `record` is in the scope.
    pub fn allows(&self, record: &StoredRecord) -> bool {
        match self {
            Scope::All => true,
            Scope::Nothing => false,
            Scope::Fixed(f) | Scope::Where(f) => f.matches(record),
        }
    }
}

/// The kind of write being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// `create<Model>`.
    Create,
    /// `update<Model>`.
    Update,
    /// `delete<Model>`.
    Delete,
}

/// A write to check: the record before (none for a create) and after.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// Create, update or delete.
    pub kind: WriteKind,
    /// The stored record before the write.
    pub before: Option<&'a StoredRecord>,
    /// The data fields after the write (the owner field already set).
    pub after: &'a crate::meta::Document,
}

/// Authorization rules of a model. Implement it for rules the attributes cannot express and
/// register it with [`Config::authorize`](crate::Config::authorize).
///
/// ```
/// use datasync_core::auth::{Authorize, Caller, Scope, Write, WriteKind};
/// use datasync_core::{DataSyncError, ModelSpec};
///
/// /// Everybody reads; only editors write, and nobody deletes.
/// struct EditorsOnly;
///
/// impl Authorize for EditorsOnly {
///     fn read_scope(&self, _: &ModelSpec, _: &Caller) -> Result<Scope, DataSyncError> {
///         Ok(Scope::All)
///     }
///     fn allow_write(&self, _: &ModelSpec, caller: &Caller, write: &Write<'_>) -> bool {
///         write.kind != WriteKind::Delete
///             && caller.principal().is_some_and(|p| p.in_group("editors"))
///     }
/// }
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// The records `caller` may read. `UNAUTHENTICATED` when the caller must sign in first.
    fn read_scope(&self, spec: &ModelSpec, caller: &Caller) -> Result<Scope, DataSyncError>;

    /// Whether `caller` may make `write` (on a record it may read). A denied write answers
    /// `FORBIDDEN` (`UNAUTHENTICATED` for an anonymous caller).
    fn allow_write(&self, spec: &ModelSpec, caller: &Caller, write: &Write<'_>) -> bool;
}

/// Who may read or write, as the `auth(read = ..., write = ...)` attribute says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in caller.
    Private,
    /// The record's owner (the model needs an owner field).
    Owner,
    /// Members of any of these groups.
    Groups(&'static [&'static str]),
    /// Nobody (but admins and the server).
    Nobody,
}

/// The rules `#[derive(DataSync)]` records for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The owner field (external name), set from the principal on create and never from
    /// input.
    pub owner: Option<&'static str>,
    /// Who reads.
    pub read: Rule,
    /// Who writes.
    pub write: Rule,
}

impl Rules {
    /// No restrictions: a model without `owner` or `auth` attributes.
    pub const OPEN: Rules = Rules {
        owner: None,
        read: Rule::Public,
        write: Rule::Public,
    };
}

/// The filter "the owner field equals `id`".
pub fn owned_by(owner_field: &'static str, id: &str) -> Filter {
    field_equals(owner_field, Scalar::String(id.to_owned()))
}

/// The filter "data field `name` (not a list) equals `value`", for read scopes.
///
/// ```
/// use datasync_core::auth::field_equals;
/// use datasync_core::filter::{Filter, Scalar};
/// let published = field_equals("published", Scalar::Bool(true));
/// assert!(matches!(published, Filter::Cond { .. }));
/// ```
pub fn field_equals(name: &'static str, value: Scalar) -> Filter {
    let scalar = match value {
        Scalar::String(_) => ScalarKind::String,
        Scalar::Int(_) => ScalarKind::Int,
        Scalar::Float(_) => ScalarKind::Float,
        Scalar::Bool(_) => ScalarKind::Boolean,
    };
    Filter::Cond {
        field: FieldRef::Data {
            name,
            kind: FieldKind::scalar(scalar),
        },
        op: Op::Eq(value),
    }
}

fn unauthenticated() -> DataSyncError {
    DataSyncError::Unauthenticated {
        message: "sign in first: this operation needs an authenticated caller".to_owned(),
    }
}

impl Authorize for Rules {
    fn read_scope(&self, spec: &ModelSpec, caller: &Caller) -> Result<Scope, DataSyncError> {
        let _ = spec;
        if caller.is_unrestricted() {
            return Ok(Scope::All);
        }
        let principal = caller.principal();
        match (self.read, principal) {
            (Rule::Public, _) => Ok(Scope::All),
            (_, None) => Err(unauthenticated()),
            (Rule::Private, Some(_)) => Ok(Scope::All),
            (Rule::Owner, Some(p)) => match self.owner {
                Some(field) => Ok(Scope::Fixed(owned_by(field, &p.id))),
                None => Ok(Scope::Nothing),
            },
            (Rule::Groups(groups), Some(p)) => Ok(if groups.iter().any(|g| p.in_group(g)) {
                Scope::All
            } else {
                Scope::Nothing
            }),
            (Rule::Nobody, Some(_)) => Ok(Scope::Nothing),
        }
    }

    fn allow_write(&self, _spec: &ModelSpec, caller: &Caller, write: &Write<'_>) -> bool {
        if caller.is_unrestricted() {
            return true;
        }
        let Some(principal) = caller.principal() else {
            return self.write == Rule::Public;
        };
        match self.write {
            Rule::Public | Rule::Private => true,
            Rule::Owner => match (self.owner, write.before) {
                // A create sets the owner to the caller.
                (Some(_), None) => true,
                (Some(field), Some(before)) => {
                    before.data.get(field).and_then(|v| v.as_str()) == Some(principal.id.as_str())
                }
                (None, _) => false,
            },
            Rule::Groups(groups) => groups.iter().any(|g| principal.in_group(g)),
            Rule::Nobody => false,
        }
    }
}
