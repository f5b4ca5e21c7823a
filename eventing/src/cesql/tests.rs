//! Unit tests of CESQL beyond the conformance suite: positions in errors, the filter checks, operator
//! precedence and the edges of the evaluator.

use cloudevents::{Event, EventBuilder, EventBuilderV10};

use super::{CesqlError, ErrorKind, Expression, Value};

fn event() -> Event {
    EventBuilderV10::new()
        .id("1")
        .ty("order.created")
        .source("https://shop.example/orders")
        .extension("region", "eu-west")
        .extension("count", 7_i64)
        .extension("big", 10_000_000_000_i64)
        .extension("vip", true)
        .build()
        .expect("event")
}

fn value(text: &str) -> Value {
    let evaluation = Expression::parse(text).expect("parses").evaluate(&event());
    assert!(evaluation.errors.is_empty(), "{text}: {:?}", evaluation.errors);
    evaluation.value
}

fn error_kind(text: &str) -> ErrorKind {
    let evaluation = Expression::parse(text).expect("parses").evaluate(&event());
    evaluation.errors.first().expect("an error").kind
}

fn rejected(text: &str) -> String {
    Expression::compile_filter(text)
        .expect_err("rejected")
        .to_string()
}

#[test]
fn syntax_errors_give_the_line_column_and_what_was_expected() {
    assert_eq!(
        rejected("type = 'a' AND\n  (source LIKE 1)"),
        "syntax error: unexpected integer 1: expected a string literal (the pattern of LIKE) at 2:16"
    );
    assert_eq!(
        rejected("type = 'unterminated"),
        "syntax error: unterminated string: expected a closing ' at 1:8"
    );
    assert_eq!(
        rejected("ABC("),
        "syntax error: unexpected end of expression: expected an argument at 1:5"
    );
    assert_eq!(
        rejected("a = 1 )"),
        "syntax error: unexpected \")\": expected an operator or the end of the expression at 1:7"
    );
    assert_eq!(
        rejected("x NOT 1"),
        "syntax error: unexpected integer 1: expected LIKE or IN after NOT at 1:7"
    );
    assert_eq!(
        rejected("a IN ()"),
        "syntax error: unexpected \")\": expected an expression of the set of IN at 1:7"
    );
    assert_eq!(
        rejected("a = 2147483648"),
        "syntax error: integer literal 2147483648 is outside the 32-bit range at 1:5"
    );
    assert_eq!(rejected("a # b"), "syntax error: unexpected character '#' at 1:3");
    assert!(rejected(&format!("{}true{}", "(".repeat(80), ")".repeat(80))).contains("nests deeper than 64"));
    assert!(matches!(
        Expression::compile_filter("  "),
        Err(CesqlError::Length(2))
    ));
}

#[test]
fn filters_are_type_checked_before_use() {
    assert_eq!(
        rejected("NOPE(type)"),
        "type error: unknown function NOPE with 1 argument at 1:1"
    );
    assert_eq!(
        rejected("LEFT(type)"),
        "type error: unknown function LEFT with 1 argument at 1:1"
    );
    assert_eq!(
        rejected("count + 1"),
        "type error: a filter must be a Boolean expression, this one is Integer at 1:1"
    );
    assert!(rejected("'abc' + 1 > 0").starts_with("type error: cannot cast \"abc\" to Integer"));
    assert_eq!(
        rejected("NOT 10"),
        "type error: cannot use Integer 10 as a Boolean (write BOOL(x) to convert) at 1:5"
    );
    assert_eq!(
        rejected("NOT LENGTH(type)"),
        "type error: an Integer cannot be used as a Boolean (write BOOL(x) to convert) at 1:5"
    );
    assert!(rejected("vip AND (count + 1)").contains("at 1:10"));
    assert_eq!(
        rejected("vip AND type = 'a' OR region = 'x'"),
        "type error: AND, OR and XOR have equal precedence in CESQL and group left to right: add parentheses to say which comes first at 1:20"
    );
    for ok in [
        "vip",
        "(vip AND type = 'a') OR region = 'x'",
        "count = '7'",
        "1 IN (count, '2')",
        "EXISTS region",
    ] {
        Expression::compile_filter(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn attributes_keep_their_types_and_names_are_case_insensitive() {
    assert_eq!(value("count"), Value::Integer(7));
    assert_eq!(value("vip"), Value::Boolean(true));
    assert_eq!(value("big"), Value::String("10000000000".into()));
    assert_eq!(
        value("SOURCE"),
        Value::String("https://shop.example/orders".into())
    );
    assert_eq!(value("specversion"), Value::String("1.0".into()));
    assert_eq!(
        value("count * 2 = 14 and region like 'eu-%'"),
        Value::Boolean(true)
    );
}

#[test]
fn logic_operators_group_left_to_right() {
    // (false AND true) OR true; SQL's precedence would give the same here, the next one differs.
    assert_eq!(value("false AND true OR true"), Value::Boolean(true));
    // (true OR false) AND false.
    assert_eq!(value("true OR false AND false"), Value::Boolean(false));
    assert_eq!(value("1 + 2 * 3 = 7"), Value::Boolean(true));
    assert_eq!(value("10 - 4 - 3"), Value::Integer(3));
}

#[test]
fn arithmetic_overflow_and_division_are_math_errors() {
    assert_eq!(error_kind("2147483647 + 1 = 0"), ErrorKind::Math);
    assert_eq!(error_kind("-2147483648 / -1"), ErrorKind::Math);
    assert_eq!(error_kind("-(-2147483648)"), ErrorKind::Math);
    assert_eq!(error_kind("65536 * 65536"), ErrorKind::Math);
    assert_eq!(value("-7 % 3"), Value::Integer(-1));
    assert_eq!(value("7 / -2"), Value::Integer(-3));
}

#[test]
fn like_handles_wildcards_escapes_and_unicode() {
    assert_eq!(value("'héllo' LIKE 'h_llo'"), Value::Boolean(true));
    assert_eq!(value("'aXbXc' LIKE '%X%X%'"), Value::Boolean(true));
    assert_eq!(value("'abc' LIKE '%%%'"), Value::Boolean(true));
    assert_eq!(value("'' LIKE '%'"), Value::Boolean(true));
    assert_eq!(value("'a\\b' LIKE 'a\\b'"), Value::Boolean(true));
    assert_eq!(
        value("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaab' LIKE '%a%a%a%a%a%c'"),
        Value::Boolean(false)
    );
}

#[test]
fn a_filter_matches_only_true_without_errors() {
    let matches = |text: &str| Expression::compile_filter(text).expect("valid").matches(&event());
    assert!(matches("type = 'order.created' AND vip"));
    assert!(!matches("type = 'order.deleted'"));
    assert!(!matches("missing = 'x' OR true"));
    assert!(matches("true OR missing = 'x'"));
    assert!(!matches("NOT (missing = 'x')"));
    assert!(!matches("region"));
    assert!(matches("EXISTS region AND NOT EXISTS missing"));
}

#[test]
fn string_functions_count_characters() {
    assert_eq!(value("LENGTH('héllo')"), Value::Integer(5));
    assert_eq!(value("RIGHT('héllo', 3)"), Value::String("llo".into()));
    assert_eq!(value("SUBSTRING('héllo', -4, 2)"), Value::String("él".into()));
    assert_eq!(
        value("concat_ws('-', region, count, vip)"),
        Value::String("eu-west-7-true".into())
    );
    assert_eq!(value("IS_INT('+5') AND NOT IS_BOOL(1)"), Value::Boolean(true));
    assert_eq!(
        error_kind("SUBSTRING('abc', 1, -1)"),
        ErrorKind::FunctionEvaluation
    );
}

#[test]
fn deep_trees_are_refused_and_the_deepest_accepted_evaluate_within_a_small_stack() {
    // Operators group left to right, so `1+1+...` nests one level per operator.
    let too_deep = format!("{}1 > 0", "1+".repeat(64));
    assert_eq!(
        rejected(&too_deep),
        "syntax error: expression is deeper than 64 levels (each operator of a chain is a level; use IN for long lists of alternatives) at 1:1"
    );
    // The deepest accepted trees, on a thread with a 512 KiB stack (a quarter of a tokio worker's), in
    // a debug build (whose frames are far larger than a release build's).
    let sum = format!("{}1 > 0", "1+".repeat(62));
    let ands = format!("{}true", "true AND ".repeat(63));
    let nested = format!("{}true{}", "NOT (".repeat(32), ")".repeat(32));
    for text in [sum, ands, nested] {
        let handle = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let expression = Expression::compile_filter(&text).expect("valid");
                expression.evaluate(&event()).errors.is_empty()
            })
            .expect("thread");
        assert!(handle.join().expect("no stack overflow"));
    }
}

const WORDS: &[&str] = &[
    "count",
    "region",
    "vip",
    "big",
    "missing",
    "1",
    "0",
    "-2147483648",
    "2147483647",
    "'eu-west'",
    "'%'",
    "\"7\"",
    "true",
    "(",
    ")",
    ",",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "LIKE",
    "IN",
    "EXISTS",
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">=",
    "LENGTH",
    "SUBSTRING",
    "ABS",
    "INT",
    "BOOL",
    "CONCAT_WS",
];

proptest::proptest! {
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(text in "[a-zA-Z0-9_ '\"\\\\()%,+*/<>=!-]{0,64}") {
        if let Ok(expression) = Expression::parse(&text) {
            let _ = expression.evaluate(&event());
        }
        let _ = Expression::compile_filter(&text);
    }

    #[test]
    fn token_soup_evaluates_without_panicking_and_matches_only_true_without_errors(
        words in proptest::collection::vec(proptest::sample::select(WORDS), 1..24)
    ) {
        let text = words.join(" ");
        if let Ok(expression) = Expression::parse(&text) {
            let evaluation = expression.evaluate(&event());
            let clean_true = evaluation.errors.is_empty() && evaluation.value == Value::Boolean(true);
            proptest::prop_assert_eq!(expression.matches(&event()), clean_true);
        }
    }
}
