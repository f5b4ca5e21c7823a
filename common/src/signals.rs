//! The CloudEvents that carry signals from the activator to the autoscaler, and the platform's own
//! lifecycle events.
//!
//! Signals travel as CloudEvents 1.0 in HTTP binary mode: the attributes are `ce-*` headers and the
//! body is the JSON payload described by the types here. The payload format is versioned through the
//! `dataschema` attribute ([`SIGNALS_SCHEMA_V1`]); a receiver rejects a schema it does not know rather
//! than guessing. See `docs/signals.md`.

use std::time::SystemTime;

use cloudevents::{
    AttributesReader, Data, Event, EventBuilder, EventBuilderV10,
    binding::http::{Builder, Serializer, to_event},
    message::{BinaryDeserializer, Error as MessageError},
};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Type of the event the activator sends the moment a request finds a function with no ready pod.
pub const DEMAND_TYPE: &str = "dev.zeroscale.demand";
/// Type of the per-second concurrency report for one function from one activator replica.
pub const STATS_TYPE: &str = "dev.zeroscale.stats";
/// Type of the event the autoscaler publishes when it changes a function's scale.
pub const SCALED_TYPE: &str = "dev.zeroscale.function.scaled";
/// Type of the event published when a function becomes ready.
pub const READY_TYPE: &str = "dev.zeroscale.function.ready";
/// Type of the event published when a function fails to start.
pub const FAILED_TYPE: &str = "dev.zeroscale.function.failed";
/// Type of the event the operator publishes when the automated canary rolls a revision back.
pub const ROLLED_BACK_TYPE: &str = "dev.zeroscale.function.rolledback";
/// `dataschema` of version 1 of the signal payloads.
pub const SIGNALS_SCHEMA_V1: &str = "https://zeroscale.dev/schemas/signals/v1";

/// Errors while building, encoding or decoding a signal.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The CloudEvent could not be built, encoded or decoded.
    #[error("invalid cloudevent: {0}")]
    CloudEvent(#[from] MessageError),
    /// The event was built with an invalid attribute.
    #[error("invalid cloudevent attribute: {0}")]
    Builder(#[from] cloudevents::event::EventBuilderError),
    /// The event has a type other than the one expected.
    #[error("unexpected event type {found:?}, expected {expected:?}")]
    UnexpectedType {
        /// The type that was expected.
        expected: &'static str,
        /// The type the event has.
        found: String,
    },
    /// The event names a payload schema this build does not understand.
    #[error("unsupported dataschema {0:?}")]
    UnsupportedSchema(String),
    /// The event has no data or data that is not JSON of the expected shape.
    #[error("invalid event data: {0}")]
    Data(String),
    /// A header could not be represented.
    #[error("invalid header: {0}")]
    Header(String),
}

/// Identifies one function: its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FunctionKey {
    /// Namespace of the Function.
    pub namespace: String,
    /// Name of the Function.
    pub name: String,
}

impl FunctionKey {
    /// Builds a key from a namespace and a name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The CloudEvents `subject` for this function: `<namespace>/<name>`.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl std::fmt::Display for FunctionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Payload of [`DEMAND_TYPE`]: a request is waiting for a function that has no ready pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    /// The function that is wanted.
    pub function: FunctionKey,
    /// Identity of the activator replica that saw the demand (its pod name).
    pub activator: String,
    /// Requests waiting in this replica's queue for the function when the event was sent.
    pub queued: u64,
}

/// Payload of [`STATS_TYPE`]: what one activator replica saw of one function over one period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The function the report is about.
    pub function: FunctionKey,
    /// Identity of the reporting activator replica (its pod name).
    pub activator: String,
    /// Length of the reporting period in milliseconds (normally 1000).
    pub period_ms: u64,
    /// Time-weighted average of requests in the activator for this function (queued plus in flight)
    /// over the period: two requests of 500 ms each in a 1 s period give 1.0.
    pub concurrency: f64,
    /// Requests that arrived during the period.
    pub requests: u64,
    /// Requests queued (waiting for a pod or for pod capacity) at the end of the period.
    pub queued: u64,
}

/// Payload of [`SCALED_TYPE`]: the autoscaler changed a function's scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaled {
    /// The function that was scaled.
    pub function: FunctionKey,
    /// Replicas before the change.
    pub from: i32,
    /// Replicas after the change.
    pub to: i32,
    /// Why: `demand`, `stable`, `panic`, `scale-to-zero`, `bounds`.
    pub reason: String,
}

/// Builds an event of `ty` from `source` about `function`, with `payload` as JSON data.
pub fn build_event<T: Serialize>(
    ty: &str,
    source: &str,
    function: &FunctionKey,
    payload: &T,
) -> Result<Event, SignalError> {
    let data = serde_json::to_value(payload).map_err(|e| SignalError::Data(e.to_string()))?;
    let event = EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .ty(ty)
        .source(source)
        .subject(function.subject())
        .time(now_rfc3339())
        .data_with_schema("application/json", SIGNALS_SCHEMA_V1, data)
        .build()?;
    Ok(event)
}

fn now_rfc3339() -> String {
    jiff::Timestamp::try_from(SystemTime::now())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Decodes the payload of `event`, checking its type and schema first.
pub fn payload<T: DeserializeOwned>(event: &Event, expected: &'static str) -> Result<T, SignalError> {
    if event.ty() != expected {
        return Err(SignalError::UnexpectedType {
            expected,
            found: event.ty().to_string(),
        });
    }
    if let Some(schema) = event.dataschema()
        && schema.as_str() != SIGNALS_SCHEMA_V1
    {
        return Err(SignalError::UnsupportedSchema(schema.to_string()));
    }
    match event.data() {
        Some(Data::Json(v)) => {
            serde_json::from_value(v.clone()).map_err(|e| SignalError::Data(e.to_string()))
        }
        Some(Data::Binary(b)) => serde_json::from_slice(b).map_err(|e| SignalError::Data(e.to_string())),
        Some(Data::String(s)) => serde_json::from_str(s).map_err(|e| SignalError::Data(e.to_string())),
        None => Err(SignalError::Data("event has no data".to_string())),
    }
}

/// An event encoded for HTTP binary mode: `ce-*` headers (plus `content-type`) and the body.
#[derive(Debug, Default)]
pub struct BinaryMessage {
    /// Headers to send.
    pub headers: HeaderMap,
    /// Body to send.
    pub body: Vec<u8>,
}

struct MessageBuilder(BinaryMessage);

impl Builder<BinaryMessage> for MessageBuilder {
    fn header(&mut self, key: &str, value: HeaderValue) {
        if let Ok(name) = HeaderName::from_bytes(key.as_bytes()) {
            self.0.headers.insert(name, value);
        }
    }

    fn body(&mut self, bytes: Vec<u8>) -> cloudevents::message::Result<BinaryMessage> {
        self.0.body = bytes;
        Ok(std::mem::take(&mut self.0))
    }

    fn finish(&mut self) -> cloudevents::message::Result<BinaryMessage> {
        Ok(std::mem::take(&mut self.0))
    }
}

/// Encodes `event` in HTTP binary mode.
pub fn to_binary(event: Event) -> Result<BinaryMessage, SignalError> {
    let message = BinaryDeserializer::deserialize_binary(
        event,
        Serializer::new(MessageBuilder(BinaryMessage::default())),
    )?;
    Ok(message)
}

/// Decodes an event from HTTP headers and body (binary or structured mode).
pub fn from_http(headers: &HeaderMap, body: Vec<u8>) -> Result<Event, SignalError> {
    Ok(to_event(headers, body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_through_binary_mode() {
        let key = FunctionKey::new("default", "hello");
        let stats = Stats {
            function: key.clone(),
            activator: "activator-0".into(),
            period_ms: 1000,
            concurrency: 1.5,
            requests: 3,
            queued: 0,
        };
        let event = build_event(STATS_TYPE, "/zeroscale/activator/activator-0", &key, &stats).unwrap();
        let message = to_binary(event).unwrap();
        assert_eq!(message.headers["ce-type"], STATS_TYPE);
        assert_eq!(message.headers["ce-subject"], "default/hello");
        let decoded = from_http(&message.headers, message.body).unwrap();
        let back: Stats = payload(&decoded, STATS_TYPE).unwrap();
        assert_eq!(back, stats);
    }

    #[test]
    fn wrong_type_is_rejected() {
        let key = FunctionKey::new("default", "hello");
        let demand = Demand {
            function: key.clone(),
            activator: "a".into(),
            queued: 1,
        };
        let event = build_event(DEMAND_TYPE, "/a", &key, &demand).unwrap();
        let err = payload::<Stats>(&event, STATS_TYPE).unwrap_err();
        assert!(matches!(err, SignalError::UnexpectedType { .. }));
    }

    #[test]
    fn unknown_schema_is_rejected() {
        let key = FunctionKey::new("default", "hello");
        let demand = Demand {
            function: key.clone(),
            activator: "a".into(),
            queued: 1,
        };
        let event = EventBuilderV10::new()
            .id("1")
            .ty(DEMAND_TYPE)
            .source("/a")
            .data_with_schema(
                "application/json",
                "https://zeroscale.dev/schemas/signals/v9",
                serde_json::json!(demand),
            )
            .build()
            .unwrap();
        assert!(matches!(
            payload::<Demand>(&event, DEMAND_TYPE),
            Err(SignalError::UnsupportedSchema(_))
        ));
    }
}
