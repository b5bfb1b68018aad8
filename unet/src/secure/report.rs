//! Per-building-block cost records: wall time, CPU time, bytes and rounds, on each party.
//!
//! # What is measured
//! - Wall time: [`std::time::Instant`] around the block.
//! - CPU time: the whole process's user + system time from `/proc/self/stat` (Linux; fields
//!   `utime` and `stime` in `USER_HZ` = 100 ticks per second, so 10 ms resolution; zero
//!   elsewhere). When both parties run in one process (tests, benches, `demo`), each party's
//!   figure includes the other's concurrent work.
//! - Bytes, messages and flights: the delta of the channel's [`Meter`](bunet_crypto::channel::Meter)
//!   total over the block (every label the block's protocols count under). `rounds` is the
//!   number of flights this party started in the block (a flight is a run of sends not
//!   interrupted by a receive); the protocol's round count is the sum over both parties. Sends
//!   that continue a flight begun in the previous block add no round: that is the latency the
//!   network sees, but it attributes the flight to the block that started it.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bunet_crypto::channel::{Channel, Labelled, Traffic};

use super::config::SessionConfig;

/// Which party a report is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client (Alice: secret key, garbler, learns the mask).
    Client,
    /// The server (Bob: weights).
    Server,
}

impl Role {
    /// `"client"` or `"server"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// Whether work depends on the client's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Input-independent: handshake, keys, base OTs, square pairs, HomConv preparation.
    Offline,
    /// Input-dependent.
    Online,
}

impl Phase {
    /// `"offline"` or `"online"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Offline => "offline",
            Phase::Online => "online",
        }
    }
}

/// One building block's measured cost on one party, summed over its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockReport {
    /// `handshake`, `keys`, `setup`, `triples`, `prepare`, `weights`, `homconv`, `upsample`, `head`,
    /// `relu`, `rescale`, `square`, `avgpool`, `maxpool`, `concat`, `argmax`, `request`.
    pub block: String,
    /// Offline or online.
    pub phase: Phase,
    /// Calls.
    pub calls: u64,
    /// Output elements produced (0 where it has no meaning).
    pub elements: u64,
    /// Wall time.
    pub wall: Duration,
    /// Process CPU time (see the module documentation).
    pub cpu: Duration,
    /// Bytes sent, frame headers included.
    pub bytes_sent: u64,
    /// Bytes received, frame headers included.
    pub bytes_received: u64,
    /// Flights this party sent.
    pub rounds: u64,
}

impl BlockReport {
    fn empty(block: &str, phase: Phase) -> Self {
        Self {
            block: block.to_owned(),
            phase,
            calls: 0,
            elements: 0,
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
            bytes_sent: 0,
            bytes_received: 0,
            rounds: 0,
        }
    }

    fn add(&mut self, other: &BlockReport) {
        self.calls += other.calls;
        self.elements += other.elements;
        self.wall += other.wall;
        self.cpu += other.cpu;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.rounds += other.rounds;
    }
}

/// Every block's cost on one party over a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The party.
    pub party: Role,
    /// The agreed configuration.
    pub config: SessionConfig,
    /// Per (block, phase), in first-use order.
    pub blocks: Vec<BlockReport>,
}

impl Report {
    pub(crate) fn new(party: Role, config: SessionConfig) -> Self {
        Self {
            party,
            config,
            blocks: Vec::new(),
        }
    }

    /// Adds one call's measurement to its (block, phase) record.
    pub(crate) fn record(&mut self, m: BlockReport) {
        match self
            .blocks
            .iter_mut()
            .find(|b| b.block == m.block && b.phase == m.phase)
        {
            Some(b) => b.add(&m),
            None => self.blocks.push(m),
        }
    }

    /// Adds every block of `other` (another session of the same party, e.g. one of several run
    /// at once) to this report's records. Walls add up (the sessions' own times, not the
    /// elapsed time when they overlap), as do bytes, rounds and the process CPU time each
    /// block saw.
    pub fn merge(&mut self, other: &Report) {
        for b in &other.blocks {
            self.record(b.clone());
        }
    }

    /// The sum over blocks of `phase` (`None`: all), named `total`.
    pub fn total_of(&self, phase: Option<Phase>) -> BlockReport {
        let mut t = BlockReport::empty("total", phase.unwrap_or(Phase::Online));
        for b in self
            .blocks
            .iter()
            .filter(|b| phase.is_none_or(|p| b.phase == p))
        {
            t.add(b);
        }
        t
    }

    /// The sum over every block (its `phase` field is meaningless).
    pub fn total(&self) -> BlockReport {
        self.total_of(None)
    }

    /// The record of `block` in `phase`, if any.
    pub fn get(&self, block: &str, phase: Phase) -> Option<&BlockReport> {
        self.blocks
            .iter()
            .find(|b| b.block == block && b.phase == phase)
    }

    /// The report as one JSON object: `party`, `preset`, `backend`, `linear`, `chunk`, `batch`,
    /// and `blocks` (each with
    /// `block`, `phase`, `calls`, `elements`, `wall_s`, `cpu_s`, `bytes_sent`,
    /// `bytes_received`, `rounds`).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"party\":\"{}\",\"preset\":\"{}\",\"backend\":\"{}\",\"linear\":\"{}\",\"chunk\":{},\"batch\":{},\"blocks\":[",
            self.party.name(),
            self.config.preset.name(),
            self.config.nonlinear.name(),
            self.config.linear.name(),
            self.config.chunk,
            self.config.batch
        );
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Block names are fixed ASCII identifiers: no escaping needed.
            let _ = write!(
                out,
                "{{\"block\":\"{}\",\"phase\":\"{}\",\"calls\":{},\"elements\":{},\"wall_s\":{:.6},\"cpu_s\":{:.6},\"bytes_sent\":{},\"bytes_received\":{},\"rounds\":{}}}",
                b.block,
                b.phase.name(),
                b.calls,
                b.elements,
                b.wall.as_secs_f64(),
                b.cpu.as_secs_f64(),
                b.bytes_sent,
                b.bytes_received,
                b.rounds
            );
        }
        out.push_str("]}");
        out
    }
}

impl std::fmt::Display for Report {
    /// A table: one line per block, then the offline, online and overall totals.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} report ({}, {}, linear {}):",
            self.party.name(),
            self.config.preset.name(),
            self.config.nonlinear.name(),
            self.config.linear.name()
        )?;
        writeln!(
            f,
            "  {:<10} {:<7} {:>6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>6}",
            "block",
            "phase",
            "calls",
            "elements",
            "wall ms",
            "cpu ms",
            "sent B",
            "recv B",
            "rounds"
        )?;
        let line = |f: &mut std::fmt::Formatter<'_>, b: &BlockReport, phase: &str| {
            writeln!(
                f,
                "  {:<10} {:<7} {:>6} {:>10} {:>10.1} {:>10.1} {:>12} {:>12} {:>6}",
                b.block,
                phase,
                b.calls,
                b.elements,
                b.wall.as_secs_f64() * 1e3,
                b.cpu.as_secs_f64() * 1e3,
                b.bytes_sent,
                b.bytes_received,
                b.rounds
            )
        };
        for b in &self.blocks {
            line(f, b, b.phase.name())?;
        }
        line(f, &self.total_of(Some(Phase::Offline)), "offline")?;
        line(f, &self.total_of(Some(Phase::Online)), "online")?;
        line(f, &self.total(), "all")
    }
}

/// Process CPU time (user + system) from `/proc/self/stat`; zero where unavailable.
pub fn process_cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Duration::ZERO;
    };
    let mut fields = rest.split_whitespace().skip(11);
    let mut ticks = 0u64;
    for _ in 0..2 {
        ticks += fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    Duration::from_millis(ticks * 10)
}

/// The channel, its label restored when the returned guard drops: a driver's blocks set their
/// own labels ([`Timer::start`]), and none of them leaks into the caller's traffic (also on an
/// early `?` return).
pub(crate) fn restoring_label(ch: &mut Channel) -> Labelled<'_> {
    let label = ch.label();
    ch.labelled(label)
}

/// A measurement in progress: started before a block, finished after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    wall: Instant,
    cpu: Duration,
    traffic: Traffic,
}

impl Timer {
    /// Starts measuring; traffic not labelled by the block's protocols counts under `label`.
    pub(crate) fn start(ch: &mut Channel, label: &'static str) -> Self {
        ch.set_label(label);
        Self {
            wall: Instant::now(),
            cpu: process_cpu_time(),
            traffic: ch.meter().total(),
        }
    }

    /// The block's record: one call producing `elements` outputs.
    pub(crate) fn stop(
        self,
        ch: &Channel,
        block: &str,
        phase: Phase,
        elements: u64,
    ) -> BlockReport {
        let now = ch.meter().total();
        BlockReport {
            block: block.to_owned(),
            phase,
            calls: 1,
            elements,
            wall: self.wall.elapsed(),
            cpu: process_cpu_time().saturating_sub(self.cpu),
            bytes_sent: now.bytes_sent - self.traffic.bytes_sent,
            bytes_received: now.bytes_received - self.traffic.bytes_received,
            rounds: now.flights - self.traffic.flights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::config::Preset;

    #[test]
    fn records_accumulate_per_block_and_phase() {
        let mut r = Report::new(Role::Client, SessionConfig::new(Preset::Q32));
        let mk = |block: &str, phase, bytes| BlockReport {
            bytes_sent: bytes,
            calls: 1,
            ..BlockReport::empty(block, phase)
        };
        r.record(mk("relu", Phase::Online, 10));
        r.record(mk("relu", Phase::Online, 5));
        r.record(mk("relu", Phase::Offline, 1));
        assert_eq!(r.blocks.len(), 2);
        assert_eq!(r.get("relu", Phase::Online).unwrap().bytes_sent, 15);
        assert_eq!(r.get("relu", Phase::Online).unwrap().calls, 2);
        assert_eq!(r.total().bytes_sent, 16);
        assert_eq!(r.total_of(Some(Phase::Offline)).bytes_sent, 1);
        let json = r.to_json();
        assert!(json.starts_with("{\"party\":\"client\",\"preset\":\"q32\",\"backend\":\"gc\""));
        assert!(json.contains("\"block\":\"relu\",\"phase\":\"online\",\"calls\":2"));
    }

    #[test]
    fn process_cpu_time_grows_with_work() {
        let before = process_cpu_time();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(60) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time() > before);
        }
    }
}
