//! Progress for long work: a bar when standard error is a terminal, and plain lines (one per
//! tenth of the work, so that logs of batch jobs show the run is alive) when it is not.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of `len` steps of one piece of work.
#[derive(Debug)]
pub struct Progress {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

#[derive(Debug)]
struct Lines {
    what: String,
    len: u64,
    pos: u64,
    tenths: u64,
    started: Instant,
}

impl Lines {
    /// The line to print after moving to `pos`, when a new tenth of the work is done.
    fn advance(&mut self, delta: u64) -> Option<String> {
        self.pos = self.pos.saturating_add(delta).min(self.len);
        let tenths = (self.pos * 10).checked_div(self.len).unwrap_or(10);
        if tenths <= self.tenths {
            return None;
        }
        self.tenths = tenths;
        Some(format!(
            "bunet: {} {}/{} ({}%) after {:.1} s",
            self.what,
            self.pos,
            self.len,
            tenths * 10,
            self.started.elapsed().as_secs_f64()
        ))
    }
}

impl Progress {
    /// Advances by `delta` steps.
    pub fn inc(&self, delta: u64) {
        match &self.inner {
            Inner::Bar(pb) => pb.inc(delta),
            Inner::Lines(lines) => {
                let line = lines.lock().ok().and_then(|mut l| l.advance(delta));
                if let Some(line) = line {
                    eprintln!("{line}");
                }
            }
        }
    }

    /// Ends the progress: the bar is cleared; plain lines need no ending.
    pub fn finish_and_clear(&self) {
        if let Inner::Bar(pb) = &self.inner {
            pb.finish_and_clear();
        }
    }
}

/// Progress counting `len` steps of `what`: a bar on a terminal, plain lines otherwise.
pub fn bar(len: u64, what: &str) -> Progress {
    if !std::io::stderr().is_terminal() {
        return Progress {
            inner: Inner::Lines(Mutex::new(Lines {
                what: what.to_string(),
                len,
                pos: 0,
                tenths: 0,
                started: Instant::now(),
            })),
        };
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    Progress {
        inner: Inner::Bar(pb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_once_per_tenth() {
        let mut l = Lines {
            what: "segment".into(),
            len: 20,
            pos: 0,
            tenths: 0,
            started: Instant::now(),
        };
        let lines: Vec<String> = (0..25).filter_map(|_| l.advance(1)).collect();
        assert_eq!(lines.len(), 10);
        assert!(
            lines[0].starts_with("bunet: segment 2/20 (10%)"),
            "{}",
            lines[0]
        );
        assert!(lines[9].contains("20/20 (100%)"));
        let mut empty = Lines { len: 0, ..l };
        empty.tenths = 0;
        assert!(empty.advance(1).is_some());
    }
}
