//! Which log is a deployment's, given every copy of it: this machine's journal and each
//! host's. Records are only ever appended, by the one process holding the deploy lock on
//! every host, and each is made durable on the hosts it changes before its effect runs;
//! so the copies of one deployment are prefixes of a single log, and the longest is it.
//! Copies that differ on a record were not written that way (a copy changed by hand, a
//! disk that lied, a journal from another fleet): both versions are reported and nothing
//! is chosen — merging would be guessing which history happened.

/// One copy of a deployment's records, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `local` for this machine's journal, else the host's name.
    pub name: String,
    pub records: Vec<Vec<u8>>,
}

/// Two copies that hold different records at the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub seq: u64,
    pub first: (String, Vec<u8>),
    pub second: (String, Vec<u8>),
}

/// The deployment's log: the longest copy, once every other copy is seen to be a prefix
/// of it. With no copies, it is empty.
pub fn reconcile(sources: &[Source]) -> Result<Vec<Vec<u8>>, Disagreement> {
    let Some(longest) = sources.iter().max_by_key(|s| s.records.len()) else {
        return Ok(Vec::new());
    };
    // Report the earliest record any copy disagrees on, whichever copies those are.
    let mut first: Option<Disagreement> = None;
    for source in sources {
        for (seq, (mine, theirs)) in source.records.iter().zip(&longest.records).enumerate() {
            if mine != theirs {
                if first.as_ref().is_none_or(|d| (seq as u64) < d.seq) {
                    first = Some(Disagreement {
                        seq: seq as u64,
                        first: (longest.name.clone(), theirs.clone()),
                        second: (source.name.clone(), mine.clone()),
                    });
                }
                break;
            }
        }
    }
    match first {
        Some(d) => Err(d),
        None => Ok(longest.records.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn source(name: &str, records: &[Vec<u8>]) -> Source {
        Source {
            name: name.into(),
            records: records.to_vec(),
        }
    }

    proptest! {
        /// Prefixes of one log, in any number and order, give that log back (the longest).
        #[test]
        fn prefixes_of_one_log_agree_on_the_longest(
            log in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 0..12),
            cuts in proptest::collection::vec(0usize..13, 1..5),
        ) {
            let sources: Vec<Source> = cuts
                .iter()
                .enumerate()
                .map(|(i, c)| source(&format!("h{i}"), &log[..(*c).min(log.len())]))
                .collect();
            let longest = cuts.iter().map(|c| (*c).min(log.len())).max().unwrap();
            prop_assert_eq!(reconcile(&sources).unwrap(), log[..longest].to_vec());
        }

        /// A record changed in one copy, where another copy also has it, is always caught,
        /// at that record, naming both copies.
        #[test]
        fn a_record_changed_in_one_copy_is_reported_with_both_versions(
            log in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 1..12),
            at in 0usize..12,
            other_len in 0usize..13,
            flip in 1u8..=255,
        ) {
            let at = at % log.len();
            let mut changed = log.clone();
            changed[at][0] ^= flip;
            let other_len = other_len.clamp(at + 1, log.len());
            let sources = vec![source("s1", &log[..other_len]), source("s2", &changed)];
            let d = reconcile(&sources).unwrap_err();
            prop_assert_eq!(d.seq, at as u64);
            let mut names = vec![d.first.0.clone(), d.second.0.clone()];
            names.sort();
            prop_assert_eq!(names, vec!["s1".to_string(), "s2".to_string()]);
            prop_assert_ne!(d.first.1, d.second.1);
        }
    }

    #[test]
    fn no_copies_is_an_empty_log() {
        assert_eq!(reconcile(&[]).unwrap(), Vec::<Vec<u8>>::new());
    }
}
