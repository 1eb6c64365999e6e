//! Runs the simulator over a range of seeds; a failure prints its seed, and `--seed S` replays it.
//! `bench/sim.sh` runs millions of commands this way.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "elevens-sim",
    about = "Deterministic simulation of elevens' durability under disk faults and crashes"
)]
struct Cli {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds, from the first.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Commands per seed.
    #[arg(long, default_value_t = 10_000)]
    commands: u64,
    /// Print each seed's figures as a JSON line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut total = elevens_sim::Stats::default();
    let started = std::time::Instant::now();
    for seed in cli.seed..cli.seed.saturating_add(cli.seeds) {
        match elevens_sim::run(elevens_sim::Options::new(seed, cli.commands)) {
            Ok(stats) => {
                if cli.json {
                    println!("{}", serde_json::to_string(&stats).unwrap_or_default());
                }
                total.commands += stats.commands;
                total.batches += stats.batches;
                total.acknowledged += stats.acknowledged;
                total.crashes += stats.crashes;
                total.clean_stops += stats.clean_stops;
                total.restarts_from_snapshot += stats.restarts_from_snapshot;
                total.torn_bytes_cut += stats.torn_bytes_cut;
                total.unsynced_bytes_lost += stats.unsynced_bytes_lost;
                total.read_errors += stats.read_errors;
                total.rot_refused += stats.rot_refused;
                total.repeats_checked += stats.repeats_checked;
                total.clock_jumps_back += stats.clock_jumps_back;
            }
            Err(failure) => {
                eprintln!("FAILED: {failure}");
                eprintln!(
                    "replay: cargo run --release -p elevens-sim -- --seed {seed} --commands {}",
                    cli.commands
                );
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "seeds {}..{}: {} commands in {} batches, {} acknowledged; {} crashes, {} clean stops, {} restarts \
         from a snapshot; {} torn bytes cut, {} unsynced bytes lost, {} read errors, {} rotted bytes \
         refused; {} repeats answered first; {} clock jumps back; {:.1} s",
        cli.seed,
        cli.seed.saturating_add(cli.seeds) - 1,
        total.commands,
        total.batches,
        total.acknowledged,
        total.crashes,
        total.clean_stops,
        total.restarts_from_snapshot,
        total.torn_bytes_cut,
        total.unsynced_bytes_lost,
        total.read_errors,
        total.rot_refused,
        total.repeats_checked,
        total.clock_jumps_back,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
