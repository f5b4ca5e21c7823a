//! The slice of the kubelet API the API server needs for `kubectl logs`: HTTPS on the node address,
//! serving certificate signed by the cluster CA, clients must present a certificate from the same CA
//! (the API server's kubelet client certificate). Exec, attach and port-forward are not served.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto::ring};

use crate::log_tail::{parse_path, parse_query, tail_offset};

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Errors setting up the kubelet API.
#[derive(Debug, thiserror::Error)]
pub enum KubeletApiError {
    /// A certificate or key could not be read.
    #[error("tls material {path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The TLS configuration was refused.
    #[error("tls config: {0}")]
    Tls(String),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

type Body = BoxBody<Bytes, Infallible>;

fn tls_config(cert: &Path, key: &Path, ca: &Path) -> Result<ServerConfig, KubeletApiError> {
    let pem = |path: &Path, e: &dyn std::fmt::Display| KubeletApiError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, &e))?;
    let mut roots = RootCertStore::empty();
    for ca_cert in CertificateDer::pem_file_iter(ca).map_err(|e| pem(ca, &e))? {
        roots
            .add(ca_cert.map_err(|e| pem(ca, &e))?)
            .map_err(|e| pem(ca, &e))?;
    }
    let provider = Arc::new(ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| KubeletApiError::Tls(e.to_string()))?;
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| KubeletApiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| KubeletApiError::Tls(e.to_string()))
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
}

async fn container_logs(logs_dir: &Path, req: &Request<Incoming>) -> Response<Body> {
    let Some((ns, pod, container)) = parse_path(req.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let query = parse_query(req.uri().query());
    let path = logs_dir.join(format!("{ns}_{pod}_{container}.log"));
    let Ok(data) = tokio::fs::read(&path).await else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("no log for container {container} of pod {ns}/{pod}\n"),
        );
    };
    let start = query.tail_lines.map(|n| tail_offset(&data, n)).unwrap_or(0);
    let mut first = Bytes::from(data).slice(start..);
    if let Some(limit) = query.limit_bytes {
        first = first.slice(..limit.min(first.len()));
    }
    if !query.follow {
        return Response::new(Full::new(first).boxed());
    }
    // Follow: send what is there, then whatever is appended, until the client goes away (the body
    // is dropped) or the log file is removed with its pod.
    let offset = start + first.len();
    let state = (Some(first), path, offset as u64);
    let stream = futures::stream::unfold(state, |(pending, path, mut offset)| async move {
        if let Some(chunk) = pending {
            return Some((Ok::<_, Infallible>(Frame::data(chunk)), (None, path, offset)));
        }
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            let mut file = tokio::fs::File::open(&path).await.ok()?;
            let len = file.metadata().await.ok()?.len();
            if len > offset {
                file.seek(std::io::SeekFrom::Start(offset)).await.ok()?;
                let mut buf = Vec::with_capacity(usize::try_from(len - offset).unwrap_or(0));
                file.read_to_end(&mut buf).await.ok()?;
                offset += buf.len() as u64;
                return Some((Ok(Frame::data(Bytes::from(buf))), (None, path, offset)));
            }
        }
    });
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

async fn handle(logs_dir: Arc<PathBuf>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok"),
        p if p.starts_with("/containerLogs/") => container_logs(&logs_dir, &req).await,
        _ => text(
            StatusCode::NOT_IMPLEMENTED,
            "this node agent serves only /containerLogs and /healthz\n",
        ),
    }
}

/// Serves the kubelet API on `addr` forever.
pub async fn serve(
    addr: String,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    logs_dir: PathBuf,
) -> Result<(), KubeletApiError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&cert, &key, &ca)?));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| KubeletApiError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let logs_dir = Arc::new(logs_dir);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, logs_dir) = (acceptor.clone(), logs_dir.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let logs_dir = logs_dir.clone();
                async move { Ok::<_, Infallible>(handle(logs_dir, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
