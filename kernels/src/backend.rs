//! The choice of SIMD backend, made once from the CPU's features.

/// An instruction-set backend for the kernels.
///
/// A plan or context detects the best available backend once, at construction, and stores it;
/// hot loops never detect again. Tests build plans with each available backend explicitly and
/// compare them with [`Backend::Scalar`], the portable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable Rust, always compiled and always tested.
    Scalar,
    /// x86-64 AVX2 (256-bit integer vectors).
    Avx2,
    /// x86-64 AVX-512 F/BW/DQ/VL (and IFMA52 / VAES where an operation profits).
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl Backend {
    /// Every backend, best first.
    pub const ALL: [Backend; 4] = [
        Backend::Avx512,
        Backend::Avx2,
        Backend::Neon,
        Backend::Scalar,
    ];

    /// The best backend this CPU runs, or [`Backend::Scalar`] when the environment variable
    /// `BUNET_FORCE_SCALAR` is set to `1`.
    pub fn detect() -> Backend {
        if std::env::var_os("BUNET_FORCE_SCALAR").is_some_and(|v| v == "1") {
            return Backend::Scalar;
        }
        Self::ALL
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The backends this CPU runs, best first (always ends with [`Backend::Scalar`]).
    pub fn available() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// Whether the AVX-512 IFMA52 extension (52-bit integer multiply-add) is present.
    pub fn has_ifma() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            Backend::Avx512.is_available() && std::arch::is_x86_feature_detected!("avx512ifma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

impl Backend {
    /// Whether the AVX2 backend may use FMA (fused multiply-add on 256-bit doubles): AVX2 is
    /// available and the CPU reports FMA (every AVX2 CPU so far has it, but the features are
    /// distinct and are checked apart).
    pub fn has_fma() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            Backend::Avx2.is_available() && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        })
    }
}

/// The CPU model as `lscpu` names it (`model name` of `/proc/cpuinfo`), where that file has
/// one: what every benchmark and report prints beside its figures.
pub fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    })
}
