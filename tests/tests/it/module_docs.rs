//! Every crate root and module file starts with a `//!` paragraph saying its role (STYLE.md,
//! rust-analyzer's habit). This test walks every `src/` tree of the workspace.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn crate_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for top in ["proto", "bus", "migrations", "api", "tests", "actors"] {
        let path = root.join(top);
        if path.join("Cargo.toml").exists() {
            dirs.push(path);
        } else if let Ok(entries) = fs::read_dir(&path) {
            for entry in entries.flatten() {
                if entry.path().join("Cargo.toml").exists() {
                    dirs.push(entry.path());
                }
            }
        }
    }
    dirs
}

#[test]
fn every_module_starts_with_a_doc_paragraph() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in crate_dirs(&root) {
        rust_files(&dir.join("src"), &mut files);
    }
    assert!(
        files.len() > 20,
        "the walk found the workspace sources ({})",
        files.len()
    );
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let first = text.lines().find(|line| !line.trim().is_empty());
            !first.is_some_and(|line| line.trim_start().starts_with("//!"))
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files do not start with a `//!` paragraph: {undocumented:?}"
    );
}
