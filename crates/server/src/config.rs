//! Server configuration: every bound of the shell, with its unit in the name.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The most commands one `POST /v1/batch` may carry.
    pub batch_commands_max: usize,
    /// The largest request body, in bytes.
    pub request_bytes_max: usize,
    /// Submissions waiting for the sequencer; beyond this the gateway answers 503.
    pub sequencer_queue_max: usize,
    /// The most commands the sequencer applies between two fsyncs.
    pub group_commit_commands_max: usize,
    /// How long an unpaid order holds its stock.
    pub reservation_ttl_ms: u64,
    /// The platform's commission for merchants created without one, in basis points.
    pub default_commission_bps: u16,
    /// A snapshot is taken after this many journaled commands.
    pub snapshot_every_commands: u64,
    /// Journal segments roll over at this size.
    pub segment_bytes_max: u64,
}

impl Config {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Config {
        Config {
            data_dir,
            listen,
            batch_commands_max: 10_000,
            request_bytes_max: 8 << 20,
            sequencer_queue_max: 4_096,
            group_commit_commands_max: 16_384,
            reservation_ttl_ms: 15 * 60_000,
            default_commission_bps: 200,
            snapshot_every_commands: 1_000_000,
            segment_bytes_max: 256 << 20,
        }
    }
}
