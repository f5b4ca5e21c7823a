//! Example function: a gRPC echo for Zeroscale (`protocol: h2c`). It serves `zeroscale.echo.v1.Echo`
//! (unary `Say`, bidirectional streaming `Chat`) and `grpc.health.v1.Health` over plain HTTP/2 on
//! `$PORT`, and drains on SIGTERM: it stops accepting, reports `NOT_SERVING`, lets the calls in flight
//! finish and exits.

pub mod config;
pub mod server;
pub mod service;

pub use config::{Config, ConfigError};
pub use service::EchoService;

/// The protobuf messages, server and client generated from `proto/echo.proto` (package
/// `zeroscale.echo.v1`); `echo_client::EchoClient` is what callers use.
#[allow(missing_docs)] // generated code: the proto's comments become docs, the scaffolding has none
pub mod proto {
    tonic::include_proto!("zeroscale.echo.v1");
}
