//! Example function: echoes requests, sleeps, streams, WebSockets, overlap detection.
//!
//! Runs as image `zeroscale/echo` on the local cluster. It listens on `$PORT` (default 8080) on all
//! addresses, speaking HTTP/1.1 and cleartext HTTP/2 (h2c, detected per connection):
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` |
//! | `/ws` with a WebSocket upgrade | echoes every text and binary message |
//! | `GET /call?url=<http-url>` | calls the URL from inside the pod; JSON `url`, `status`, `body` of the answer (502 when the call fails) |
//! | anything else | JSON with `method`, `path`, `query`, `version`, `headers`, `body`, `pod`, `function`, `in_flight`, `status` |
//!
//! Query controls: `?sleep=<ms>` waits before answering, `?status=<code>` sets the status,
//! `?stream=<n>` streams `n` chunks `data: <i>\n\n` 50 ms apart, `?overlap=fail` (or env
//! `ECHO_SINGLE=1` for every request) answers `500 overlap detected` when another request is in flight.
//! `ECHO_START_DELAY_MS=<ms>` delays listening (a slow-starting function). `pod` is `$POD_NAME` or
//! `$HOSTNAME`; `function` is `$ZEROSCALE_FUNCTION`. On SIGTERM it stops accepting connections and
//! finishes the requests in flight.

pub mod call;
pub mod config;
pub mod handler;
pub mod inflight;
pub mod options;
pub mod server;
pub mod ws;

pub use config::Config;
pub use handler::Echo;
