//! Keeps [`AsyncFunctions`] in step with the Functions' `spec.async`, from a watch on Functions. A
//! `spec.async` the API server should have refused is logged and the defaults apply.

use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::Function;
use zeroscale_eventing::{
    async_invocation::{AsyncFunctions, AsyncPolicy},
    delivery::DeliveryDefaults,
};

/// The policy of `function`; the defaults (logged) when its `spec.async` does not resolve.
pub fn policy_of(function: &Function, defaults: &DeliveryDefaults) -> AsyncPolicy {
    let namespace = function.namespace().unwrap_or_default();
    let spec = function.spec.async_.clone().unwrap_or_default();
    AsyncPolicy::from_spec(&namespace, &spec, function.spec.timeout_seconds, defaults).unwrap_or_else(|error| {
        tracing::warn!(%namespace, function = %function.name_any(), %error, "unusable spec.async; the defaults apply");
        AsyncPolicy::default()
    })
}

/// Watches every Function and records its policy in `functions` until the stream ends.
pub async fn watch(client: kube::Client, functions: AsyncFunctions, defaults: DeliveryDefaults) {
    let stream = watcher(Api::<Function>::all(client), watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(f) | watcher::Event::InitApply(f)) => {
                let key = FunctionKey::new(f.namespace().unwrap_or_default(), f.name_any());
                functions.set(key, policy_of(&f, &defaults));
            }
            Ok(watcher::Event::Delete(f)) => {
                functions.remove(&FunctionKey::new(f.namespace().unwrap_or_default(), f.name_any()));
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(error) => tracing::debug!(%error, "function watch for async policies interrupted"),
        }
    }
}
