//! A small HTTP/1 client for the readiness probe and the `scaled` CloudEvent sink.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Why an HTTP call failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("invalid url {0:?}")]
    Url(String),
    /// The request could not be built.
    #[error("cannot build request: {0}")]
    Request(#[from] http::Error),
    /// The server could not be reached.
    #[error("cannot reach server: {0}")]
    Connect(#[from] hyper_util::client::legacy::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// An HTTP/1 client, pooled unless made [`HttpClient::unpooled`].
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    /// A pooled client: connections are kept for the next request to the same host.
    fn default() -> Self {
        Self::with_idle_per_host(usize::MAX)
    }
}

impl HttpClient {
    /// A client that opens a connection for every request and closes it after: what a probe of a
    /// Service needs. A pooled connection stays with the one pod it reached, so a replica in its
    /// drain delay (answering 503 on `/ready` while the Service's other replicas serve) would fail
    /// every probe until it exits; a new connection is balanced over the ready replicas.
    pub fn unpooled() -> Self {
        Self::with_idle_per_host(0)
    }

    fn with_idle_per_host(max_idle: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(max_idle)
                .build(connector),
        }
    }

    async fn send(&self, request: Request<Full<Bytes>>, timeout: Duration) -> Result<StatusCode, HttpError> {
        let call = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Drain the body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            Ok(status)
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    fn uri(url: &str) -> Result<Uri, HttpError> {
        url.parse().map_err(|_| HttpError::Url(url.to_string()))
    }

    /// `GET url`, answering the status.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<StatusCode, HttpError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(Self::uri(url)?)
            .body(Full::default())?;
        self.send(request, timeout).await
    }

    /// `POST url` with `headers` and `body`, answering the status.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<StatusCode, HttpError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(Self::uri(url)?)
            .body(Full::new(Bytes::from(body)))?;
        request.headers_mut().extend(headers);
        self.send(request, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A server answering 200 to every request on a kept-alive connection; counts its connections.
    async fn server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/ready", listener.local_addr().expect("address"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    async fn connections_for_three_gets(client: HttpClient) -> usize {
        let (url, accepted) = server().await;
        for _ in 0..3 {
            let status = client.get(&url, Duration::from_secs(5)).await.expect("answer");
            assert_eq!(status, StatusCode::OK);
        }
        accepted.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_unpooled_client_connects_for_every_request() {
        assert_eq!(connections_for_three_gets(HttpClient::unpooled()).await, 3);
    }

    #[tokio::test]
    async fn the_pooled_client_keeps_its_connection() {
        assert_eq!(connections_for_three_gets(HttpClient::default()).await, 1);
    }
}
