//! Triggers from a YAML file (`--static-triggers`), for running the broker without a cluster (the
//! events bench, local experiments): one or more Trigger manifests, `---`-separated.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroscale_crds::trigger::Trigger;

/// The file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StaticTriggersError {
    /// The file cannot be read.
    #[error("cannot read static triggers {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A document is not a Trigger.
    #[error("static triggers {path}: document {index}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Position of the document, from 0.
        index: usize,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Parses every Trigger in `text`; empty documents are skipped.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Trigger>, StaticTriggersError> {
    let mut triggers = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(document).map_err(|source| StaticTriggersError::Parse {
                path: path.to_path_buf(),
                index,
                source,
            })?;
        if value.is_null() {
            continue;
        }
        let trigger = serde_yaml::from_value(value).map_err(|source| StaticTriggersError::Parse {
            path: path.to_path_buf(),
            index,
            source,
        })?;
        triggers.push(trigger);
    }
    Ok(triggers)
}

/// Reads and parses the file at `path`.
pub async fn load(path: &Path) -> Result<Vec<Trigger>, StaticTriggersError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| StaticTriggersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;

    #[test]
    fn reads_every_document_and_names_the_bad_one() {
        let text = "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {name: a, namespace: ns}\n\
                    spec: {source: {broker: {}}, subscriber: {function: f}}\n---\n---\n\
                    apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {name: b, namespace: ns}\n\
                    spec: {source: {broker: {}}, subscriber: {uri: 'http://x'}}\n";
        let triggers = parse(Path::new("t.yaml"), text).unwrap();
        let names: Vec<_> = triggers.iter().map(|t| t.name_any()).collect();
        assert_eq!(names, ["a", "b"]);
        let bad = parse(Path::new("t.yaml"), &format!("{text}---\nspec: 3\n")).unwrap_err();
        assert!(bad.to_string().contains("document 3"), "{bad}");
    }
}
