//! The process's heap policy for the protocols' large transient buffers.
//!
//! A two-party layer allocates and frees buffers of megabytes per chunk: COTs, OT pads, packed
//! messages, AND-triple lanes. With glibc's default policy a freed buffer of that size is
//! unmapped (above the dynamic `mmap` threshold) or trimmed from the top of its arena, and the
//! next chunk's buffer is page-faulted and zeroed by the kernel again. Measured on the OT
//! backend's ReLU (`perf record` of `cargo bench -p bunet-benches --bench nonlinear`, issue #20):
//! a fifth of both parties' CPU went to page faults, page clearing and unmapping.
//!
//! [`retain_freed_memory`] tells glibc to keep freed memory for reuse instead: buffers up to
//! [`MMAP_THRESHOLD`] come from the arenas, and the arenas are never trimmed, so a process's
//! heap stays at its high-water mark (which every protocol run reaches again at its next
//! chunk). Binaries call it once at start-up (`bunet`, the benches); a library never changes a
//! process-wide policy on its own. Elsewhere than glibc it does nothing.

/// Buffers below this size come from the heap arenas: glibc's largest allowed `mmap`
/// threshold (half its 64 MiB arena heap on 64-bit targets; `mallopt` refuses more).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at an arena's top that glibc keeps before trimming: 2 GiB (`mallopt` takes an
/// `int`), in effect never.
const TRIM_THRESHOLD: i32 = i32::MAX;

/// Extra memory requested whenever an arena grows, so that growing by many small steps costs
/// one system call.
const TOP_PAD: usize = 64 << 20;

/// Keeps freed heap memory for reuse (see the [module documentation](self)); returns whether
/// the policy applies (glibc), `false` where it does nothing.
pub fn retain_freed_memory() -> bool {
    imp::retain()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::{MMAP_THRESHOLD, TOP_PAD, TRIM_THRESHOLD};

    pub(super) fn retain() -> bool {
        let settings = [
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (libc::M_TOP_PAD, TOP_PAD as libc::c_int),
        ];
        settings.iter().all(|&(param, value)| {
            // SAFETY: `mallopt` only records allocator parameters; glibc serialises it with its
            // own allocation paths and rejects values out of range (returning 0).
            unsafe { libc::mallopt(param, value) == 1 }
        })
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn retain() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc accepts every setting (a rejected one would leave the default policy in place
    /// silently); the heap still serves and frees buffers around the threshold afterwards.
    #[test]
    fn glibc_accepts_the_policy_and_the_heap_still_works() {
        let applied = retain_freed_memory();
        assert_eq!(
            applied,
            cfg!(all(target_os = "linux", target_env = "gnu")),
            "policy applied where glibc is the allocator"
        );
        for len in [
            MMAP_THRESHOLD / 16 - 1,
            MMAP_THRESHOLD / 16 + 1,
            MMAP_THRESHOLD / 8,
        ] {
            let v = vec![0xA5u128; len];
            assert!(v.iter().all(|&x| x == 0xA5));
        }
    }
}
