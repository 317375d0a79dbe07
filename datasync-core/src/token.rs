//! The `lastSync` token: a server-owned cursor into a collection's change log.
//!
//! Every write to a collection takes a position in that collection's change sequence, and a
//! reader never passes a position that may still be written, so "changes after the token"
//! can never skip a committed write. See `docs/sync.md` for the full argument.
//!
//! Tokens the server hands out are sealed: they end in the id of the store's token key and a
//! MAC over the cursor and the collection, so a client cannot edit one (say, to skip
//! `SYNC_EXPIRED`) without the server noticing.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::DataSyncError;

/// Where a client is in a collection's change history: what a [`SyncToken`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cursor {
    /// From the beginning: every record, tombstones included.
    Beginning,
    /// Changes whose `updatedAt` is after this many milliseconds since the epoch.
    Millis(i64),
    /// Changes after position `seq` of the collection's change sequence, plus the positions
    /// in `pending` (each below `seq`) that the client may not have seen yet.
    Seq {
        /// Every change at or below this position has been delivered, except `pending`.
        seq: i64,
        /// Positions still being written when the token was made, ascending.
        pending: Vec<i64>,
        /// Purges of tombstones at or below this position cannot have removed anything this
        /// client holds: the purge watermark it was last checked against, or (for a client
        /// that started from "0") the position its first sync started at.
        watermark: i64,
    },
}

/// The `lastSync` text: a [`Cursor`], sealed by the server that issued it.
///
/// Text forms:
/// - `"0"` or `""`: from the beginning;
/// - a plain decimal number (`"1592634899084"`): changes after that many milliseconds since
///   the Unix epoch (accepted for clients that track time themselves);
/// - what the server hands out (`"s42w7-0f3a9c21d4e5f60718293a4b"`): opaque to clients.
///
/// ```
/// use datasync_core::token::{Cursor, TokenKey};
/// use datasync_core::SyncToken;
/// assert_eq!(SyncToken::parse("0").unwrap(), SyncToken::ZERO);
/// assert_eq!(SyncToken::parse("1592634899084").unwrap().cursor(), &Cursor::Millis(1592634899084));
///
/// let key = TokenKey::from_secret(b"a secret of the store");
/// let cursor = Cursor::Seq { seq: 42, pending: vec![39, 40], watermark: 7 };
/// let token = SyncToken::issue(cursor.clone(), &key, "notes");
/// let text = token.to_string();
/// assert!(text.starts_with("s42p39.40w7-"));
/// let back = SyncToken::parse(&text).unwrap();
/// assert_eq!(back.verify(&key, "notes").unwrap(), &cursor);
/// // Edited, or presented to another collection: refused.
/// let forged = SyncToken::parse(&text.replacen("w7", "w9", 1)).unwrap();
/// assert_eq!(forged.verify(&key, "notes").unwrap_err().code(), "BAD_USER_INPUT");
/// assert!(back.verify(&key, "comments").is_err());
/// assert!(SyncToken::parse("yesterday").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncToken {
    cursor: Cursor,
    seal: Option<Seal>,
}

/// The key id and MAC that end a server token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Seal {
    key_id: u32,
    mac: u64,
}

/// The secret a store seals its tokens with. Stores keep one in the database (made on first
/// use), so every server process of one database shares it; a token from another database
/// carries another key id and is answered `SYNC_EXPIRED`.
///
/// ```
/// use datasync_core::token::TokenKey;
/// let a = TokenKey::from_secret(b"one");
/// assert_eq!(a.id(), TokenKey::from_secret(b"one").id());
/// assert_ne!(a.id(), TokenKey::from_secret(b"two").id());
/// ```
#[derive(Clone)]
pub struct TokenKey {
    id: u32,
    secret: Vec<u8>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A key from secret bytes (at least 16 recommended).
    pub fn from_secret(secret: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"datasync token key id\0")
            .chain_update(secret)
            .finalize();
        TokenKey {
            id: u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]),
            secret: secret.to_vec(),
        }
    }

    /// A new random key (32 bytes from the operating system's generator).
    pub fn random() -> Self {
        let mut secret = Vec::with_capacity(32);
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self::from_secret(&secret)
    }

    /// The secret, for storing it.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The public id carried in every token sealed with this key.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn mac(&self, collection: &str, body: &str) -> u64 {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(collection.as_bytes());
        mac.update(b"\0");
        mac.update(body.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_be_bytes(first)
    }
}

impl SyncToken {
    /// The token of a client that has never synced.
    pub const ZERO: SyncToken = SyncToken {
        cursor: Cursor::Beginning,
        seal: None,
    };

    /// Most pending positions a token may carry.
    pub const MAX_PENDING: usize = 10_000;

    /// Changes after `ms` milliseconds since the Unix epoch.
    pub fn millis(ms: i64) -> SyncToken {
        SyncToken {
            cursor: if ms <= 0 {
                Cursor::Beginning
            } else {
                Cursor::Millis(ms)
            },
            seal: None,
        }
    }

    /// The token a store hands out for `cursor` in `collection`, sealed with `key`.
    pub fn issue(cursor: Cursor, key: &TokenKey, collection: &str) -> SyncToken {
        let seal = match cursor {
            Cursor::Seq { .. } => Some(Seal {
                key_id: key.id,
                mac: key.mac(collection, &body(&cursor)),
            }),
            _ => None,
        };
        SyncToken { cursor, seal }
    }

    /// The cursor, unchecked (see [`verify`](Self::verify)).
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The cursor of a token presented to `collection` of the store whose key is `key`.
    ///
    /// A server cursor must carry this store's seal: one made with another key comes from
    /// another database (`SYNC_EXPIRED`: start over), one whose MAC does not match was edited
    /// or belongs to another collection (`BAD_USER_INPUT`).
    pub fn verify(&self, key: &TokenKey, collection: &str) -> Result<&Cursor, DataSyncError> {
        if !matches!(self.cursor, Cursor::Seq { .. }) {
            return Ok(&self.cursor);
        }
        match self.seal {
            Some(seal) if seal.key_id != key.id => Err(DataSyncError::SyncExpired {
                message: format!(
                    "lastSync {self} comes from another database (or one that was replaced): \
                     drop the local copy and sync again from \"0\""
                ),
            }),
            Some(seal) if seal.mac == key.mac(collection, &body(&self.cursor)) => Ok(&self.cursor),
            _ => Err(DataSyncError::bad_input(
                "lastSync",
                format!(
                    "lastSync {self} was not handed out by this server for this collection; \
                     send back the lastSync you received, or \"0\""
                ),
            )),
        }
    }

    /// Parses the text a client sent as `lastSync` (its seal is checked by
    /// [`verify`](Self::verify)).
    ///
    /// Fails with `BAD_USER_INPUT` (field `lastSync`) on anything but the forms above.
    pub fn parse(text: &str) -> Result<SyncToken, DataSyncError> {
        let bad = || {
            DataSyncError::bad_input(
                "lastSync",
                format!(
                    "malformed lastSync {:?}: expected \"0\", a lastSync the server returned, \
                     or milliseconds since the Unix epoch",
                    text.chars().take(200).collect::<String>()
                ),
            )
        };
        if text.is_empty() {
            return Ok(SyncToken::ZERO);
        }
        let number = |digits: &str| -> Result<i64, DataSyncError> {
            if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            digits.parse::<i64>().map_err(|_| bad())
        };
        let Some(rest) = text.strip_prefix('s') else {
            return Ok(SyncToken::millis(number(text)?));
        };
        let (rest, seal) = match rest.split_once('-') {
            Some((rest, seal)) => {
                let lower_hex = seal.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if seal.len() != 24 || !lower_hex {
                    return Err(bad());
                }
                let (id, mac) = seal.split_at(8);
                let seal = Seal {
                    key_id: u32::from_str_radix(id, 16).map_err(|_| bad())?,
                    mac: u64::from_str_radix(mac, 16).map_err(|_| bad())?,
                };
                (rest, Some(seal))
            }
            None => (rest, None),
        };
        let (rest, watermark) = match rest.split_once('w') {
            Some((rest, w)) => (rest, number(w)?),
            None => (rest, 0),
        };
        let (seq, pending) = match rest.split_once('p') {
            Some((seq, list)) => (
                number(seq)?,
                list.split('.').map(number).collect::<Result<Vec<_>, _>>()?,
            ),
            None => (number(rest)?, Vec::new()),
        };
        let ordered = pending.windows(2).all(|w| w[0] < w[1]);
        if pending.len() > Self::MAX_PENDING || !ordered || pending.last() > Some(&seq) {
            return Err(bad());
        }
        Ok(SyncToken {
            cursor: Cursor::Seq {
                seq,
                pending,
                watermark,
            },
            seal,
        })
    }
}

/// The text of a cursor, without the seal.
fn body(cursor: &Cursor) -> String {
    match cursor {
        Cursor::Beginning => "0".to_owned(),
        Cursor::Millis(ms) => ms.to_string(),
        Cursor::Seq {
            seq,
            pending,
            watermark,
        } => {
            let mut out = format!("s{seq}");
            for (i, p) in pending.iter().enumerate() {
                out.push(if i == 0 { 'p' } else { '.' });
                out.push_str(&p.to_string());
            }
            if *watermark > 0 {
                out.push('w');
                out.push_str(&watermark.to_string());
            }
            out
        }
    }
}

impl fmt::Display for SyncToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&body(&self.cursor))?;
        if let Some(seal) = self.seal {
            write!(f, "-{:08x}{:016x}", seal.key_id, seal.mac)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let key = TokenKey::from_secret(b"k");
        for cursor in [
            Cursor::Beginning,
            Cursor::Millis(7),
            Cursor::Seq {
                seq: 0,
                pending: vec![],
                watermark: 0,
            },
            Cursor::Seq {
                seq: 9,
                pending: vec![1, 9],
                watermark: 0,
            },
            Cursor::Seq {
                seq: 9,
                pending: vec![3],
                watermark: 12,
            },
        ] {
            let t = SyncToken::issue(cursor.clone(), &key, "c");
            let back = SyncToken::parse(&t.to_string()).unwrap();
            assert_eq!(back, t);
            assert_eq!(back.verify(&key, "c").unwrap(), &cursor);
        }
        assert_eq!(SyncToken::parse("").unwrap(), SyncToken::ZERO);
        for bad in [
            "-1",
            "s",
            "s-1",
            "1.5",
            " 1",
            "s1x",
            "99999999999999999999",
            "abc",
            "S1",
            "s5p",
            "s5p6",
            "s5p3.2",
            "s5p.3",
            "s5.3",
            "s5w",
            "s5wp1",
            "s5w1p1",
            "s5-",
            "s5-0123",
            "s5-0123456789abcdef0123456G",
            "s5-0123456789ABCDEF01234567",
        ] {
            let err = SyncToken::parse(bad).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad}");
        }
    }

    #[test]
    fn unsealed_edited_and_foreign_tokens() {
        let key = TokenKey::from_secret(b"k");
        let other = TokenKey::from_secret(b"other");
        let unsealed = SyncToken::parse("s5w2").unwrap();
        assert_eq!(
            unsealed.verify(&key, "c").unwrap_err().code(),
            "BAD_USER_INPUT"
        );
        let cursor = Cursor::Seq {
            seq: 5,
            pending: vec![],
            watermark: 2,
        };
        let foreign = SyncToken::issue(cursor.clone(), &other, "c");
        assert_eq!(
            foreign.verify(&key, "c").unwrap_err().code(),
            "SYNC_EXPIRED"
        );
        let text = SyncToken::issue(cursor, &key, "c").to_string();
        let edited = SyncToken::parse(&text.replacen("s5", "s6", 1)).unwrap();
        assert_eq!(
            edited.verify(&key, "c").unwrap_err().code(),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            SyncToken::parse("1592634899084")
                .unwrap()
                .verify(&key, "c")
                .unwrap(),
            &Cursor::Millis(1592634899084)
        );
    }
}
