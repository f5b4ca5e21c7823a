//! Image → executable mapping (pure: no IO besides reading the mapping file in [`ImageMap::load`]).
//!
//! There is no container runtime: an "image" names an executable on this machine.
//! 1. An entry of the mapping file (`<image>[:tag] = <executable>`) wins; an entry with a tag matches
//!    only that tag, one without matches every tag.
//! 2. Otherwise `zeroscale/<x>[:tag]` runs `zeroscale-<x>` from the binary directory (the Cargo target
//!    dir's `debug/`, or `--bin-dir`); the tag `release` alone picks the release directory instead (the
//!    target dir's `release/`, or `--release-bin-dir`), so an install can run optimised builds.
//! 3. Anything else is unmapped: the container waits with `ErrImagePull`, then `ImagePullBackOff`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Errors of the image mapping.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No rule maps the image.
    #[error("image {0:?} is not mapped to an executable (see docs/local-cluster.md, image mapping)")]
    Unmapped(String),
    /// The image is mapped but the executable is not there (not built yet?).
    #[error("image {image:?} maps to {path} which does not exist (build it: `make build`)")]
    Missing {
        /// The image.
        image: String,
        /// The executable it maps to.
        path: String,
    },
    /// The mapping file could not be read.
    #[error("cannot read image map {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A line of the mapping file is not `<image> = <executable>`.
    #[error("image map line {line}: expected `<image>[:tag] = <executable>`")]
    Syntax {
        /// The 1-based line number.
        line: usize,
    },
}

/// The mapping from image references to executables.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    entries: HashMap<String, PathBuf>,
    bin_dir: PathBuf,
    release_dir: PathBuf,
}

/// The tag that selects release builds under the built-in rule.
pub const RELEASE_TAG: &str = "release";

/// Splits `repo[:tag][@digest]` into the repository and the tag (if any). A `:` before the last `/`
/// belongs to a registry host (`localhost:5000/x`), not to a tag.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split_once('@').map(|(r, _)| r).unwrap_or(image);
    let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&without_digest[..at], Some(&without_digest[at + 1..]))
        }
        None => (without_digest, None),
    }
}

impl ImageMap {
    /// A map with only the built-in rule, resolving `zeroscale/<x>` in `bin_dir` and
    /// `zeroscale/<x>:release` in `release_dir`.
    pub fn new(bin_dir: impl Into<PathBuf>, release_dir: impl Into<PathBuf>) -> Self {
        Self {
            entries: HashMap::new(),
            bin_dir: bin_dir.into(),
            release_dir: release_dir.into(),
        }
    }

    /// Adds the entries of a mapping file's text; relative executables are resolved against `base`.
    pub fn parse_into(&mut self, text: &str, base: &Path) -> Result<(), ImageError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once('#').map(|(l, _)| l).unwrap_or(raw).trim();
            if line.is_empty() {
                continue;
            }
            let (image, exe) = line.split_once('=').ok_or(ImageError::Syntax { line: i + 1 })?;
            let (image, exe) = (image.trim(), exe.trim());
            if image.is_empty() || exe.is_empty() {
                return Err(ImageError::Syntax { line: i + 1 });
            }
            let exe = PathBuf::from(exe);
            let exe = if exe.is_absolute() { exe } else { base.join(exe) };
            self.entries.insert(image.to_string(), exe);
        }
        Ok(())
    }

    /// Reads a mapping file; relative executables are resolved against `base` (the repository root).
    pub fn load(&mut self, file: &Path, base: &Path) -> Result<(), ImageError> {
        let text = std::fs::read_to_string(file).map_err(|source| ImageError::Read {
            path: file.display().to_string(),
            source,
        })?;
        self.parse_into(&text, base)
    }

    /// The executable an image maps to, without checking that it exists.
    pub fn lookup(&self, image: &str) -> Option<PathBuf> {
        let (repo, tag) = split_image(image);
        if let Some(tag) = tag
            && let Some(exe) = self.entries.get(&format!("{repo}:{tag}"))
        {
            return Some(exe.clone());
        }
        if let Some(exe) = self.entries.get(repo) {
            return Some(exe.clone());
        }
        let name = repo.strip_prefix("docker.io/").unwrap_or(repo);
        let x = name.strip_prefix("zeroscale/")?;
        if x.is_empty() || x.contains('/') {
            return None;
        }
        let dir = if tag == Some(RELEASE_TAG) {
            &self.release_dir
        } else {
            &self.bin_dir
        };
        Some(dir.join(format!("zeroscale-{x}")))
    }

    /// The executable an image maps to; errors when unmapped or when the executable does not exist.
    pub fn resolve(&self, image: &str) -> Result<PathBuf, ImageError> {
        let exe = self
            .lookup(image)
            .ok_or_else(|| ImageError::Unmapped(image.to_string()))?;
        if !exe.is_file() {
            return Err(ImageError::Missing {
                image: image.to_string(),
                path: exe.display().to_string(),
            });
        }
        Ok(exe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ImageMap {
        let mut m = ImageMap::new("/t/debug", "/t/release");
        m.parse_into(
            "# c\nkubectl = .zeroscale/bin/kubectl\nfoo:v2 = /opt/foo2 # two\nfoo=/opt/foo\n",
            Path::new("/r"),
        )
        .unwrap();
        m
    }

    #[test]
    fn builtin_rule_maps_zeroscale_images_to_workspace_binaries() {
        let m = map();
        assert_eq!(m.lookup("zeroscale/echo"), Some("/t/debug/zeroscale-echo".into()));
        assert_eq!(
            m.lookup("zeroscale/echo:latest"),
            Some("/t/debug/zeroscale-echo".into())
        );
        assert_eq!(
            m.lookup("docker.io/zeroscale/activator:v1@sha256:ab"),
            Some("/t/debug/zeroscale-activator".into())
        );
        assert_eq!(m.lookup("zeroscale/a/b"), None);
    }

    #[test]
    fn the_release_tag_alone_maps_to_release_builds() {
        let m = map();
        assert_eq!(
            m.lookup("zeroscale/operator:release"),
            Some("/t/release/zeroscale-operator".into())
        );
        assert_eq!(
            m.lookup("docker.io/zeroscale/echo:release@sha256:ab"),
            Some("/t/release/zeroscale-echo".into())
        );
        // Every other tag, and no tag, stays on the debug builds.
        assert_eq!(
            m.lookup("zeroscale/operator:releases"),
            Some("/t/debug/zeroscale-operator".into())
        );
        assert_eq!(
            m.lookup("zeroscale/operator:Release"),
            Some("/t/debug/zeroscale-operator".into())
        );
        // A mapping-file entry still wins over the built-in rule.
        let mut m = map();
        m.parse_into("zeroscale/echo:release = /opt/echo", Path::new("/r"))
            .unwrap();
        assert_eq!(m.lookup("zeroscale/echo:release"), Some("/opt/echo".into()));
    }

    #[test]
    fn file_entries_win_and_tags_are_specific() {
        let m = map();
        assert_eq!(m.lookup("kubectl:1.34"), Some("/r/.zeroscale/bin/kubectl".into()));
        assert_eq!(m.lookup("foo:v2"), Some("/opt/foo2".into()));
        assert_eq!(m.lookup("foo:v3"), Some("/opt/foo".into()));
    }

    #[test]
    fn other_images_are_unmapped() {
        let m = map();
        assert!(matches!(m.resolve("nginx:1.27"), Err(ImageError::Unmapped(_))));
        assert!(matches!(
            m.resolve("zeroscale/echo"),
            Err(ImageError::Missing { .. })
        ));
    }

    #[test]
    fn registry_ports_are_not_tags() {
        assert_eq!(split_image("localhost:5000/x"), ("localhost:5000/x", None));
        assert_eq!(split_image("localhost:5000/x:t"), ("localhost:5000/x", Some("t")));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let mut m = ImageMap::new("/b", "/r");
        let err = m.parse_into("a = b\nnonsense\n", Path::new("/")).unwrap_err();
        assert!(matches!(err, ImageError::Syntax { line: 2 }));
    }
}
