//! Running one test body over many seeds, and replaying one.

use core::fmt;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Environment variable naming the one seed to run (replay).
pub const SEED_VAR: &str = "NETSIM_SEED";
/// Environment variable giving how many seeds to sweep.
pub const SEEDS_VAR: &str = "NETSIM_SEEDS";
/// Environment variable giving the first seed of a sweep (default 0), so CI
/// can explore fresh seeds while a plain run stays the same every time.
pub const SEED_START_VAR: &str = "NETSIM_SEED_START";

/// Which seeds a sweep runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seeds {
    /// Exactly this seed (a replay).
    One(u64),
    /// `count` seeds from `start` on.
    Range {
        /// First seed.
        start: u64,
        /// How many.
        count: u64,
    },
}

impl Seeds {
    /// From `NETSIM_SEED`, else `NETSIM_SEED_START` and `NETSIM_SEEDS`
    /// (default `default_count`). Panics on a malformed value, since a
    /// typo would otherwise silently test something else.
    pub fn from_env(default_count: u64) -> Seeds {
        let var = |name| std::env::var(name).ok();
        match Seeds::parse(
            var(SEED_VAR).as_deref(),
            var(SEEDS_VAR).as_deref(),
            var(SEED_START_VAR).as_deref(),
            default_count,
        ) {
            Ok(s) => s,
            Err(e) => panic!("netsim: {e}"),
        }
    }

    /// The values of the three variables, as [`from_env`](Self::from_env)
    /// reads them.
    pub fn parse(
        seed: Option<&str>,
        seeds: Option<&str>,
        start: Option<&str>,
        default_count: u64,
    ) -> Result<Seeds, String> {
        fn number(name: &str, v: &str) -> Result<u64, String> {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.map_err(|_| format!("{name}={v:?} is not a u64"))
        }
        if let Some(s) = seed {
            return Ok(Seeds::One(number(SEED_VAR, s)?));
        }
        Ok(Seeds::Range {
            start: start
                .map(|s| number(SEED_START_VAR, s))
                .transpose()?
                .unwrap_or(0),
            count: seeds
                .map(|s| number(SEEDS_VAR, s))
                .transpose()?
                .unwrap_or(default_count),
        })
    }

    /// The seeds, in order.
    pub fn iter(self) -> impl Iterator<Item = u64> {
        let (start, count) = match self {
            Seeds::One(s) => (s, 1),
            Seeds::Range { start, count } => (start, count),
        };
        (0..count).map(move |i| start.wrapping_add(i))
    }
}

/// What a seed's run returns: `()` (failure is a panic) or a `Result`.
pub trait SeedOutcome {
    /// `Err` with a description if the run failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl SeedOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Debug> SeedOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// The first seed of a sweep that failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SweepFailure {
    /// The failing seed.
    pub seed: u64,
    /// How many seeds passed before it.
    pub passed: u64,
    /// The panic message or the `Err` value.
    pub message: String,
    /// Shell command that reruns exactly this seed.
    pub replay: String,
}

impl fmt::Display for SweepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "netsim: seed {} failed (after {} passing seeds): {}\n\
             netsim: replay exactly this seed with:\n    {}",
            self.seed, self.passed, self.message, self.replay
        )
    }
}

impl std::error::Error for SweepFailure {}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// The command that reruns `seed` in the current test: libtest names each
/// test's thread after the test, and cargo exports the package name.
fn replay_command(seed: u64) -> String {
    let mut cmd = format!("{SEED_VAR}={seed} cargo test");
    if let Ok(pkg) = std::env::var("CARGO_PKG_NAME") {
        cmd.push_str(&format!(" -p {pkg}"));
    }
    match std::thread::current().name() {
        Some(test) if test != "main" => cmd.push_str(&format!(" -- --exact {test}")),
        _ => cmd.push_str(" -- <test name>"),
    }
    cmd
}

/// Runs `body` once per seed, in order, stopping at the first failure (a
/// panic or an `Err`), which it returns; otherwise the number of seeds run.
pub fn try_sweep_seeds<R: SeedOutcome>(
    seeds: impl IntoIterator<Item = u64>,
    mut body: impl FnMut(u64) -> R,
) -> Result<u64, SweepFailure> {
    let mut passed = 0;
    for seed in seeds {
        // The body's captured state is not looked at after a panic: the
        // sweep stops there, so unwind safety is not a concern.
        let outcome = match catch_unwind(AssertUnwindSafe(|| body(seed))) {
            Ok(r) => r.into_outcome(),
            Err(payload) => Err(panic_message(&*payload)),
        };
        if let Err(message) = outcome {
            return Err(SweepFailure {
                seed,
                passed,
                message,
                replay: replay_command(seed),
            });
        }
        passed += 1;
    }
    Ok(passed)
}

/// [`try_sweep_seeds`] over [`Seeds::from_env`]`(default_count)`.
pub fn try_sweep<R: SeedOutcome>(
    default_count: u64,
    body: impl FnMut(u64) -> R,
) -> Result<u64, SweepFailure> {
    try_sweep_seeds(Seeds::from_env(default_count).iter(), body)
}

/// Runs `body` over `default_count` seeds (or as `NETSIM_SEED`,
/// `NETSIM_SEEDS` and `NETSIM_SEED_START` say); on the first failure panics
/// with the seed and the command that replays it. Returns how many ran.
///
/// ```
/// let ran = netsim::sweep(10, |seed| {
///     assert!(seed < 1_000_000);
/// });
/// assert!(ran >= 1);
/// ```
pub fn sweep<R: SeedOutcome>(default_count: u64, body: impl FnMut(u64) -> R) -> u64 {
    match try_sweep(default_count, body) {
        Ok(n) => n,
        Err(failure) => panic!("{failure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_seeds() {
        assert_eq!(
            Seeds::parse(None, None, None, 5),
            Ok(Seeds::Range { start: 0, count: 5 })
        );
        assert_eq!(
            Seeds::parse(None, Some("100"), Some("7"), 5),
            Ok(Seeds::Range {
                start: 7,
                count: 100
            })
        );
        assert_eq!(
            Seeds::parse(Some("42"), Some("100"), None, 5),
            Ok(Seeds::One(42))
        );
        assert_eq!(
            Seeds::parse(Some("0x10"), None, None, 5),
            Ok(Seeds::One(16))
        );
        assert!(Seeds::parse(Some("x"), None, None, 5).is_err());
        assert!(Seeds::parse(None, Some("-1"), None, 5).is_err());
        assert_eq!(Seeds::One(9).iter().collect::<Vec<_>>(), [9]);
        assert_eq!(
            Seeds::Range { start: 3, count: 3 }
                .iter()
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }
}
