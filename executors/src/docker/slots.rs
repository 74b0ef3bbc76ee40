//! Upstream slots: how traffic moves without reloading Caddy.
//!
//! Every admin API change is a full Caddy reload, and a reload closes its idle client
//! connections: a keep-alive client that sends its next request at that instant gets no
//! answer. So a service's route does not list its containers. It lists a fixed number of
//! slots, each a placeholder that Caddy (2.8 and later) reads from a file at every request
//! (`{file./config/odysseus/upstreams/<service>/<n>}`), and a switch rewrites one file
//! (atomically: written beside, then renamed). The route itself changes only when its own
//! settings do (hosts, health check) or when it needs more slots.
//!
//! A slot always names a serving container: a set of fewer containers than slots fills
//! the rest with duplicates (so `{old}` is `[old, old]`, adding `new` rewrites one slot,
//! removing `old` rewrites the other). An empty set cannot be written as slots (an empty
//! file is an invalid address): the route then lists no upstreams and Caddy answers 503.

/// Where the slot files live inside the Caddy container: on its config volume, so they
/// survive a restart or a recreated container along with the config that names them.
pub const SLOT_DIR: &str = "/config/odysseus/upstreams";

/// Slots a route starts with: an old container and a new one.
pub const MIN_SLOTS: usize = 2;

pub fn slot_dir(service: &str) -> String {
    format!("{SLOT_DIR}/{service}")
}

pub fn slot_path(service: &str, slot: usize) -> String {
    format!("{}/{slot}", slot_dir(service))
}

/// The dial address Caddy sees for a slot.
pub fn slot_dial(service: &str, slot: usize) -> String {
    format!("{{file.{}}}", slot_path(service, slot))
}

/// `Some(n)` when `dial` is the service's slot `n`.
pub fn slot_of(service: &str, dial: &str) -> Option<usize> {
    let prefix = format!("{{file.{}/", slot_dir(service));
    dial.strip_prefix(&prefix)?.strip_suffix('}')?.parse().ok()
}

/// The route's slots, in order, when every upstream of `dials` is one (and there are
/// some); `None` for a route that lists containers itself.
pub fn slots_of(service: &str, dials: &[String]) -> Option<usize> {
    if dials.is_empty() {
        return None;
    }
    for (i, d) in dials.iter().enumerate() {
        if slot_of(service, d) != Some(i) {
            return None;
        }
    }
    Some(dials.len())
}

/// The distinct containers the slots name, in slot order.
pub fn distinct(slots: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in slots {
        if !out.contains(s) {
            out.push(s.clone())
        }
    }
    out
}

/// The slots' contents for the `wanted` set (non-empty), changing as few slots of
/// `current` as it can: a slot already naming a wanted container keeps it, the wanted
/// containers no slot names take the slots of unwanted ones (or duplicates), and every
/// slot left over repeats a wanted one. Grows to `wanted.len()` slots when there are fewer.
pub fn assign(current: &[String], wanted: &[String]) -> Vec<String> {
    assert!(!wanted.is_empty(), "an empty set is not written as slots");
    let wanted = distinct(wanted);
    let k = current.len().max(wanted.len()).max(MIN_SLOTS);
    let mut slots: Vec<Option<String>> = (0..k).map(|i| current.get(i).cloned()).collect();
    // First pass: keep one slot per wanted container already there; free the others.
    let mut kept: Vec<String> = Vec::new();
    let mut duplicate = vec![false; k];
    for (i, slot) in slots.iter_mut().enumerate() {
        match slot {
            Some(d) if wanted.contains(d) && !kept.contains(d) => kept.push(d.clone()),
            Some(d) if wanted.contains(d) => duplicate[i] = true,
            _ => *slot = None,
        }
    }
    // Wanted containers without a slot take free slots first, then duplicates.
    let mut missing = wanted.iter().filter(|w| !kept.contains(w));
    for i in (0..k).filter(|&i| slots[i].is_none()).collect::<Vec<_>>() {
        match missing.next() {
            Some(w) => slots[i] = Some(w.clone()),
            None => break,
        }
    }
    for i in (0..k).filter(|&i| duplicate[i]).collect::<Vec<_>>() {
        match missing.next() {
            Some(w) => slots[i] = Some(w.clone()),
            None => break,
        }
    }
    // Any slot still free repeats the wanted containers in turn.
    let mut turn = wanted.iter().cycle();
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| turn.next().expect("wanted is not empty").clone()))
        .collect()
}

/// Which Caddy versions read `{file.*}` placeholders: 2.8.0 and later. `caddy version`
/// prints `v2.11.7 h1:…` (official builds) or `2.6.2` (Debian's).
pub fn reads_file_placeholders(version_output: &str) -> bool {
    let word = version_output.split_whitespace().next().unwrap_or("");
    let mut parts = word.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .and_then(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    major > 2 || (major == 2 && minor >= 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_switch_rewrites_one_slot_per_step() {
        // First route: one container fills both slots.
        let first = assign(&[], &s(&["old:3000"]));
        assert_eq!(first, s(&["old:3000", "old:3000"]));
        // add-upstream: the duplicate becomes the new container.
        let added = assign(&first, &s(&["old:3000", "new:3000"]));
        assert_eq!(added, s(&["old:3000", "new:3000"]));
        // remove-old-upstream: the old slot repeats the new container.
        let removed = assign(&added, &s(&["new:3000"]));
        assert_eq!(removed, s(&["new:3000", "new:3000"]));
        // The undo of add-upstream puts the old back where it was.
        assert_eq!(
            assign(&removed, &s(&["old:3000"])),
            s(&["old:3000", "old:3000"])
        );
    }

    #[test]
    fn more_containers_than_slots_grow_the_slots() {
        let grown = assign(&s(&["a:1", "b:1"]), &s(&["a:1", "b:1", "c:1"]));
        assert_eq!(grown, s(&["a:1", "b:1", "c:1"]));
        // And a smaller set keeps the count, repeating.
        assert_eq!(assign(&grown, &s(&["c:1"])), s(&["c:1", "c:1", "c:1"]));
    }

    #[test]
    fn slot_dials_name_their_file_and_parse_back() {
        assert_eq!(
            slot_dial("app", 1),
            "{file./config/odysseus/upstreams/app/1}"
        );
        assert_eq!(slot_of("app", &slot_dial("app", 1)), Some(1));
        assert_eq!(slot_of("app", &slot_dial("app2", 1)), None);
        assert_eq!(slot_of("app", "app-web-1:3000"), None);
        let dials = vec![slot_dial("app", 0), slot_dial("app", 1)];
        assert_eq!(slots_of("app", &dials), Some(2));
        assert_eq!(slots_of("app", &dials[1..]), None, "slots start at 0");
        assert_eq!(slots_of("app", &[]), None);
    }

    #[test]
    fn caddy_reads_file_placeholders_from_2_8() {
        assert!(reads_file_placeholders(
            "v2.11.7 h1:yj0Y4fYZGPkSvibBJ1sTWE33xC0fxztVyXEW5iIdUT4="
        ));
        assert!(reads_file_placeholders("v2.8.0"));
        assert!(reads_file_placeholders("v3.0.0-beta.1"));
        assert!(!reads_file_placeholders("2.6.2"));
        assert!(!reads_file_placeholders("v2.7.6 h1:x"));
        assert!(!reads_file_placeholders(""));
        assert!(!reads_file_placeholders("exec: \"caddy\": not found"));
    }

    proptest! {
        /// Whatever the slots held, they end up naming exactly the wanted set, never fewer
        /// slots than before, and a slot already naming a wanted container that no other
        /// slot names is left alone.
        #[test]
        fn slots_name_exactly_the_wanted_set(
            current in proptest::collection::vec(0u8..6, 0..5),
            wanted in proptest::collection::vec(0u8..6, 1..5),
        ) {
            let name = |n: &u8| format!("c{n}:3000");
            let current: Vec<String> = current.iter().map(name).collect();
            let wanted: Vec<String> = wanted.iter().map(name).collect();
            let slots = assign(&current, &wanted);
            let mut got = distinct(&slots);
            let mut want = distinct(&wanted);
            got.sort();
            want.sort();
            prop_assert_eq!(got, want);
            prop_assert!(slots.len() >= current.len().max(MIN_SLOTS));
            for (i, c) in current.iter().enumerate() {
                if wanted.contains(c) && current.iter().position(|x| x == c) == Some(i) {
                    prop_assert_eq!(&slots[i], c);
                }
            }
        }
    }
}
