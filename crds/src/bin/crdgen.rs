//! Writes the CRD YAML generated from the Rust types, or checks that the committed YAML is current.
//!
//! `crdgen --write` writes `crds/yaml/<plural>.<group>.yaml` and the copy in `charts/zeroscale/crds/`;
//! `crdgen --check` exits with status 1 and names every stale file when they differ from the types.
//! Without a flag it prints the YAML to stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zeroscale_crds::crd;

/// Directories, relative to the repository root, that hold a copy of every CRD.
const OUTPUT_DIRS: &[&str] = &["crds/yaml", "charts/zeroscale/crds"];

/// The repository this run belongs to. `cargo run` sets `CARGO_MANIFEST_DIR` when it starts the
/// binary, and that is preferred to the directory baked in at compile time: clones at different paths
/// that share one target directory (`.ci/run` keeps it in the machine's cache) can reuse one build of
/// crdgen, which would otherwise check or write the files of the clone that compiled it.
fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn rendered() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    crd::all()
        .into_iter()
        .map(|g| Ok((g.file_name, crd::to_yaml(&g.crd)?)))
        .collect()
}

fn write(root: &Path, files: &[(&str, String)]) -> std::io::Result<()> {
    for dir in OUTPUT_DIRS {
        std::fs::create_dir_all(root.join(dir))?;
        for (name, yaml) in files {
            let path = root.join(dir).join(name);
            std::fs::write(&path, yaml)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn check(root: &Path, files: &[(&str, String)]) -> Vec<String> {
    let mut stale = Vec::new();
    for dir in OUTPUT_DIRS {
        for (name, yaml) in files {
            let path = root.join(dir).join(name);
            match std::fs::read_to_string(&path) {
                Ok(current) if &current == yaml => {}
                Ok(_) => stale.push(format!("{} differs from the Rust types", path.display())),
                Err(e) => stale.push(format!("{}: {e}", path.display())),
            }
        }
    }
    stale
}

fn main() -> ExitCode {
    let files = match rendered() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("crdgen: cannot render the CRDs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = repo_root();
    match std::env::args().nth(1).as_deref() {
        Some("--write") => match write(&root, &files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("crdgen: cannot write the CRDs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("--check") => {
            let stale = check(&root, &files);
            if stale.is_empty() {
                println!("crdgen: CRD YAML is up to date");
                return ExitCode::SUCCESS;
            }
            for s in &stale {
                eprintln!("crdgen: {s}");
            }
            eprintln!("crdgen: run `make generate` and commit the result");
            ExitCode::FAILURE
        }
        None => {
            for (_, yaml) in &files {
                print!("---\n{yaml}");
            }
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("crdgen: unknown argument {other:?}; use --write, --check or nothing (print)");
            ExitCode::from(2)
        }
    }
}
