//! Objects the operator's unit tests share, apart from the modules under test so that a test of
//! `validate` and a test of `build` do not import each other's test modules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use zeroscale_crds::{Function, FunctionSpec};

/// A Function as read from the API server: with a namespace, uid and generation.
pub(crate) fn function(name: &str) -> Function {
    let spec: FunctionSpec =
        serde_json::from_value(serde_json::json!({ "image": "zeroscale/echo" })).expect("minimal spec");
    Function {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}
