//! A namespace per test, removed at the end.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::paths::{kubeconfig_path, kubectl_path};

/// A freshly created namespace with a unique name (`<prefix>-<8 hex digits>`), labelled
/// `zeroscale.dev/e2e=true`. Dropping it starts the namespace's deletion (in the background, so the test
/// does not wait for the namespace controller); call [`TestNamespace::delete`] to wait for it instead.
pub struct TestNamespace {
    name: String,
    client: kube::Client,
    deleted: bool,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace").field("name", &self.name).finish()
    }
}

impl TestNamespace {
    /// Creates the namespace and waits until its `default` ServiceAccount exists (pods need it).
    /// Panics when the cluster is not up or refuses.
    pub async fn new(client: &kube::Client, prefix: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{prefix}-{}", &suffix[..8]);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = match serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"zeroscale.dev/e2e": "true"}}
        })) {
            Ok(ns) => ns,
            Err(e) => panic!("namespace object: {e}"),
        };
        if let Err(e) = api.create(&PostParams::default(), &ns).await {
            panic!("cannot create namespace {name}: {e}");
        }
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), &name);
        let what = format!("the default ServiceAccount in namespace {name}");
        crate::wait_for(std::time::Duration::from_secs(30), &what, || async {
            sa.get_opt("default").await.ok().flatten()
        })
        .await;
        Self {
            name,
            client: client.clone(),
            deleted: false,
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace and waits (up to 60 s) until it is gone.
    pub async fn delete(mut self) {
        self.deleted = true;
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::foreground()).await;
        let what = format!("namespace {} to be deleted", self.name);
        crate::wait_for(std::time::Duration::from_secs(60), &what, || async {
            matches!(api.get_opt(&self.name).await, Ok(None)).then_some(())
        })
        .await;
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // Drop cannot await; kubectl with --wait=false returns as soon as deletion has started, so this
        // short blocking call works from any context, including a runtime that is shutting down.
        let _ = std::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
