//! Readable run names (`brave-otter`), as Prefect gives its flow runs:
//! derived from the run's id, so every process names a run alike without
//! storing anything. Names may repeat; the id stays the run's key.

const ADJECTIVES: [&str; 64] = [
    "agile", "amber", "ample", "azure", "bold", "brave", "bright", "brisk", "calm", "candid",
    "clever", "cosmic", "crisp", "daring", "deft", "eager", "early", "fancy", "fearless", "fluffy",
    "frank", "gentle", "glad", "golden", "grand", "happy", "hardy", "honest", "humble", "jolly",
    "keen", "kind", "lively", "loyal", "lucky", "merry", "mighty", "modest", "nimble", "noble",
    "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "robust", "rosy",
    "shiny", "silent", "sleek", "smart", "snappy", "steady", "sunny", "swift", "tidy", "tough",
    "vivid", "warm", "witty", "zesty",
];

const ANIMALS: [&str; 64] = [
    "alpaca", "badger", "beaver", "bison", "bobcat", "camel", "caribou", "cheetah", "condor",
    "coyote", "crane", "dingo", "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gazelle",
    "gecko", "gibbon", "heron", "hippo", "ibex", "jackal", "jaguar", "kestrel", "koala", "lemur",
    "leopard", "llama", "lynx", "marmot", "meerkat", "mink", "moose", "narwhal", "ocelot", "okapi",
    "orca", "osprey", "otter", "owl", "panda", "panther", "pelican", "puffin", "quokka", "raven",
    "seal", "shrew", "skunk", "sloth", "stork", "swan", "tapir", "tiger", "toucan", "turtle",
    "walrus", "weasel", "whale", "wombat", "yak",
];

/// The readable name of the run with id `id`.
pub fn run_name(id: &str) -> String {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let adjective = ADJECTIVES.get((hash % 64) as usize).copied().unwrap_or("quick");
    let animal = ANIMALS.get(((hash >> 6) % 64) as usize).copied().unwrap_or("fox");
    format!("{adjective}-{animal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_s_name_is_readable_stable_and_varied() {
        let id = "0193a8f0-5c1e-7d2a-9b3c-4d5e6f708192";
        assert_eq!(run_name(id), run_name(id));
        let (adjective, animal) =
            run_name(id).split_once('-').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
        assert!(ADJECTIVES.contains(&adjective.as_str()) && ANIMALS.contains(&animal.as_str()));
        let names: std::collections::HashSet<String> =
            (0..200).map(|i| run_name(&format!("0193a8f0-5c1e-7d2a-9b3c-{i:012}"))).collect();
        assert!(names.len() > 150, "only {} names for 200 ids", names.len());
    }
}
