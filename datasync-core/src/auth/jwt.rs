//! Principals from JSON Web Tokens (cargo feature `jwt`): `sub` is the user id, a
//! configurable claim holds the groups.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value as Json;

use super::Principal;
use crate::error::DataSyncError;

/// Verifies bearer tokens and turns them into [`Principal`]s.
///
/// ```
/// use datasync_core::auth::Jwt;
/// let jwt = Jwt::hs256(b"a development secret").groups_claim("roles");
/// let err = jwt.verify("not-a-token").unwrap_err();
/// assert_eq!(err.code(), "UNAUTHENTICATED");
/// ```
#[derive(Clone)]
pub struct Jwt {
    key: DecodingKey,
    validation: Validation,
    groups_claim: String,
    required: bool,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithms", &self.validation.algorithms)
            .field("groups_claim", &self.groups_claim)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// Tokens signed with HMAC-SHA256 and `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Tokens signed with RSA-SHA256, checked with this PEM public key.
    pub fn rs256_pem(public_key: &[u8]) -> Result<Self, DataSyncError> {
        let key = DecodingKey::from_rsa_pem(public_key).map_err(|e| DataSyncError::Internal {
            message: format!("the RS256 public key is not a PEM RSA key: {e}"),
        })?;
        Ok(Self::with(key, Algorithm::RS256))
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        Jwt {
            key,
            validation,
            groups_claim: "groups".to_owned(),
            required: true,
        }
    }

    /// The claim that lists the principal's groups (default `groups`): an array of strings,
    /// or one string of names separated by spaces.
    pub fn groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = claim.into();
        self
    }

    /// Requests without a token are anonymous instead of refused (a token that is there must
    /// still be valid).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Whether every request needs a token.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The principal of a valid token; `UNAUTHENTICATED` with the reason otherwise.
    pub fn verify(&self, token: &str) -> Result<Principal, DataSyncError> {
        let data =
            jsonwebtoken::decode::<Json>(token, &self.key, &self.validation).map_err(|e| {
                let reason = match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
                    ErrorKind::InvalidAlgorithm => {
                        "the token is signed with an algorithm this server does not accept"
                            .to_owned()
                    }
                    ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        format!("the token has no `{claim}` claim")
                    }
                    _ => format!("the token is malformed ({e})"),
                };
                DataSyncError::Unauthenticated { message: reason }
            })?;
        let claims = data.claims;
        let id = match claims.get("sub") {
            Some(Json::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => {
                return Err(DataSyncError::Unauthenticated {
                    message: "the token's `sub` claim must name the user".to_owned(),
                })
            }
        };
        let groups = match claims.get(&self.groups_claim) {
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(Json::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok(Principal { id, groups })
    }

    /// The principal of an `Authorization` header value (`Bearer <token>`).
    pub fn verify_header(&self, value: &str) -> Result<Principal, DataSyncError> {
        match value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            Some(token) if !token.trim().is_empty() => self.verify(token.trim()),
            _ => Err(DataSyncError::Unauthenticated {
                message: "the Authorization header must be `Bearer <token>`".to_owned(),
            }),
        }
    }
}
