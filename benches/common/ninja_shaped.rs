//! The pipeline of the ninja comparison: `n` phases `t0…` in layers of
//! width `max(4, isqrt(n))`, each after two phases of the layer before (the
//! one in its column and the next, wrapping), each running `true`, in one
//! env and one workflow listing every phase sixteen to a line.

use std::fmt::Write as _;

/// The phases `t{i}` waits for.
pub(crate) fn ninja_deps(i: usize, width: usize) -> Vec<usize> {
    let (layer, column) = (i / width, i % width);
    if layer == 0 {
        return Vec::new();
    }
    let base = (layer - 1) * width;
    let mut deps = vec![base + column, base + (column + 1) % width];
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// The pipeline text of `n` phases.
pub(crate) fn ninja_shaped(n: usize) -> String {
    let width = n.isqrt().max(4);
    let mut out = String::from("pipeline bench\n\nenv bench {\n  level = \"1\"\n}\n\n");
    for i in 0..n {
        let _ = writeln!(out, "phase t{i} {{");
        let deps = ninja_deps(i, width);
        if !deps.is_empty() {
            let names: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
            let _ = writeln!(out, "  after {}", names.join(", "));
        }
        out.push_str("  run \"true\"\n}\n");
    }
    out.push_str("\nworkflow deploy {\n");
    for start in (0..n).step_by(16) {
        let names: Vec<String> = (start..n.min(start + 16)).map(|j| format!("t{j}")).collect();
        let _ = writeln!(out, "  {}", names.join(" "));
    }
    out.push_str("}\n");
    out
}
