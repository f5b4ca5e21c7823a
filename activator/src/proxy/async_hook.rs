//! The hook where an async invocation leaves the request pipeline: its function is resolved from the
//! host like any request's (404 when there is none), then [`crate::invoke_async`] stores it.

use http::{Request, Response};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::revision::split_revision_name;

use super::Proxy;
use crate::{body::ResponseBody, client_body::ClientBody, error::ProxyError, rewrite::host_of};

impl Proxy {
    /// Adds asynchronous invocation: requests with `Prefer: respond-async` go to `invoker`.
    pub fn with_async(mut self, invoker: std::sync::Arc<crate::invoke_async::AsyncInvoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    pub(super) async fn handle_async(&self, request: Request<ClientBody>) -> Response<ResponseBody> {
        let Some(invoker) = &self.invoker else {
            return ProxyError::UnknownFunction(String::new()).into_response();
        };
        let function = match host_of(&request) {
            Ok(host) => self
                .domains
                .route_key(host)
                .ok()
                .flatten()
                .and_then(|key| self.table.lookup(&key))
                // The table answers with one of the Function's revisions; an invocation is of the
                // Function (its policy, its consumer), and its revision is picked when it runs.
                .map(|f| {
                    let key = f.key();
                    FunctionKey::new(&key.namespace, split_revision_name(&key.name).0)
                })
                .ok_or_else(|| ProxyError::UnknownFunction(host.to_string())),
            Err(error) => Err(error.into()),
        };
        match function {
            Ok(function) => invoker.accept(function, request).await,
            Err(error) => {
                self.metrics.count_unrouted(error.status().as_u16());
                error.into_response()
            }
        }
    }
}
