//! Evaluates a syntax tree against an event.
//!
//! Errors follow CESQL v1 section 3.3: every subexpression returns a value even when it fails. The
//! operator or function that meets a problem (a division by zero, a failed cast, a bad argument)
//! returns the value the specification gives it with the error; an operator whose operand failed
//! returns the zero value of its own type, keeping the operand's errors, and evaluates nothing more
//! (the "fail fast" mode of section 4.1 applied at each level, which is what the conformance suite
//! expects). A missing attribute fails the subexpression that reads it.

use cloudevents::Event;
use cloudevents::event::{AttributeValue, ExtensionValue};

use super::cast;
use super::functions::{self, Param};
use super::like;
use super::types::{BinaryOp, ErrorKind, EvalError, Node, NodeKind, Position, Type, Value};

/// A failed subexpression: the value it returns anyway and its errors (never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    /// The value returned.
    pub value: Value,
    /// What went wrong.
    pub errors: Vec<EvalError>,
}

type Outcome = Result<Value, Failed>;

/// The type `node` returns, when the tree alone tells (an attribute's type depends on the event).
pub fn static_type(node: &Node) -> Option<Type> {
    match &node.kind {
        NodeKind::Literal(v) => Some(v.ty()),
        NodeKind::Attribute(_) => None,
        NodeKind::Exists(_) | NodeKind::Not(_) | NodeKind::Like { .. } | NodeKind::In { .. } => {
            Some(Type::Boolean)
        }
        NodeKind::Negate(_) => Some(Type::Integer),
        NodeKind::Binary(op, _, _) => Some(match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => Type::Integer,
            _ => Type::Boolean,
        }),
        NodeKind::Call(name, args) => functions::lookup(name, args.len()).map(|f| f.returns),
    }
}

/// The zero value a failing `node` returns: that of its type, Boolean when the type is unknown.
fn zero(node: &Node) -> Value {
    static_type(node).unwrap_or(Type::Boolean).zero()
}

/// Evaluates `node` on `event`.
pub fn evaluate(node: &Node, event: &Event) -> Outcome {
    let fail_with = |operand: Failed| Failed {
        value: zero(node),
        errors: operand.errors,
    };
    let mut errors = Vec::new();
    let value = match &node.kind {
        NodeKind::Literal(v) => v.clone(),
        NodeKind::Attribute(name) => attribute(event, name).ok_or_else(|| Failed {
            value: Value::Boolean(false),
            errors: vec![error(
                ErrorKind::MissingAttribute,
                node.position,
                format!("the event has no attribute {name:?}"),
            )],
        })?,
        NodeKind::Exists(name) => Value::Boolean(attribute(event, name).is_some()),
        NodeKind::Not(x) => {
            let x = evaluate(x, event).map_err(fail_with)?;
            Value::Boolean(!as_bool(&x, node.position, &mut errors))
        }
        NodeKind::Negate(x) => {
            let x = evaluate(x, event).map_err(fail_with)?;
            let x = as_int(&x, node.position, &mut errors);
            math(x.checked_neg(), node.position, &mut errors, || {
                format!("-({x}) overflows a 32-bit integer")
            })
        }
        NodeKind::Binary(op, x, y) => return binary(node, *op, x, y, event),
        NodeKind::Like {
            value,
            pattern,
            negated,
        } => {
            let x = evaluate(value, event).map_err(fail_with)?;
            let x = cast_or_zero(&x, Type::String, node.position, &mut errors);
            let text = match x {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Value::Boolean(like::matches(&text, pattern) != *negated)
        }
        NodeKind::In { value, set, negated } => {
            let x = evaluate(value, event).map_err(fail_with)?;
            let mut found = false;
            for item in set {
                let y = evaluate(item, event).map_err(fail_with)?;
                found |= cast_or_zero(&y, x.ty(), item.position, &mut errors) == x;
            }
            Value::Boolean(found != *negated)
        }
        NodeKind::Call(name, args) => {
            let Some(function) = functions::lookup(name, args.len()) else {
                return Err(Failed {
                    value: Value::Boolean(false),
                    errors: vec![error(
                        ErrorKind::MissingFunction,
                        node.position,
                        missing_function(name, args.len()),
                    )],
                });
            };
            let mut values = Vec::with_capacity(args.len());
            for (i, arg) in args.iter().enumerate() {
                let v = evaluate(arg, event).map_err(fail_with)?;
                values.push(match function.param(i) {
                    Param::Of(t) => cast_or_zero(&v, t, arg.position, &mut errors),
                    Param::Any => v,
                });
            }
            match function.call(&values) {
                Ok(v) => v,
                Err(f) => {
                    errors.push(error(f.kind, node.position, f.message));
                    f.value
                }
            }
        }
    };
    finish(value, errors)
}

fn binary(node: &Node, op: BinaryOp, x: &Node, y: &Node, event: &Event) -> Outcome {
    let fail_with = |operand: Failed| Failed {
        value: zero(node),
        errors: operand.errors,
    };
    let position = node.position;
    let mut errors = Vec::new();
    let left = evaluate(x, event).map_err(fail_with)?;
    if matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) {
        let l = as_bool(&left, position, &mut errors);
        // AND and OR short-circuit (section 3.4.2): the right operand is not evaluated.
        if (op == BinaryOp::And && !l) || (op == BinaryOp::Or && l) {
            return finish(Value::Boolean(l), errors);
        }
        let right = evaluate(y, event).map_err(fail_with)?;
        let r = as_bool(&right, position, &mut errors);
        let value = if op == BinaryOp::Xor { l != r } else { r };
        return finish(Value::Boolean(value), errors);
    }
    let right = evaluate(y, event).map_err(fail_with)?;
    let value = match op {
        // `=` is defined for every type: the left operand is cast to the right one's (section 3.7).
        BinaryOp::Eq | BinaryOp::NotEq => {
            let equal = match cast::implicit(&left, right.ty()) {
                Ok(l) => l == right,
                Err(cast::CastFailure(message)) => {
                    errors.push(error(ErrorKind::Cast, position, message));
                    false
                }
            };
            Value::Boolean(if op == BinaryOp::Eq {
                equal
            } else {
                !equal && errors.is_empty()
            })
        }
        _ => {
            let (l, r) = (
                as_int(&left, position, &mut errors),
                as_int(&right, position, &mut errors),
            );
            arithmetic(op, l, r, position, &mut errors)
        }
    };
    finish(value, errors)
}

fn arithmetic(op: BinaryOp, l: i32, r: i32, position: Position, errors: &mut Vec<EvalError>) -> Value {
    if matches!(op, BinaryOp::Div | BinaryOp::Rem) && r == 0 {
        errors.push(error(
            ErrorKind::Math,
            position,
            format!("division of {l} by zero"),
        ));
        return Value::Integer(0);
    }
    let overflow = || format!("{l} {op:?} {r} overflows a 32-bit integer");
    match op {
        BinaryOp::Lt => Value::Boolean(l < r),
        BinaryOp::Le => Value::Boolean(l <= r),
        BinaryOp::Gt => Value::Boolean(l > r),
        BinaryOp::Ge => Value::Boolean(l >= r),
        BinaryOp::Add => math(l.checked_add(r), position, errors, overflow),
        BinaryOp::Sub => math(l.checked_sub(r), position, errors, overflow),
        BinaryOp::Mul => math(l.checked_mul(r), position, errors, overflow),
        // Rust's `/` and `%` truncate towards zero, and `%` takes the sign of the dividend, as the
        // specification asks.
        BinaryOp::Div => math(l.checked_div(r), position, errors, overflow),
        _ => math(l.checked_rem(r), position, errors, overflow),
    }
}

/// An Integer result, or 0 with a math error when it overflowed.
fn math(
    result: Option<i32>,
    position: Position,
    errors: &mut Vec<EvalError>,
    message: impl FnOnce() -> String,
) -> Value {
    Value::Integer(result.unwrap_or_else(|| {
        errors.push(error(ErrorKind::Math, position, message()));
        0
    }))
}

fn finish(value: Value, errors: Vec<EvalError>) -> Outcome {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(Failed { value, errors })
    }
}

fn error(kind: ErrorKind, position: Position, message: String) -> EvalError {
    EvalError {
        kind,
        position,
        message,
    }
}

fn missing_function(name: &str, arity: usize) -> String {
    format!(
        "no function {name} takes {arity} argument{}",
        if arity == 1 { "" } else { "s" }
    )
}

/// `value` cast implicitly to `target`; on failure the target's zero value, with a cast error.
fn cast_or_zero(value: &Value, target: Type, position: Position, errors: &mut Vec<EvalError>) -> Value {
    cast::implicit(value, target).unwrap_or_else(|cast::CastFailure(message)| {
        errors.push(error(ErrorKind::Cast, position, message));
        target.zero()
    })
}

fn as_bool(value: &Value, position: Position, errors: &mut Vec<EvalError>) -> bool {
    matches!(
        cast_or_zero(value, Type::Boolean, position, errors),
        Value::Boolean(true)
    )
}

fn as_int(value: &Value, position: Position, errors: &mut Vec<EvalError>) -> i32 {
    match cast_or_zero(value, Type::Integer, position, errors) {
        Value::Integer(i) => i,
        _ => 0,
    }
}

/// The value of attribute or extension `name`: extensions keep their Boolean or Integer type (an
/// integer beyond 32 bits becomes a String); every other attribute is a String.
pub fn attribute(event: &Event, name: &str) -> Option<Value> {
    if let Some(ext) = event.extension(name) {
        return Some(match ext {
            ExtensionValue::Boolean(b) => Value::Boolean(*b),
            ExtensionValue::Integer(i) => {
                i32::try_from(*i).map_or_else(|_| Value::String(i.to_string()), Value::Integer)
            }
            ExtensionValue::String(s) => Value::String(s.clone()),
        });
    }
    event
        .iter_attributes()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| {
            Value::String(match value {
                AttributeValue::String(s) => s.to_string(),
                other => other.to_string(),
            })
        })
}
