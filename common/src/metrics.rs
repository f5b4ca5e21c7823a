//! Metric label sets shared by the components, so a function is labelled the same way everywhere.

use prometheus_client::encoding::EncodeLabelSet;

use crate::signals::FunctionKey;

/// `namespace` and `function` labels of a metric about one function (SPEC §8).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// Namespace of the Function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
}

impl From<&FunctionKey> for FunctionLabels {
    fn from(key: &FunctionKey) -> Self {
        Self {
            namespace: key.namespace.clone(),
            function: key.name.clone(),
        }
    }
}
