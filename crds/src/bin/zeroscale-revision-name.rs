//! Prints the name of the revision a Function manifest makes, so CI can know it before applying.
//!
//! `zeroscale-revision-name < function.yaml` reads one or more YAML documents from stdin and prints,
//! for every `Function` among them, `<function>-<hash>` on its own line (see `docs/revisions.md`).
//! Other kinds are skipped; a Function without a name or with an invalid spec is an error (status 1).

use std::io::Read;
use std::process::ExitCode;

use serde::Deserialize;
use zeroscale_crds::FunctionSpec;
use zeroscale_crds::revision::revision_name;

/// What the tool needs of a manifest.
#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    spec: Option<serde_yaml::Value>,
}

#[derive(Default, Deserialize)]
struct Metadata {
    name: Option<String>,
}

fn names(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(document).map_err(|e| format!("document {index}: {e}"))?;
        if value.is_null() {
            continue;
        }
        let manifest: Manifest =
            serde_yaml::from_value(value).map_err(|e| format!("document {index}: {e}"))?;
        if manifest.kind != "Function" {
            continue;
        }
        let name = manifest
            .metadata
            .name
            .ok_or_else(|| format!("document {index}: the Function has no metadata.name"))?;
        let spec: FunctionSpec = serde_yaml::from_value(manifest.spec.unwrap_or_default())
            .map_err(|e| format!("Function {name}: invalid spec: {e}"))?;
        out.push(revision_name(&name, &spec).map_err(|e| format!("Function {name}: {e}"))?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("zeroscale-revision-name: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    match names(&text) {
        Ok(names) if names.is_empty() => {
            eprintln!("zeroscale-revision-name: no Function in the input");
            ExitCode::FAILURE
        }
        Ok(names) => {
            for name in names {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zeroscale-revision-name: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_one_name_per_function_and_skips_other_kinds() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n---\n\
                    apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: { name: hello }\n\
                    spec: { image: echo:1 }\n";
        let got = names(text).expect("names");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("hello-"), "{got:?}");
        let spec: FunctionSpec = serde_yaml::from_str("image: echo:1").expect("spec");
        assert_eq!(got[0], revision_name("hello", &spec).expect("name"));
    }

    #[test]
    fn a_function_without_a_name_or_image_is_an_error() {
        let nameless = "kind: Function\nspec: { image: echo:1 }\n";
        assert!(names(nameless).unwrap_err().contains("metadata.name"));
        let imageless = "kind: Function\nmetadata: { name: f }\nspec: { port: 80 }\n";
        assert!(names(imageless).unwrap_err().contains("invalid spec"));
    }
}
