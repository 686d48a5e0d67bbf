//! Keeps the crate's layering (docs/ARCHITECTURE.md, "Layers"): every module imports only from
//! the layers below its own, so the data flows one way (SST-Map -> reader -> blocks -> merge ->
//! session -> API) and no two modules import each other.
//!
//! It reads the sources' `crate::` paths (outside test code) rather than trusting a list kept by
//! hand elsewhere; a new top-level module must be given a layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up; a module may use any module of a lower layer.
const LAYERS: &[&[&str]] = &[
    // Foundations: the FFI types (a leaf), errors, small OS helpers.
    &["contract", "error", "thread_attrs", "cpu_pressure"],
    // Reading: block formats, the reader (io_uring, pread) and the memory reads land in.
    &["block"],
    &["reader", "wrapped_fs"],
    // The SST-Map: which blocks of which files, in which sorted run, read in which chunks.
    &["sst_map"],
    // Merging the runs (native or BPF).
    &["merge"],
    // One compaction's session, then the same on a companion thread.
    &["compaction"],
    &["ahead"],
    // The configuration (typed values of the layers below), what is reported, and the API C++
    // calls.
    &["config"],
    &["report"],
    &["api"],
    // Shared by the test suites only.
    &["test_support"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer in tests/module_layers.rs"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/merge/bpf/session.rs` -> ["merge", "bpf", "session"]; `mod.rs` and `lib.rs` name their
/// folder.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file that builds into the library: test modules and comments left out.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        // By this crate's convention a `#[cfg(test)]` module closes the file.
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module paths (up to `depth` segments) named by `crate::a::b...` in `code`.
fn crate_paths(code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 {
            let prev = code.as_bytes()[i - 1];
            if prev.is_ascii_alphanumeric() || prev == b'_' {
                continue; // e.g. `$crate::`, `mycrate::`
            }
        }
        let rest = &code[i + "crate::".len()..];
        let mut path: Vec<String> = Vec::new();
        for seg in rest.split("::") {
            let ident: String = seg
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Modules are lower case; a type, a `{` group or the end of the path stops it.
            if !ident.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                break;
            }
            let whole = ident.len() == seg.len();
            path.push(ident);
            if !whole {
                break;
            }
        }
        if !path.is_empty() {
            out.insert(path);
        }
    }
    out
}

struct Crate {
    /// File module path -> the module paths it names.
    uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut uses = BTreeMap::new();
    for f in files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let module = module_path(&src, &f);
        let code = non_test_code(&std::fs::read_to_string(&f).unwrap());
        uses.insert(module, crate_paths(&code));
    }
    Crate { uses }
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let c = read_crate();
    let mut violations = Vec::new();
    for (module, uses) in &c.uses {
        let Some(top) = module.first() else {
            continue; // lib.rs declares the modules
        };
        let own = layer_of(top);
        for used in uses {
            let target = &used[0];
            if target == top {
                continue;
            }
            if layer_of(target) >= own {
                violations.push(format!(
                    "{} (layer {own}) uses crate::{} (layer {})",
                    module.join("::"),
                    used.join("::"),
                    layer_of(target)
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_two_modules_import_each_other() {
    // Within a top-level module too (e.g. merge::cursor and merge::held): the graph of files
    // must have no cycle.
    let c = read_crate();
    let files: Vec<&Vec<String>> = c.uses.keys().collect();
    // The file a path lands in: the longest file module path it starts with.
    let file_of = |path: &Vec<String>| -> Option<&Vec<String>> {
        files
            .iter()
            .copied()
            .filter(|f| !f.is_empty() && path.starts_with(f))
            .max_by_key(|f| f.len())
    };
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for (module, uses) in &c.uses {
        for used in uses {
            if let Some(to) = file_of(used) {
                // A module's own submodules (mod.rs declaring and re-exporting them) are not a
                // dependency cycle.
                if to != module && !to.starts_with(module) {
                    edges.entry(module).or_default().insert(to);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a Vec<String>,
        edges: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<String> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|m| *m == n).unwrap();
                let cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
                return Some(format!("{} -> {}", cycle.join(" -> "), n.join("::")));
            }
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for f in &files {
        if let Some(cycle) = visit(f, &edges, &mut state, &mut Vec::new()) {
            panic!("import cycle: {cycle}");
        }
    }
}

#[test]
fn the_checks_see_a_violation() {
    // A check that cannot fail is a defect: the parser must find an upward import and a cycle.
    let code = "use crate::api::ffi;\nfn f() { crate::merge::bpf::engine(); }\n// crate::ahead\n";
    let paths = crate_paths(&non_test_code(code));
    assert!(paths.contains(&vec!["api".to_owned(), "ffi".to_owned()]));
    assert!(paths.contains(&vec![
        "merge".to_owned(),
        "bpf".to_owned(),
        "engine".to_owned()
    ]));
    assert!(
        !paths.iter().any(|p| p[0] == "ahead"),
        "comments are not code"
    );
    assert!(layer_of("api") > layer_of("merge"));
    assert!(layer_of("contract") < layer_of("block"));
}
