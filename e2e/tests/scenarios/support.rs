//! What every scenario needs: the installed Zeroscale, a namespace of its own, Functions in it, and
//! requests to them through the activator with `Host: <fn>.<ns>.<domain>` (from the Function's URL).

use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use zeroscale_crds::Function;
use zeroscale_e2e::{
    ECHO_IMAGE, HttpError, HttpResponse, Installed, TestNamespace, client, deployment_replicas,
    ensure_installed, function_condition, http_request, wait_for,
};

/// How long a Function may take to become `Ready` (pods start in well under a second; the rest is
/// a busy 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Time limit of one request that may find its function at zero (a cold start).
pub const COLD_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One scenario's world: the install, a fresh namespace, and its Functions.
pub struct Scenario {
    /// The installed Zeroscale.
    pub installed: &'static Installed,
    /// The scenario's namespace (deleted when dropped).
    pub ns: TestNamespace,
    /// Functions in the namespace.
    pub functions: Api<Function>,
    /// Deployments in the namespace.
    pub deployments: Api<Deployment>,
}

impl Scenario {
    /// Installs Zeroscale if needed and creates a namespace named after the scenario.
    pub async fn new(prefix: &str) -> Self {
        let installed = ensure_installed().await;
        let client: Client = client().await;
        let ns = TestNamespace::new(&client, prefix).await;
        Self {
            installed,
            functions: Api::namespaced(client.clone(), ns.name()),
            deployments: Api::namespaced(client, ns.name()),
            ns,
        }
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        self.ns.name()
    }

    /// Creates (or updates) Function `name` with `spec`, server-side applied.
    pub async fn apply(&self, name: &str, spec: Value) {
        let doc = json!({
            "apiVersion": "zeroscale.dev/v1alpha1",
            "kind": "Function",
            "metadata": {"name": name},
            "spec": spec,
        });
        let params = PatchParams::apply("zeroscale-e2e").force();
        if let Err(e) = self.functions.patch(name, &params, &Patch::Apply(&doc)).await {
            panic!("cannot apply Function {name}: {e}");
        }
    }

    /// Deletes Function `name`.
    pub async fn delete(&self, name: &str) {
        if let Err(e) = self.functions.delete(name, &DeleteParams::default()).await {
            panic!("cannot delete Function {name}: {e}");
        }
    }

    /// The Function's condition `type_` as `(status, reason, message)`, at its current generation.
    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let f = self.functions.get_opt(name).await.ok().flatten()?;
        let status = f.status.as_ref()?;
        if status.observed_generation != f.metadata.generation {
            return None;
        }
        let c = function_condition(&f, type_)?;
        Some((c.status, c.reason, c.message))
    }

    /// Waits until the Function is `Ready=True` at its current generation.
    pub async fn wait_ready(&self, name: &str) {
        let what = format!("Function {}/{name} to be Ready", self.namespace());
        wait_for(READY_TIMEOUT, &what, || async {
            let (status, _, _) = self.condition(name, "Ready").await?;
            (status == "True").then_some(())
        })
        .await;
    }

    /// The host the activator routes to the Function: the host of its `status.url`.
    pub async fn host(&self, name: &str) -> String {
        let what = format!("Function {}/{name} to have a URL", self.namespace());
        let url = wait_for(READY_TIMEOUT, &what, || async {
            let f = self.functions.get_opt(name).await.ok().flatten()?;
            f.status?.url
        })
        .await;
        let host = url.strip_prefix("http://").unwrap_or(&url);
        host.trim_end_matches('/').to_string()
    }

    /// `GET <path>` (path and query) of the Function through the activator's external port.
    pub async fn get(&self, host: &str, path: &str, timeout: Duration) -> Result<HttpResponse, HttpError> {
        let url = format!("{}{path}", self.installed.activator_url);
        http_request(Method::GET, &url, &[("host", host)], "", timeout).await
    }

    /// Like [`Scenario::get`], returning the status and body, or panicking with the failure.
    pub async fn get_ok(&self, host: &str, path: &str, timeout: Duration) -> (u16, String) {
        match self.get(host, path, timeout).await {
            Ok(r) => (r.status, r.text()),
            Err(e) => panic!("GET {path} for {host} through the activator failed: {e}"),
        }
    }

    /// The Function Deployment's `(spec.replicas, status.readyReplicas)`.
    pub async fn replicas(&self, name: &str) -> Option<(i32, i32)> {
        deployment_replicas(&self.deployments, name).await
    }

    /// Waits (up to `timeout`) until the Deployment's `(desired, ready)` satisfies `ok`; returns how long
    /// that took and the replicas seen.
    pub async fn wait_replicas(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        ok: impl Fn(i32, i32) -> bool,
    ) -> (Duration, (i32, i32)) {
        let start = Instant::now();
        let what = format!("{}/{name}: {what}", self.namespace());
        let seen = wait_for(timeout, &what, || async {
            let (desired, ready) = self.replicas(name).await?;
            ok(desired, ready).then_some((desired, ready))
        })
        .await;
        (start.elapsed(), seen)
    }

    /// Waits until the Function's Deployment is at zero replicas with no pod ready.
    pub async fn wait_zero(&self, name: &str, timeout: Duration) -> Duration {
        self.wait_replicas(name, "zero replicas", timeout, |d, r| d == 0 && r == 0)
            .await
            .0
    }
}

/// The `spec` of an echo Function that starts at zero, with `extra` merged over it (objects merged
/// key by key, so `{"scale": {"max": 3}}` keeps `initial: 0`).
pub fn echo_spec(extra: Value) -> Value {
    let mut spec = json!({
        "image": ECHO_IMAGE,
        "scale": {"initial": 0, "window": "6s"},
    });
    merge(&mut spec, extra);
    spec
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                merge(base.entry(k).or_insert(Value::Null), v);
            }
        }
        (base, over) => *base = over,
    }
}

/// The `pod` an echo response names (empty when the body is not echo's JSON).
pub fn echo_pod(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["pod"].as_str().map(str::to_string))
        .unwrap_or_default()
}
