//! Our CRDs as generated (`crds/yaml/`), installed by tests that run components as host processes
//! (the chart is not installed for them).

use std::time::Duration;

use crate::{
    apply_yaml_cluster,
    kubectl::{KubectlError, try_kubectl},
    wait::wait_for,
};

/// The Function CRD as generated.
pub const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");
/// The Trigger CRD as generated.
pub const TRIGGER_CRD: &str = include_str!("../../crds/yaml/triggers.zeroscale.dev.yaml");

/// Waits up to 60 s until `crd` (e.g. `crd/functions.zeroscale.dev`) is served.
async fn wait_established(crd: &str) {
    let args = ["wait", "--for=condition=Established", "--timeout=60s", crd];
    wait_for(Duration::from_secs(60), &format!("{crd} established"), || async {
        match try_kubectl(&args, None).await {
            Ok(_) => Some(()),
            // A CRD created a moment ago has no `status.conditions` yet, and `kubectl wait` fails at
            // once on that instead of waiting ("accessor error: <nil>"): ask again.
            Err(KubectlError::Failed { stderr, .. }) if stderr.contains("accessor error") => None,
            Err(e) => panic!("{e}"),
        }
    })
    .await;
}

/// Installs the Function CRD (idempotent) and waits until it is served.
pub async fn install_function_crd() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    wait_established("crd/functions.zeroscale.dev").await;
}

/// Installs the Function and Trigger CRDs (idempotent) and waits until both are served.
pub async fn install_eventing_crds() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    apply_yaml_cluster(TRIGGER_CRD).await;
    for crd in ["crd/functions.zeroscale.dev", "crd/triggers.zeroscale.dev"] {
        wait_established(crd).await;
    }
}
