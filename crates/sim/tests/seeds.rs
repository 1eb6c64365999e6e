//! Many seeds, briefly, on every CI run; `bench/sim.sh` runs millions of commands.

/// Seeds per CI run, and commands per seed.
const SEEDS: u64 = 64;
const COMMANDS: u64 = 3_000;

#[test]
fn every_seed_keeps_every_acknowledged_command_and_every_invariant() {
    let mut crashes = 0;
    let mut rot_refused = 0;
    let mut torn = 0;
    for seed in 1..=SEEDS {
        let stats =
            elevens_sim::run(elevens_sim::Options::new(seed, COMMANDS)).unwrap_or_else(|f| panic!("{f}"));
        assert!(stats.acknowledged > 0, "seed {seed} acknowledged nothing: {stats:?}");
        crashes += stats.crashes;
        rot_refused += stats.rot_refused;
        torn += stats.torn_bytes_cut;
    }
    // The faults did happen: a run that injected none would prove nothing.
    assert!(crashes >= SEEDS, "{crashes} crashes");
    assert!(rot_refused > 0 && torn > 0, "rot refused {rot_refused}, torn bytes {torn}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = elevens_sim::run(elevens_sim::Options::new(7, 1_500)).unwrap();
    let b = elevens_sim::run(elevens_sim::Options::new(7, 1_500)).unwrap();
    assert_eq!(a, b);
}
