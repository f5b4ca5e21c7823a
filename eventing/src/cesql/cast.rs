//! Type casts (CESQL v1 section 3.7).
//!
//! Explicit casts (`INT`, `BOOL`, `STRING`) follow the specification's table. Implicit casts, which
//! operators and functions apply to their operands, are the same except Integer → Boolean: the
//! specification's conformance suite expects `NOT 10` to be a cast error, so an Integer operand where a
//! Boolean is needed is refused (write `BOOL(x)` to convert).

use super::types::{Type, Value};

/// Why a cast failed; the cast's result is then the target type's zero value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CastFailure(pub String);

/// `value` as `target`, explicitly (`INT`, `BOOL`, `STRING`).
pub fn explicit(value: &Value, target: Type) -> Result<Value, CastFailure> {
    match (value, target) {
        (v, t) if v.ty() == t => Ok(v.clone()),
        (Value::Integer(i), Type::String) => Ok(Value::String(i.to_string())),
        (Value::Boolean(b), Type::String) => Ok(Value::String(b.to_string())),
        (Value::Integer(i), Type::Boolean) => Ok(Value::Boolean(*i != 0)),
        (Value::Boolean(b), Type::Integer) => Ok(Value::Integer(i32::from(*b))),
        (Value::String(s), Type::Integer) => parse_integer(s).map(Value::Integer).ok_or_else(|| {
            CastFailure(format!(
                "cannot cast {s:?} to Integer: not a 32-bit decimal integer"
            ))
        }),
        (Value::String(s), Type::Boolean) => parse_boolean(s)
            .map(Value::Boolean)
            .ok_or_else(|| CastFailure(format!("cannot cast {s:?} to Boolean: not true or false"))),
        (v, t) => Err(CastFailure(format!("cannot cast {v} to {t}"))),
    }
}

/// `value` as `target`, implicitly (an operand of an operator or function).
pub fn implicit(value: &Value, target: Type) -> Result<Value, CastFailure> {
    match (value, target) {
        (Value::Integer(i), Type::Boolean) => Err(CastFailure(format!(
            "cannot use Integer {i} as a Boolean (write BOOL(x) to convert)"
        ))),
        _ => explicit(value, target),
    }
}

/// An optional sign and decimal digits, in the 32-bit range.
pub fn parse_integer(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `true` or `false`, in any case.
pub fn parse_boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
