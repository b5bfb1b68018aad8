//! Report writing shared by the commands: tables as Markdown and CSV, human-readable sizes and
//! durations, and the machine a figure was measured on.

use std::fmt::Write as _;

/// A table with a header row, rendered as Markdown or CSV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (padded with empty cells or truncated to the header's width).
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        let mut r: Vec<String> = row.into_iter().map(Into::into).collect();
        r.resize(self.header.len(), String::new());
        self.rows.push(r);
    }

    /// GitHub-flavoured Markdown (`|` in cells escaped).
    pub fn to_markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|");
        let line = |cells: &[String]| {
            let inner: Vec<String> = cells.iter().map(|c| cell(c)).collect();
            format!("| {} |\n", inner.join(" | "))
        };
        let mut out = line(&self.header);
        out.push_str(&format!(
            "|{}\n",
            self.header.iter().map(|_| " --- |").collect::<String>()
        ));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// RFC 4180 CSV (cells with commas, quotes or newlines quoted).
    pub fn to_csv(&self) -> String {
        let cell = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "{}", cells.join(","));
        }
        out
    }
}

/// Bytes with a binary-free SI unit: `812 B`, `3.28 MB`, `1.20 GB`, `290.1 GB`, `1.2 TB`.
pub fn bytes(n: u64) -> String {
    let v = n as f64;
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} MB", v / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.2} GB", v / 1e9),
        _ => format!("{:.2} TB", v / 1e12),
    }
}

/// Seconds with a readable precision: `0.012 s`, `4.56 s`, `123 s (2.1 min)`, `17951 s (5.0 h)`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3} s")
    } else if s < 100.0 {
        format!("{s:.2} s")
    } else if s < 3600.0 {
        format!("{s:.0} s ({:.1} min)", s / 60.0)
    } else {
        format!("{s:.0} s ({:.1} h)", s / 3600.0)
    }
}

/// The CPU model (`model name` of `/proc/cpuinfo`, as `lscpu` prints it) and the number of
/// logical CPUs, or `unknown CPU`.
pub fn machine() -> String {
    let model = bunet_kernels::cpu_model().unwrap_or_else(|| "unknown CPU".to_string());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cpus} logical CPUs")
}

/// The 1-minute load average (`/proc/loadavg`), if known: how busy the machine was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render() {
        let mut t = Table::new(["a", "b"]);
        t.push(["1", "x|y"]);
        t.push(["2, 3", "say \"hi\""]);
        t.push(["only"]);
        assert_eq!(
            t.to_markdown(),
            "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n| 2, 3 | say \"hi\" |\n| only |  |\n"
        );
        assert_eq!(
            t.to_csv(),
            "a,b\n1,x|y\n\"2, 3\",\"say \"\"hi\"\"\"\nonly,\n"
        );
    }

    #[test]
    fn units() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3_280_000), "3.28 MB");
        assert_eq!(bytes(290_100_000_000), "290.10 GB");
        assert_eq!(seconds(0.0123), "0.012 s");
        assert_eq!(seconds(17951.0), "17951 s (5.0 h)");
    }
}
