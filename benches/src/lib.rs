//! Shared helpers of the criterion benches (`cargo bench` at the workspace root runs them all).

/// The line every bench prints first: which CPU backend the kernels chose.
pub fn backend_banner() -> String {
    format!(
        "bunet kernels backend: {} (IFMA52: {})",
        bunet_kernels::Backend::detect(),
        bunet_kernels::Backend::has_ifma()
    )
}
