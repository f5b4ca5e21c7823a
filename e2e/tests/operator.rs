//! End-to-end tests of the operator (issue #3) on the local cluster.
//!
//! Each test gets its own namespace and its own operator process (`--watch-namespace` and a Lease in
//! that namespace, see `zeroscale_e2e::Operator`), so the tests run in parallel without seeing each
//! other's Functions.

#[path = "operator/failures.rs"]
mod failures;
#[path = "operator/lifecycle.rs"]
mod lifecycle;
#[path = "operator/support.rs"]
mod support;
#[path = "operator/takeover.rs"]
mod takeover;
