//! The seed's Fig. 2 from a real run: time and bytes per building block (HomConv, ReLU, pooling,
//! upsampling, argmax, triples, OT, …), split into the input-independent (offline) and the
//! input-dependent (online) part, as JSON, a Markdown table and an SVG bar chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{self, Table};

/// One building block's measured cost on one party (the shape of the driver's `BlockReport`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockRow {
    /// `client` or `server`.
    pub party: String,
    /// The building block (`homconv`, `relu`, `avgpool`, `argmax`, `ot`, …).
    pub block: String,
    /// `offline` (input-independent) or `online` (input-dependent).
    pub phase: String,
    /// Calls of the block.
    pub calls: u64,
    /// Elements processed.
    pub elements: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds of this party.
    pub cpu_s: f64,
    /// Bytes this party sent.
    pub bytes_sent: u64,
    /// Bytes this party received.
    pub bytes_received: u64,
    /// Flights of messages this party sent.
    pub rounds: u64,
}

impl BlockRow {
    /// Adds `other`'s counts, times and bytes to this row's (the same block on another shard).
    pub fn add(&mut self, other: &BlockRow) {
        self.calls += other.calls;
        self.elements += other.elements;
        self.wall_s += other.wall_s;
        self.cpu_s += other.cpu_s;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.rounds += other.rounds;
    }
}

/// The measured breakdown of a secure run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    /// Nonlinear backend (`gc`, `ot`).
    pub backend: String,
    /// Fixed-point preset (`q32`, `q24`).
    pub preset: String,
    /// The architecture (its `Display` form).
    pub architecture: String,
    /// Input extents of one inference `[1, height, width]`.
    pub input_dims: [usize; 3],
    /// Inferences (slices) in the run.
    pub slices: usize,
    /// Wall time of the whole run, set-up included, seconds.
    pub total_wall_s: f64,
    /// The machine (CPU model and count).
    pub machine: String,
    /// Every block of both parties.
    pub rows: Vec<BlockRow>,
}

/// One block summed over both parties for the chart: time is the larger of the two parties'
/// wall times (they run in lock-step), bytes are all bytes on the wire in both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BlockTotal {
    /// Offline wall seconds.
    pub offline_s: f64,
    /// Online wall seconds.
    pub online_s: f64,
    /// Offline bytes, both directions.
    pub offline_bytes: u64,
    /// Online bytes, both directions.
    pub online_bytes: u64,
}

impl BlockTotal {
    /// Offline + online seconds.
    pub fn seconds(&self) -> f64 {
        self.offline_s + self.online_s
    }

    /// Offline + online bytes.
    pub fn bytes(&self) -> u64 {
        self.offline_bytes + self.online_bytes
    }
}

impl Breakdown {
    /// Per block: offline and online time and bytes over both parties, in a stable order
    /// (largest total time first).
    pub fn totals(&self) -> Vec<(String, BlockTotal)> {
        // (block, phase) -> (max wall over parties, max bytes over parties)
        let mut per: BTreeMap<(&str, &str), (f64, u64)> = BTreeMap::new();
        for r in &self.rows {
            let e = per.entry((&r.block, &r.phase)).or_default();
            e.0 = e.0.max(r.wall_s);
            e.1 = e.1.max(r.bytes_sent + r.bytes_received);
        }
        let mut blocks: BTreeMap<&str, BlockTotal> = BTreeMap::new();
        for ((block, phase), (s, b)) in per {
            let t = blocks.entry(block).or_default();
            if phase == "offline" {
                t.offline_s += s;
                t.offline_bytes += b;
            } else {
                t.online_s += s;
                t.online_bytes += b;
            }
        }
        let mut out: Vec<(String, BlockTotal)> = blocks
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        out.sort_by(|a, b| b.1.seconds().total_cmp(&a.1.seconds()).then(a.0.cmp(&b.0)));
        out
    }

    /// Sum of [`Breakdown::totals`].
    pub fn grand_total(&self) -> BlockTotal {
        let mut g = BlockTotal::default();
        for (_, t) in self.totals() {
            g.offline_s += t.offline_s;
            g.online_s += t.online_s;
            g.offline_bytes += t.offline_bytes;
            g.online_bytes += t.online_bytes;
        }
        g
    }

    /// Pretty JSON: the run's parameters, every row of both parties, and the per-block totals.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            run: &'a Breakdown,
            totals: BTreeMap<String, BlockTotal>,
        }
        let out = Out {
            run: self,
            totals: self.totals().into_iter().collect(),
        };
        serde_json::to_string_pretty(&out).expect("plain data serialises")
    }

    /// A Markdown table of the per-block totals with shares of time and bytes.
    pub fn to_markdown(&self) -> String {
        let g = self.grand_total();
        let mut t = Table::new([
            "block",
            "offline time",
            "online time",
            "share of time",
            "offline bytes",
            "online bytes",
            "share of bytes",
        ]);
        let pct = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.1} %", 100.0 * a / b)
            } else {
                "—".into()
            }
        };
        for (name, b) in self.totals() {
            t.push([
                name,
                report::seconds(b.offline_s),
                report::seconds(b.online_s),
                pct(b.seconds(), g.seconds()),
                report::bytes(b.offline_bytes),
                report::bytes(b.online_bytes),
                pct(b.bytes() as f64, g.bytes() as f64),
            ]);
        }
        t.push([
            "**sum over blocks** (the parties overlap in time)".to_string(),
            report::seconds(g.offline_s),
            report::seconds(g.online_s),
            "100 %".into(),
            report::bytes(g.offline_bytes),
            report::bytes(g.online_bytes),
            "100 %".into(),
        ]);
        t.to_markdown()
    }

    /// An SVG chart: one row per block, a bar of time and a bar of bytes, each split into the
    /// offline (input-independent) and online (input-dependent) parts.
    pub fn to_svg(&self) -> String {
        let totals = self.totals();
        let max_s = totals.iter().map(|t| t.1.seconds()).fold(0.0, f64::max);
        let max_b = totals.iter().map(|t| t.1.bytes()).max().unwrap_or(0) as f64;
        let (label_w, bar_w, gap, row_h, top) = (110.0, 300.0, 140.0, 26.0, 70.0);
        let width = label_w + 2.0 * (bar_w + gap);
        let height = top + row_h * totals.len() as f64 + 50.0;
        let (off, on) = ("#4e79a7", "#f28e2b");
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">{}</text>"#,
            xml(&format!(
                "BUNET secure segmentation: time and bytes per building block ({} backend, {}, {} slice(s) of {}x{})",
                self.backend, self.preset, self.slices, self.input_dims[1], self.input_dims[2]
            ))
        );
        let x_time = label_w;
        let x_bytes = label_w + bar_w + gap;
        let _ = writeln!(
            s,
            r#"<text x="{x_time}" y="48" font-weight="bold">wall time (max of the two parties)</text><text x="{x_bytes}" y="48" font-weight="bold">bytes on the wire (both directions)</text>"#
        );
        for (i, (name, t)) in totals.iter().enumerate() {
            let y = top + row_h * i as f64;
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                y + 14.0,
                xml(name)
            );
            let scale = |v: f64, max: f64| if max > 0.0 { bar_w * v / max } else { 0.0 };
            for (x0, a, b, max, text) in [
                (
                    x_time,
                    t.offline_s,
                    t.online_s,
                    max_s,
                    report::seconds(t.seconds()),
                ),
                (
                    x_bytes,
                    t.offline_bytes as f64,
                    t.online_bytes as f64,
                    max_b,
                    report::bytes(t.bytes()),
                ),
            ] {
                let (wa, wb) = (scale(a, max), scale(b, max));
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0:.1}" y="{:.1}" width="{wa:.2}" height="18" fill="{off}"/><rect x="{:.2}" y="{:.1}" width="{wb:.2}" height="18" fill="{on}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                    y + 1.0,
                    x0 + wa,
                    y + 1.0,
                    x0 + wa + wb + 4.0,
                    y + 14.0,
                    xml(&text)
                );
            }
        }
        let y = top + row_h * totals.len() as f64 + 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{label_w}" y="{:.0}" width="14" height="12" fill="{off}"/><text x="{:.0}" y="{:.0}">offline (input-independent)</text><rect x="{:.0}" y="{:.0}" width="14" height="12" fill="{on}"/><text x="{:.0}" y="{:.0}">online (input-dependent)</text>"#,
            y - 10.0,
            label_w + 20.0,
            y,
            label_w + 220.0,
            y - 10.0,
            label_w + 240.0,
            y
        );
        s.push_str("</svg>\n");
        s
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(party: &str, block: &str, phase: &str, wall: f64, sent: u64, recv: u64) -> BlockRow {
        BlockRow {
            party: party.into(),
            block: block.into(),
            phase: phase.into(),
            calls: 1,
            elements: 10,
            wall_s: wall,
            cpu_s: wall,
            bytes_sent: sent,
            bytes_received: recv,
            rounds: 1,
        }
    }

    fn sample() -> Breakdown {
        Breakdown {
            backend: "gc".into(),
            preset: "q32".into(),
            architecture: "unet".into(),
            input_dims: [1, 32, 32],
            slices: 1,
            total_wall_s: 3.0,
            machine: "test".into(),
            rows: vec![
                row("client", "relu", "online", 2.0, 100, 900),
                row("server", "relu", "online", 2.1, 900, 100),
                row("client", "keys", "offline", 0.5, 50, 0),
                row("server", "keys", "offline", 0.4, 0, 50),
                row("client", "homconv", "online", 0.3, 400, 200),
                row("server", "homconv", "online", 0.2, 200, 400),
            ],
        }
    }

    #[test]
    fn totals_take_both_parties_once() {
        let b = sample();
        let t = b.totals();
        assert_eq!(t[0].0, "relu");
        assert_eq!(t[0].1.online_s, 2.1);
        assert_eq!(t[0].1.bytes(), 1000);
        let keys = &t.iter().find(|x| x.0 == "keys").unwrap().1;
        assert_eq!(
            (keys.offline_s, keys.offline_bytes, keys.online_s),
            (0.5, 50, 0.0)
        );
        let g = b.grand_total();
        assert_eq!(g.bytes(), 1000 + 50 + 600);
    }

    #[test]
    fn renders_json_markdown_and_svg() {
        let b = sample();
        let json: serde_json::Value = serde_json::from_str(&b.to_json()).unwrap();
        assert_eq!(json["backend"], "gc");
        assert_eq!(json["rows"].as_array().unwrap().len(), 6);
        assert_eq!(json["totals"]["relu"]["online_bytes"], 1000);
        let md = b.to_markdown();
        assert!(md.contains("| relu |"), "{md}");
        let svg = b.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 1 + 3 * 4 + 2);
    }
}
