//! Shared pieces of the property-based fuzz targets (`mod fuzz` in each
//! parser's module; docs/fuzzing.md lists them): the run configuration and
//! byte-level mutations of valid inputs, which find more than random bytes.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Environment variable multiplying every target's number of cases (a
/// longer run: `PGBIN_FUZZ_SCALE=100 cargo test --release --lib fuzz`).
pub const SCALE_ENV: &str = "PGBIN_FUZZ_SCALE";

/// Environment variable choosing the seed: a number, or `random` for a
/// new one each run (the default is a fixed seed, so that a plain `cargo
/// test` explores the same cases every time and never fails by chance).
pub const SEED_ENV: &str = "PGBIN_FUZZ_SEED";

/// The seed of a plain run.
const DEFAULT_SEED: u64 = 14;

/// A run of `cases` cases (times [`SCALE_ENV`]) from the seed of
/// [`SEED_ENV`], recording no regression files: every failure found
/// becomes a test of its own.
pub fn config(cases: u32) -> Config {
    use proptest::test_runner::RngSeed;
    let scale = std::env::var(SCALE_ENV).ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1).max(1);
    let rng_seed = match std::env::var(SEED_ENV).ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(seed) => RngSeed::Fixed(seed.parse().unwrap_or(DEFAULT_SEED)),
        None => RngSeed::Fixed(DEFAULT_SEED),
    };
    Config { cases: cases.saturating_mul(scale), failure_persistence: None, rng_seed, ..Config::default() }
}

/// One change to a byte string; positions are fractions of its length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    Flip(prop::sample::Index, u8),
    /// Replace one byte.
    Set(prop::sample::Index, u8),
    /// Overwrite the 8-byte little-endian word at an 8-aligned position
    /// (a NAR length, a size) with an interesting value.
    Word(prop::sample::Index, u64),
    /// Cut the input at a position.
    Truncate(prop::sample::Index),
    /// Insert bytes at a position.
    Insert(prop::sample::Index, Vec<u8>),
    /// Remove up to a number of bytes at a position.
    Remove(prop::sample::Index, usize),
    /// Copy a range of up to a number of bytes to another position.
    Splice(prop::sample::Index, usize, prop::sample::Index),
}

/// Values that break parsers that trust lengths and counts.
const INTERESTING: &[u64] =
    &[0, 1, 7, 8, 9, 255, 256, 4096, 4097, 65535, 1 << 31, u32::MAX as u64, 1 << 40, 1 << 62, u64::MAX - 7, u64::MAX];

/// Any one mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    prop_oneof![
        (index(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        (index(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (index(), prop_oneof![3 => prop::sample::select(INTERESTING), 1 => any::<u64>()])
            .prop_map(|(i, w)| Mutation::Word(i, w)),
        index().prop_map(Mutation::Truncate),
        (index(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (index(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (index(), 1usize..256, index()).prop_map(|(from, n, to)| Mutation::Splice(from, n, to)),
    ]
}

/// Up to `max` mutations.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=max)
}

/// `bytes` with `mutations` applied in order.
pub fn apply(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for mutation in mutations {
        let len = out.len();
        let at = |i: &prop::sample::Index| if len == 0 { 0 } else { i.index(len) };
        match mutation {
            Mutation::Flip(i, bit) if len > 0 => out[at(i)] ^= 1 << bit,
            Mutation::Set(i, byte) if len > 0 => out[at(i)] = *byte,
            Mutation::Word(i, word) if len >= 8 => {
                let start = at(i) / 8 * 8;
                let start = start.min(len - 8);
                out[start..start + 8].copy_from_slice(&word.to_le_bytes());
            }
            Mutation::Truncate(i) => out.truncate(at(i)),
            Mutation::Insert(i, inserted) => {
                let position = if len == 0 { 0 } else { i.index(len + 1) };
                out.splice(position..position, inserted.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let start = at(i);
                out.drain(start..(start + n).min(len));
            }
            Mutation::Splice(from, n, to) if len > 0 => {
                let start = at(from);
                let copied = out[start..(start + n).min(len)].to_vec();
                let position = at(to);
                out.splice(position..position, copied);
            }
            _ => {}
        }
    }
    out
}

/// Whether `text` is one line (what every error must be).
pub fn one_line(text: &str) -> bool {
    !text.is_empty() && !text.contains('\n')
}
