//! The activator's own HTTP/1.1 server for the requests most clients send: HTTP/1.1, no upgrade, no
//! `Expect`, and a body that is empty or small enough to keep whole and follows its head within the
//! header-read timeout (`h1/request.rs`). It reads each
//! head with `httparse` into a request sharing the read buffer, sends it through the pipeline, and
//! writes the answer's head and body with as few writes as the body allows (`h1/response.rs`).
//!
//! Why: hyper's server is general (any body, any version, upgrades, `100-continue`), and on a hop that
//! only relays, that generality was a tenth of a proxied request's instructions: its dispatch state
//! machine, a boxed header-read timer per request, and encoding through its own buffers.
//!
//! The first request it cannot serve hands the connection to hyper for the rest of its life, with the
//! bytes not yet served replayed ([`Prefixed`]), so every other request still gets hyper's handling.
//! What hyper guaranteed holds here too: a head must arrive within the header-read timeout, heads
//! are limited in size and fields, pipelined requests are answered in order, `Connection: close` is
//! honoured, and a drain lets the request in progress finish and closes idle connections at once.

mod request;
mod response;

use std::{future::poll_fn, io, net::SocketAddr, pin::Pin, sync::Arc, task::Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Response};
use http_body::{Body, Frame};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{Instant, Sleep, sleep_until},
};

use super::{Listener, head::Prefixed, serve_http1, served::serve_request};
use crate::{
    proxy::Early,
    upstream::h1::{FieldSpans, digits, last_chunk},
};
use request::Parsed;
use response::{Framing, PassesFields};

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Response bytes gathered before they are written even though the body has more ready.
const WRITE_AT: usize = 16 * 1024;
/// Capacity the answer buffer keeps between answers.
const OUT_KEPT: usize = 4 * 1024;

/// One client connection, and what it keeps between requests.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet served: the next request's head, or part of it.
    buf: BytesMut,
    /// Response bytes not yet written.
    out: Vec<u8>,
    /// Scratch space for reading heads.
    spans: FieldSpans,
}

/// Why a connection ends after a response.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("writing to the client: {0}")]
    Io(#[from] io::Error),
    #[error("the response body failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the response body was not the length its head gave")]
    Length,
}

/// Serves the connection from `bytes`, read from `stream` already (a whole first head), answering
/// the first request with `early` (its admission reached from the head). Hands the connection to
/// hyper at the first request it does not serve itself.
pub(super) async fn serve(
    shared: &Listener,
    stream: TcpStream,
    bytes: Vec<u8>,
    remote: SocketAddr,
    mut early: Option<Early>,
) {
    let limits = shared.limits;
    // Copied once per connection: the first head was read into a buffer of exactly its size.
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(bytes.len()));
    buf.extend_from_slice(&bytes);
    drop(bytes);
    let mut conn = Conn {
        stream,
        buf,
        out: Vec::new(),
        spans: FieldSpans::new(),
    };
    // One timer for the connection, set again for each head awaited; `awaiting` once it runs for
    // the head at the start of the buffer.
    let mut timer = std::pin::pin!(sleep_until(Instant::now()));
    let mut awaiting = false;
    loop {
        let parsed = request::parse(
            &mut conn.buf,
            limits.max_headers,
            limits.max_header_bytes,
            &mut conn.spans,
        );
        let (request, close) = match parsed {
            Parsed::Request { request, close } => (request, close),
            Parsed::Unsuited => return hand_over(shared, conn, remote, early).await,
            waiting @ (Parsed::Partial | Parsed::Body) => {
                if !awaiting {
                    // The head's timeout runs from the end of the previous answer, as hyper's does.
                    timer.as_mut().reset(Instant::now() + limits.header_read_timeout);
                    awaiting = true;
                }
                // A head whose small body is still on its way is a request in progress: a drain
                // lets it arrive.
                let body = matches!(waiting, Parsed::Body);
                match read_more(shared, &mut conn, body, timer.as_mut()).await {
                    Ok(Read::More) => continue,
                    // The body did not follow its head within the timeout: hyper reads it as it
                    // comes, as it did before this server took plain requests.
                    Ok(Read::Expired) if body => {
                        return hand_over(shared, conn, remote, early).await;
                    }
                    // Closed, too slow or draining.
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                        return;
                    }
                }
            }
        };
        awaiting = false;
        let to_head = request.method() == Method::HEAD;
        let proxy = Arc::clone(&shared.proxy);
        let response = serve_request(proxy, shared.port, remote, request, early.take()).await;
        // Draining: the request in progress was answered; the connection closes after it.
        let close = close || shared.stop.is_cancelled();
        match write_response(&mut conn, response, to_head, close).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
                return;
            }
        }
    }
}

/// Hands the connection to hyper for the rest of its life, the bytes not yet served first.
async fn hand_over(shared: &Listener, conn: Conn, remote: SocketAddr, early: Option<Early>) {
    let Conn { stream, buf, .. } = conn;
    // Boxed: only a connection handed over pays for hyper's connection state.
    Box::pin(serve_http1(
        shared,
        Prefixed::new(buf.into(), stream),
        remote,
        early,
    ))
    .await;
}

/// What waiting for more of a request gave.
enum Read {
    /// More bytes are in the buffer.
    More,
    /// The client closed the connection.
    Closed,
    /// The header-read timer fired.
    Expired,
    /// The server drains, and the connection was between requests.
    Draining,
}

/// Reads more of a request into the buffer: a head, or the rest of a small body (`body`), which a
/// drain does not interrupt. The buffer grows by what arrives, not by what a head announces: a
/// client that announces a body and sends none holds no more memory than one that sends half a head.
async fn read_more(
    shared: &Listener,
    conn: &mut Conn,
    body: bool,
    timer: Pin<&mut Sleep>,
) -> io::Result<Read> {
    conn.buf.reserve(READ_CHUNK);
    let between_requests = !body;
    // `read_buf` (tokio's `poll_read`) takes a read shorter than the room given as the socket
    // drained, so the next head is awaited without a `recv` that would only say "not yet".
    // Biased: bytes already there are taken without arming the timer.
    tokio::select! {
        biased;
        read = conn.stream.read_buf(&mut conn.buf) => Ok(if read? > 0 { Read::More } else { Read::Closed }),
        () = timer => Ok(Read::Expired),
        () = shared.stop.cancelled(), if between_requests => Ok(Read::Draining),
    }
}

/// Writes `response`; `Ok(true)` when the connection can carry another request.
async fn write_response<B>(
    conn: &mut Conn,
    response: Response<B>,
    to_head: bool,
    close: bool,
) -> Result<bool, WriteError>
where
    B: Body<Data = Bytes> + PassesFields + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, mut body) = response.into_parts();
    conn.out.clear();
    let written = response::write_head(
        parts.status,
        &parts.headers,
        body.passed_fields(),
        &body.size_hint(),
        to_head,
        close,
        &mut conn.out,
    );
    drop(parts);
    let mut sent = 0u64;
    let mut trailers = None;
    if written.framing != Framing::Empty {
        while let Some(frame) = next_frame(conn, &mut body).await? {
            match frame.into_data() {
                Ok(data) => add_data(conn, written.framing, &mut sent, data).await?,
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
    }
    match written.framing {
        Framing::Length(n) if n != sent => return Err(WriteError::Length),
        Framing::Chunked => last_chunk(trailers.as_ref(), &mut conn.out),
        _ => {}
    }
    conn.stream.write_all(&conn.out).await?;
    conn.out.clear();
    // A large answer may have grown the buffer to about twice `WRITE_AT`: an idle keep-alive
    // connection keeps no more than a typical answer needs.
    conn.out.shrink_to(OUT_KEPT);
    Ok(!written.close)
}

/// The body's next frame; what was gathered is written first whenever the body has nothing ready.
async fn next_frame<B>(conn: &mut Conn, body: &mut B) -> Result<Option<Frame<Bytes>>, WriteError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let polled = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending if !conn.out.is_empty() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
        })
        .await;
        match polled {
            Some(frame) => return frame.transpose().map_err(|e| WriteError::Body(e.into())),
            None => {
                conn.stream.write_all(&conn.out).await?;
                conn.out.clear();
            }
        }
    }
}

/// Adds a data frame to what goes out, in the response's framing. A large frame is written as it
/// is, after what was gathered (one `writev`), rather than copied.
async fn add_data(conn: &mut Conn, framing: Framing, sent: &mut u64, data: Bytes) -> Result<(), WriteError> {
    if data.is_empty() {
        return Ok(());
    }
    *sent += data.len() as u64;
    let chunked = match framing {
        Framing::Length(n) if *sent > n => return Err(WriteError::Length),
        Framing::Chunked => true,
        _ => false,
    };
    if chunked {
        conn.out
            .extend_from_slice(digits(data.len() as u64, 16, &mut [0; 20]));
        conn.out.extend_from_slice(b"\r\n");
    }
    if data.len() >= WRITE_AT {
        let mut both = Buf::chain(&conn.out[..], &data[..]);
        conn.stream.write_all_buf(&mut both).await?;
        conn.out.clear();
    } else {
        conn.out.extend_from_slice(&data);
    }
    if chunked {
        conn.out.extend_from_slice(b"\r\n");
    }
    if conn.out.len() >= WRITE_AT {
        conn.stream.write_all(&conn.out).await?;
        conn.out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use tokio::net::TcpListener;

    type Frames = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, io::Error>>>>;

    impl<S> PassesFields for StreamBody<S> {}

    fn frames(sizes: &[usize]) -> (Frames, Vec<u8>) {
        let data: Vec<Bytes> = sizes
            .iter()
            .map(|&n| Bytes::from(vec![b'a' + (n % 26) as u8; n]))
            .collect();
        let whole = data.concat();
        let frames = data.into_iter().map(|d| Ok(Frame::data(d))).collect::<Vec<_>>();
        (StreamBody::new(futures::stream::iter(frames)), whole)
    }

    /// Writes `response` on a loopback connection; returns the outcome and what the client read.
    async fn written(response: Response<Frames>) -> (Result<bool, WriteError>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let mut conn = Conn {
            stream,
            buf: BytesMut::new(),
            out: Vec::new(),
            spans: FieldSpans::new(),
        };
        let outcome = write_response(&mut conn, response, false, false).await;
        drop(conn);
        let mut read = Vec::new();
        client.read_to_end(&mut read).await.expect("read");
        (outcome, read)
    }

    /// The data of a chunked body.
    fn dechunk(mut body: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let line = body.iter().position(|&b| b == b'\r').expect("size line");
            let size =
                usize::from_str_radix(std::str::from_utf8(&body[..line]).expect("hex"), 16).expect("size");
            body = &body[line + 2..];
            if size == 0 {
                assert_eq!(body, b"\r\n", "the last chunk ends the body");
                return data;
            }
            data.extend_from_slice(&body[..size]);
            assert_eq!(&body[size..size + 2], b"\r\n");
            body = &body[size + 2..];
        }
    }

    #[tokio::test]
    async fn small_and_large_frames_go_out_whole_and_in_order() {
        let (body, whole) = frames(&[5, 40 * 1024, 3, 20 * 1024, 7]);
        let (outcome, read) = written(Response::new(body)).await;
        assert!(matches!(outcome, Ok(true)), "{outcome:?}");
        let end = read.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        let head = String::from_utf8_lossy(&read[..end]).into_owned();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(dechunk(&read[end..]), whole);
    }

    #[tokio::test]
    async fn a_body_longer_or_shorter_than_its_length_ends_the_connection() {
        for (declared, sizes) in [
            ("10", &[4usize, 20 * 1024][..]),
            ("10", &[4][..]),
            ("64", &[64][..]),
        ] {
            let (body, _) = frames(sizes);
            let mut response = Response::new(body);
            response.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_static(declared),
            );
            let (outcome, _) = written(response).await;
            let exact = sizes.iter().sum::<usize>().to_string() == declared;
            assert_eq!(outcome.is_ok(), exact, "{declared} {sizes:?}: {outcome:?}");
        }
    }
}
