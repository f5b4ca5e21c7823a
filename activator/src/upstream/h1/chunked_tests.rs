use bytes::BytesMut;

use super::*;

/// The data, the trailers and what is left after the body.
type Decoded = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

/// Decodes `input` fed in pieces of `piece` bytes.
fn decode(input: &[u8], piece: usize) -> Result<Decoded, ChunkError> {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut data = Vec::new();
    loop {
        match decoder.step(&mut buf)? {
            Step::Data(bytes) => data.extend_from_slice(&bytes),
            Step::Trailers(trailers) => return Ok((data, Some(trailers), buf.to_vec())),
            Step::End => return Ok((data, None, buf.to_vec())),
            Step::More => {
                assert!(fed < input.len(), "ran out of input in {:?}", decoder.state);
                let end = (fed + piece).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

#[test]
fn chunks_come_out_whole_however_the_bytes_arrive() {
    let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\nA \r\n0123456789\r\n0\r\n\r\nNEXT";
    for piece in [1, 2, 3, 7, body.len()] {
        let (data, trailers, rest) = decode(body, piece).unwrap_or_else(|e| panic!("{piece}: {e}"));
        assert_eq!(data, b"hello, world0123456789", "piece {piece}");
        assert!(trailers.is_none());
        // Only what was fed past the end stays (whole input at once: the next response's bytes).
        assert!(b"NEXT".starts_with(&rest), "piece {piece}: {rest:?}");
    }
}

#[test]
fn trailers_end_the_body() {
    let body = b"3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nX-Sum: 9\r\n\r\n";
    for piece in [1, 4, body.len()] {
        let (data, trailers, _) = decode(body, piece).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data, b"abc");
        let trailers = trailers.unwrap_or_default();
        assert_eq!(trailers.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]));
        assert_eq!(trailers.get("x-sum").map(|v| v.as_bytes()), Some(&b"9"[..]));
    }
}

#[test]
fn bare_line_feeds_and_upper_case_hex_are_read() {
    let (data, _, _) = decode(b"B\nhello world\n0\n\n", 3).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(data, b"hello world");
}

#[test]
fn malformed_bodies_are_errors() {
    for body in [
        &b"zz\r\n"[..],
        b"\r\n",
        b"5\r\nhello!!\r\n",
        b"1234567890abcdef0\r\n",
        b"5 x\r\nhello\r\n",
    ] {
        assert!(
            decode(body, body.len()).is_err(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let long = [b'0'; MAX_LINE + 8];
    assert!(decode(&long, long.len()).is_err());
}

#[test]
fn a_decoder_at_the_end_stays_there() {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::from(&b"0\r\n\r\n"[..]);
    assert_eq!(decoder.step(&mut buf), Ok(Step::End));
    assert_eq!(decoder.state, State::Done);
    assert_eq!(decoder.step(&mut buf), Ok(Step::End));
}
