//! The ninja-shaped graph of issue 8: N tasks in layers of width
//! `max(4, isqrt(N))`, each task after the tasks in the same column and the
//! next column of the layer above (about two edges a task), every task
//! running `true`. Written as `pipeline.stagecraft`, `build.ninja` and a
//! `Makefile`, byte for byte as the reference script writes them
//! (checked once by hand for N = 1,000 and 10,000).

use std::fmt::Write as _;

use super::Task;

/// Each task's dependencies, ascending.
pub(crate) fn dependencies(n: usize) -> Vec<Vec<usize>> {
    let width = n.isqrt().max(4);
    (0..n)
        .map(|i| {
            let (layer, column) = (i / width, i % width);
            if layer == 0 {
                return Vec::new();
            }
            let base = (layer - 1) * width;
            let mut deps = vec![base + column, base + (column + 1) % width];
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect()
}

/// The model, as the frontend bench's checks want it: ids `t0`, `t1`, ….
pub(crate) fn tasks(deps: &[Vec<usize>]) -> Vec<Task> {
    deps.iter()
        .enumerate()
        .map(|(i, deps)| Task {
            id: format!("t{i}"),
            file: format!("t{i}"),
            deps: deps.clone(),
        })
        .collect()
}

fn names(ids: impl IntoIterator<Item = usize>) -> String {
    let mut out = String::new();
    for (n, id) in ids.into_iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        let _ = write!(out, "t{id}");
    }
    out
}

/// Tasks no other task waits for.
fn sinks(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut used = vec![false; deps.len()];
    for &dep in deps.iter().flatten() {
        used[dep] = true;
    }
    (0..deps.len()).filter(|&i| !used[i]).collect()
}

pub(crate) fn pipeline(deps: &[Vec<usize>]) -> String {
    let mut out = String::from("pipeline bench\n\nenv bench {\n  level = \"1\"\n}\n\n");
    for (i, d) in deps.iter().enumerate() {
        let _ = writeln!(out, "phase t{i} {{");
        if !d.is_empty() {
            let list: Vec<String> = d.iter().map(|x| format!("t{x}")).collect();
            let _ = writeln!(out, "  after {}", list.join(", "));
        }
        out.push_str("  run \"true\"\n}\n");
    }
    out.push_str("\nworkflow deploy {\n");
    for start in (0..deps.len()).step_by(16) {
        let _ = writeln!(out, "  {}", names(start..deps.len().min(start + 16)));
    }
    out.push_str("}\n");
    out
}

pub(crate) fn ninja(deps: &[Vec<usize>]) -> String {
    let mut out = String::from("rule run\n  command = true\n\n");
    for (i, d) in deps.iter().enumerate() {
        if d.is_empty() {
            let _ = writeln!(out, "build t{i}: run");
        } else {
            let _ = writeln!(out, "build t{i}: run | {}", names(d.iter().copied()));
        }
    }
    let _ = writeln!(out, "build all: phony {}\ndefault all", names(sinks(deps)));
    out
}

pub(crate) fn makefile(deps: &[Vec<usize>]) -> String {
    let mut out = format!(".PHONY: all {}\nall: {}\n\n", names(0..deps.len()), names(sinks(deps)));
    for (i, d) in deps.iter().enumerate() {
        let _ = write!(out, "t{i}: {}\n\t@true;\n", names(d.iter().copied()));
    }
    out
}
