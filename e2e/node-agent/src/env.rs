//! A container's environment, as the kubelet builds it (pure): service variables for the API server,
//! `envFrom`, `env` with ConfigMap/Secret keys and downward-API fields, and `$(VAR)` expansion.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

/// Errors while building an environment; they surface as `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A referenced ConfigMap does not exist.
    #[error("configmap {0:?} not found")]
    ConfigMap(String),
    /// A referenced Secret does not exist.
    #[error("secret {0:?} not found")]
    Secret(String),
    /// A referenced key does not exist.
    #[error("couldn't find key {key} in {kind} {name}")]
    Key {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A downward-API field this agent does not provide.
    #[error("unsupported fieldRef {0:?}")]
    Field(String),
}

/// ConfigMap and Secret data of the pod's namespace that its containers reference (absent: not found).
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    /// ConfigMap name → data.
    pub config_maps: HashMap<String, BTreeMap<String, String>>,
    /// Secret name → data (decoded, lossy UTF-8).
    pub secrets: HashMap<String, BTreeMap<String, String>>,
}

/// Facts about the pod and node the environment may refer to.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    /// The pod IP.
    pub pod_ip: String,
    /// The node's IP (the bridge address).
    pub host_ip: String,
    /// Where the API server listens for pods.
    pub api_host: String,
    /// The API server's port.
    pub api_port: u16,
    /// `$HOME`: the pod's own directory, so tools that read `~/.kube/config` or write caches do not
    /// touch the host user's files (and in-cluster clients use the pod's service account).
    pub home: String,
}

/// The ConfigMaps and Secrets a container references by name: `(config maps, secrets)`.
pub fn referenced_objects(container: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    for from in container.env_from.iter().flatten() {
        cms.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else { continue };
        cms.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
    }
    (cms, secrets)
}

/// Expands `$(NAME)` references to defined variables; `$$` is a literal `$`; undefined references stay
/// as written (Kubernetes semantics).
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[i..i + 3 + end]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_value(pod: &Pod, facts: &PodFacts, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |m: Option<&BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(m.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        _ => from_map(meta.labels.as_ref(), "metadata.labels['")
            .or_else(|| from_map(meta.annotations.as_ref(), "metadata.annotations['"))
            .ok_or_else(|| EnvError::Field(path.to_string()))?,
    };
    Ok(value)
}

fn var_value(
    var: &EnvVar,
    pod: &Pod,
    facts: &PodFacts,
    src: &EnvSources,
) -> Result<Option<String>, EnvError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional.unwrap_or(false);
        return match src.config_maps.get(&r.name) {
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMap(r.name.clone())),
            Some(data) => match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::Key {
                    kind: "ConfigMap",
                    name: r.name.clone(),
                    key: r.key.clone(),
                }),
            },
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional.unwrap_or(false);
        return match src.secrets.get(&r.name) {
            None if optional => Ok(None),
            None => Err(EnvError::Secret(r.name.clone())),
            Some(data) => match data.get(&r.key) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::Key {
                    kind: "Secret",
                    name: r.name.clone(),
                    key: r.key.clone(),
                }),
            },
        };
    }
    if let Some(f) = &from.field_ref {
        return field_value(pod, facts, &f.field_path).map(Some);
    }
    // resourceFieldRef: there are no cgroups here; report nothing rather than a made-up number.
    Ok(None)
}

/// The complete environment of `container`, in definition order (later entries win).
pub fn container_env(
    pod: &Pod,
    container: &Container,
    facts: &PodFacts,
    src: &EnvSources,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set = |k: String, v: String, order: &mut Vec<String>, vars: &mut HashMap<String, String>| {
        if vars.insert(k.clone(), v).is_none() {
            order.push(k);
        }
    };
    let api = format!("tcp://{}:{}", facts.api_host, facts.api_port);
    let api_port_var = format!("KUBERNETES_PORT_{}_TCP", facts.api_port);
    let base = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOME", facts.home.clone()),
        ("HOSTNAME", pod.metadata.name.clone().unwrap_or_default()),
        ("KUBERNETES_SERVICE_HOST", facts.api_host.clone()),
        ("KUBERNETES_SERVICE_PORT", facts.api_port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", facts.api_port.to_string()),
        ("KUBERNETES_PORT", api.clone()),
        (api_port_var.as_str(), api.clone()),
    ];
    for (k, v) in base {
        set(k.to_string(), v, &mut order, &mut vars);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, missing) = if let Some(r) = &from.config_map_ref {
            (
                src.config_maps.get(&r.name),
                r.optional.unwrap_or(false),
                EnvError::ConfigMap(r.name.clone()),
            )
        } else if let Some(r) = &from.secret_ref {
            (
                src.secrets.get(&r.name),
                r.optional.unwrap_or(false),
                EnvError::Secret(r.name.clone()),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    set(format!("{prefix}{k}"), v.clone(), &mut order, &mut vars);
                }
            }
            None if optional => {}
            None => return Err(missing),
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(v) = var_value(var, pod, facts, src)? {
            let v = if var.value_from.is_none() {
                expand(&v, &vars)
            } else {
                v
            };
            set(var.name.clone(), v, &mut order, &mut vars);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|k| vars.remove(&k).map(|v| (k, v)))
        .collect())
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
