use tracing_subscriber::{fmt, prelude::*};

use super::*;
use crate::testing::Captured;

/// The JSON line logged by `body`, with span fields formatted by ours (`ours`) or by
/// `tracing-subscriber`'s own `JsonFields`; the timestamp is left out.
fn logged(ours: bool, body: impl FnOnce()) -> serde_json::Value {
    let lines = Captured::default();
    let layer = fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .without_time()
        .with_writer(lines.clone());
    if ours {
        let subscriber = tracing_subscriber::registry().with(layer.fmt_fields(JsonSpanFields));
        tracing::subscriber::with_default(subscriber, body);
    } else {
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, body);
    }
    let text = lines.text();
    let line = text.lines().last().expect("a line was logged");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[derive(Debug)]
#[allow(dead_code)] // read through its `Debug` output
struct Shape {
    name: &'static str,
}

/// A request's span, and one with a field of every kind a span can record.
fn spans() {
    let request = tracing::info_span!(
        "request",
        request_id = "req-1",
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        span_id = "e3da79e664801412"
    );
    let _request = request.enter();
    let kinds = tracing::info_span!(
        "kinds",
        text = "quote \" backslash \\ newline \n tab \t bell \u{7} é ∑",
        debug = ?Shape { name: "x\"y" },
        display = %"shown",
        negative = -42i64,
        big = u64::MAX,
        yes = true,
        float = 1.5f64,
        nan = f64::NAN,
        r#type = "raw",
        later = tracing::field::Empty,
        twice = 1u64,
    );
    let _kinds = kinds.enter();
    kinds.record("later", "recorded after");
    kinds.record("twice", 2u64);
    tracing::info!(status = 502, "request failed");
}

#[test]
fn a_line_carries_the_same_spans_as_with_json_fields() {
    let ours = logged(true, spans);
    let theirs = logged(false, spans);
    assert_eq!(ours, theirs);
    // And what the two agree on is what was recorded.
    assert_eq!(ours["spans"][0]["request_id"], "req-1");
    assert_eq!(ours["spans"][0]["name"], "request");
    let kinds = &ours["span"];
    assert_eq!(
        kinds["text"],
        "quote \" backslash \\ newline \n tab \t bell \u{7} é ∑"
    );
    assert_eq!(kinds["debug"], "Shape { name: \"x\\\"y\" }");
    assert_eq!(kinds["negative"], -42);
    assert_eq!(kinds["big"], u64::MAX);
    assert_eq!(kinds["yes"], true);
    assert_eq!(kinds["float"], 1.5);
    assert!(kinds["nan"].is_null());
    assert_eq!(kinds["type"], "raw");
    assert_eq!(kinds["later"], "recorded after");
    assert_eq!(kinds["twice"], 2);
}

#[test]
fn fields_recorded_later_on_a_span_that_had_none_make_one_object() {
    let line = logged(true, || {
        let span = tracing::info_span!("late", id = tracing::field::Empty);
        let _entered = span.enter();
        span.record("id", "x");
        tracing::info!("inside");
    });
    assert_eq!(line["span"], serde_json::json!({"id": "x", "name": "late"}));
}

#[test]
fn a_span_without_fields_is_an_empty_object() {
    let line = logged(true, || {
        let _span = tracing::info_span!("bare").entered();
        tracing::info!("inside");
    });
    assert_eq!(line["span"], serde_json::json!({"name": "bare"}));
}

/// Every byte that needs escaping, at every place in and around the first words, among plain ASCII
/// and multi-byte characters: the word-at-a-time skip must stop before each, and the text is the one
/// `serde_json` writes (direct lines, `JsonLine`, must match the formatter's byte for byte).
#[test]
fn any_string_is_written_as_serde_json_writes_it() {
    let specials = [
        '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}',
    ];
    for filler in ["a", "é", "∑x", "𝄞"] {
        for len in 0..24 {
            for at in 0..=len {
                for special in specials {
                    let mut value: String = filler.repeat(len);
                    let at = value.char_indices().nth(at).map_or(value.len(), |(i, _)| i);
                    value.insert(at, special);
                    let mut out = String::new();
                    string(&mut out, &value);
                    let back: String = serde_json::from_str(&out)
                        .unwrap_or_else(|e| panic!("{e}: {value:?} written as {out}"));
                    assert_eq!(back, value);
                    assert_eq!(out, serde_json::to_string(&value).unwrap_or_default());
                }
            }
        }
    }
}
