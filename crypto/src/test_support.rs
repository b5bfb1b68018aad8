//! What the tests of every module share: channel pairs and a distinguisher statistic.

use crate::channel::{Channel, ChannelConfig};

/// Two connected in-memory ends with the default configuration.
pub(crate) fn memory_pair() -> (Channel, Channel) {
    Channel::in_memory_pair(ChannelConfig::default())
}

/// Two ends of a loopback TCP connection with the default configuration: (accepting end,
/// connecting end).
pub(crate) fn tcp_pair() -> (Channel, Channel) {
    Channel::loopback_pair(ChannelConfig::default()).unwrap()
}

/// Two-sample Kolmogorov–Smirnov statistic.
pub(crate) fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// A rayon pool of `threads` threads, to run one party's calls with a given parallelism.
pub(crate) fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}
