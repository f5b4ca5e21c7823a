use std::time::Duration;

use prometheus_client::{encoding::text::encode, registry::Registry};
use zeroscale_common::signals::FunctionKey;

use super::*;
use crate::metering::resources::ResourceDefaults;

/// The registry's text after one 2.5 ms invocation through the meter of the routing entry `name`.
fn metered(name: &str) -> String {
    let mut registry = Registry::default();
    let families = MeterFamilies::register(&mut registry);
    let key = FunctionKey::new("shop", name);
    let mut meter = FunctionMeter::new(&key, families, ResourceDefaults::default().into(), false);
    meter.record(None, "ok", false, Some(Duration::from_micros(2_500)));
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode");
    text
}

#[test]
fn a_revision_entry_is_labelled_with_its_function_and_revision() {
    let text = metered("cart-0123456789");
    assert!(
        text.contains(r#"namespace="shop",function="cart",revision="cart-0123456789""#),
        "{text}"
    );
    assert!(!text.contains(r#"function="cart-0123456789""#), "{text}");
}

#[test]
fn a_function_without_revisions_has_an_empty_revision_label() {
    let text = metered("cart");
    assert!(
        text.contains(r#"namespace="shop",function="cart",revision="""#),
        "{text}"
    );
}
