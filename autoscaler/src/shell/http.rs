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

/// A pooled HTTP/1 client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl HttpClient {
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
