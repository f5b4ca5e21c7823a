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
//! | `GET /ids` with `ECHO_RECORD_IDS=1` | JSON `pod`, `requests`, `ids`: the `ce-id`s received (module [`ids`]) |
//! | anything else | JSON with `method`, `path`, `query`, `version`, `headers`, `body`, `pod`, `function`, `in_flight`, `status` |
//!
//! Query controls: `?sleep=<ms>` waits before answering, `?status=<code>` sets the status,
//! `?stream=<n>` streams `n` chunks `data: <i>\n\n` 50 ms apart, `?overlap=fail` (or env
//! `ECHO_SINGLE=1` for every request) answers `500 overlap detected` when another request is in flight.
//! `?alloc=<size>` (`200Mi`; bytes or `Ki`/`Mi`/`Gi`, at most `4Gi`) allocates and touches that much
//! memory while the request is handled (the answer's `allocated`), so a memory limit really bites;
//! `?write=<absolute path>` tries to write and remove a file there (200, or 500 naming the error, such as
//! `Read-only file system`); a bad value of either is a 400 naming it. Nothing else writes to the
//! filesystem. `ECHO_SLEEP_MS=<ms>` is the default `?sleep` of every echoed request (a slow subscriber);
//! `ECHO_START_DELAY_MS=<ms>` delays listening (a slow-starting function);
//! `ECHO_ALLOC_AT_START=<size>` allocates and holds memory before listening (a function that cannot
//! start within its limit); `ECHO_FAIL_PERCENT=<0-100>` answers `500 injected failure` to that share of
//! the echoed requests, spread evenly (a bad revision for the canary, module [`fail`]). `pod` is
//! `$POD_NAME` or `$HOSTNAME`; `function` is `$ZEROSCALE_FUNCTION`.
//!
//! It follows Zeroscale's shutdown contract (`docs/api.md`): it keeps serving through the pod's `preStop`
//! sleep (it sees nothing of it), and on SIGTERM stops accepting connections, closes idle kept-alive
//! ones, finishes the requests in flight and exits.

pub mod alloc;
pub mod call;
pub mod config;
pub mod fail;
pub mod handler;
pub mod ids;
pub mod inflight;
pub mod options;
pub mod server;
pub mod ws;

pub use config::Config;
pub use handler::Echo;
