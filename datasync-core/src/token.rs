//! The `lastSync` token: a server-owned cursor into a collection's change log.
//!
//! Every write to a collection takes the next number of that collection's change sequence, in
//! the same atomic step as the write itself, so sequence order is commit order. A token names a
//! position in that sequence; "changes after the token" can therefore never skip a committed
//! write. See `docs/sync.md` for the full argument.

use std::fmt;

use crate::error::DataSyncError;

/// A position in a collection's change history, as carried by `lastSync`.
///
/// Text forms:
/// - `"0"` or `""`: from the beginning;
/// - a plain decimal number (`"1592634899084"`): changes after that many milliseconds since
///   the Unix epoch (accepted for clients that track time themselves);
/// - `"s<n>[p<a>.<b>...][w<m>]"` (`"s42"`, `"s42p39.40w7"`): a cursor the server handed out;
///   clients treat it as opaque. `n` is the position delivered up to; `p` lists positions at
///   or below `n` whose writes were still in flight (a store whose writers commit out of
///   order, MongoDB); `w` is the tombstone purge watermark the client was last checked
///   against.
///
/// ```
/// use datasync_core::SyncToken;
/// assert_eq!(SyncToken::parse("0").unwrap(), SyncToken::ZERO);
/// assert_eq!(SyncToken::parse("1592634899084").unwrap(), SyncToken::Millis(1592634899084));
/// let t = SyncToken::seq(42);
/// assert_eq!(SyncToken::parse(&t.to_string()).unwrap(), t);
/// let t = SyncToken::Seq { seq: 42, pending: vec![39, 40], watermark: 7 };
/// assert_eq!(t.to_string(), "s42p39.40w7");
/// assert_eq!(SyncToken::parse("s42p39.40w7").unwrap(), t);
/// assert!(SyncToken::parse("yesterday").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SyncToken {
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
        /// The purge watermark when the token was made: purges up to it cannot have
        /// removed anything this client still holds.
        watermark: i64,
    },
}

impl SyncToken {
    /// The token of a client that has never synced.
    pub const ZERO: SyncToken = SyncToken::Beginning;

    /// Most pending positions a token may carry.
    pub const MAX_PENDING: usize = 10_000;

    /// A cursor after position `seq` with nothing pending (and no purge known).
    pub fn seq(seq: i64) -> SyncToken {
        SyncToken::Seq {
            seq,
            pending: Vec::new(),
            watermark: 0,
        }
    }

    /// Parses the text a client sent as `lastSync`.
    ///
    /// Fails with `BAD_USER_INPUT` (field `lastSync`) on anything but the forms above.
    pub fn parse(text: &str) -> Result<SyncToken, DataSyncError> {
        let bad = || {
            DataSyncError::bad_input(
                "lastSync",
                format!(
                    "malformed lastSync {text:?}: expected \"0\", a lastSync the server returned, \
                     or milliseconds since the Unix epoch"
                ),
            )
        };
        if text.is_empty() {
            return Ok(SyncToken::Beginning);
        }
        let number = |digits: &str| -> Result<i64, DataSyncError> {
            if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            digits.parse::<i64>().map_err(|_| bad())
        };
        match text.strip_prefix('s') {
            Some(rest) => {
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
                Ok(SyncToken::Seq {
                    seq,
                    pending,
                    watermark,
                })
            }
            None => match number(text)? {
                0 => Ok(SyncToken::Beginning),
                ms => Ok(SyncToken::Millis(ms)),
            },
        }
    }
}

impl fmt::Display for SyncToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncToken::Beginning => f.write_str("0"),
            SyncToken::Millis(ms) => write!(f, "{ms}"),
            SyncToken::Seq {
                seq,
                pending,
                watermark,
            } => {
                write!(f, "s{seq}")?;
                for (i, p) in pending.iter().enumerate() {
                    write!(f, "{}{p}", if i == 0 { 'p' } else { '.' })?;
                }
                if *watermark > 0 {
                    write!(f, "w{watermark}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        for t in [
            SyncToken::Beginning,
            SyncToken::Millis(7),
            SyncToken::seq(0),
            SyncToken::seq(9),
            SyncToken::Seq {
                seq: 9,
                pending: vec![1, 9],
                watermark: 0,
            },
            SyncToken::Seq {
                seq: 9,
                pending: vec![3],
                watermark: 12,
            },
            SyncToken::Seq {
                seq: 9,
                pending: vec![],
                watermark: 2,
            },
        ] {
            assert_eq!(SyncToken::parse(&t.to_string()).unwrap(), t);
        }
        assert_eq!(SyncToken::parse("").unwrap(), SyncToken::Beginning);
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
        ] {
            let err = SyncToken::parse(bad).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad}");
        }
    }
}
