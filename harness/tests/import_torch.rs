//! The import round trip (issue 17): a random seed-shaped UNet in PyTorch, saved with
//! `torch.save`, converted by `tools/import_torch.py` and run by `bunet infer`, gives PyTorch's
//! logits within 1e-4 (softmax head with average pool, sigmoid head with max pool). The work is
//! done by `tools/test_import.py`; this test runs it where Python has torch, numpy and
//! safetensors, and otherwise skips with the reason printed (CI has no torch).

use std::path::Path;
use std::process::Command;

#[test]
fn pytorch_checkpoint_imports_and_infers_to_pytorch_logits() {
    let probe = Command::new("python3")
        .args(["-c", "import torch, numpy, safetensors"])
        .output();
    match probe {
        Err(e) => {
            eprintln!("skipped: python3 is not available ({e})");
            return;
        }
        Ok(o) if !o.status.success() => {
            let why = String::from_utf8_lossy(&o.stderr);
            let last = why.lines().last().unwrap_or("import failed");
            eprintln!("skipped: python3 lacks torch, numpy or safetensors ({last})");
            return;
        }
        Ok(_) => {}
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/test_import.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--bunet", env!("CARGO_BIN_EXE_bunet")])
        .output()
        .expect("run tools/test_import.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("within 1e-4"), "{stdout}");
}
