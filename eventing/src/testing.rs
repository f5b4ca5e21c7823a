//! Test helpers: a scripted loopback HTTP subscriber and a virtual clock.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};

use crate::delivery::{Clock, Target};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: "",
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the subscriber received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Script {
    /// Answers per path, in order; the last one repeats.
    answers: HashMap<String, VecDeque<Reply>>,
    received: Vec<Received>,
}

/// A loopback HTTP server answering from a script, per path.
#[derive(Clone)]
pub struct Subscriber {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Subscriber {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Tests run on paused time: with Nagle a small write could wait for the peer's delayed ACK, a
        // real-time kernel timer the virtual clock would jump past.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, script }
    }

    /// Answers requests to `path` with `replies`, in order, repeating the last.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.script
            .lock()
            .unwrap()
            .answers
            .insert(path.to_string(), replies.into());
    }

    pub fn target(&self, path: &str) -> Target {
        Target::uri(&format!("http://{}{}", self.addr, path)).unwrap()
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.script
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            path: path.clone(),
            headers,
            body,
        });
        let queue = script.answers.entry(path).or_default();
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    }
    .unwrap_or_else(|| Reply::status(202));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A clock whose sleeps return at once, advancing virtual time and recording the wait.
#[derive(Clone)]
pub struct VirtualClock {
    state: Arc<Mutex<(SystemTime, Vec<Duration>)>>,
}

impl VirtualClock {
    pub fn at(now: SystemTime) -> Self {
        Self {
            state: Arc::new(Mutex::new((now, Vec::new()))),
        }
    }
    pub fn waits(&self) -> Vec<Duration> {
        self.state.lock().unwrap().1.clone()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> SystemTime {
        self.state.lock().unwrap().0
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        let mut state = self.state.lock().unwrap();
        state.0 += duration;
        state.1.push(duration);
        std::future::ready(())
    }
}
