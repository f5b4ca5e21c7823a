//! The built-in functions (CESQL v1 section 3.5, plus the casting and `IS_` functions Knative offers).
//!
//! Names are case-insensitive (the parser upper-cases them); a function is chosen by name and number of
//! arguments. Arguments reach a function already cast to its parameter types.

use super::cast::{self, CastFailure};
use super::types::{ErrorKind, Type, Value};

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A value of this type (others are cast implicitly).
    Of(Type),
    /// Any value, as it is.
    Any,
}

/// A function that returned a value with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The value returned anyway.
    pub value: Value,
    /// The kind of error.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
}

type Body = fn(&[Value]) -> Result<Value, Failure>;

/// A built-in function.
#[derive(Debug)]
pub struct Function {
    /// Upper-case name.
    pub name: &'static str,
    /// Fixed parameters.
    pub params: &'static [Param],
    /// Type of any further arguments, for variadic functions.
    pub variadic: Option<Type>,
    /// Type of the result.
    pub returns: Type,
    body: Body,
}

impl Function {
    /// The parameter the `index`th argument is cast to.
    pub fn param(&self, index: usize) -> Param {
        self.params
            .get(index)
            .copied()
            .or(self.variadic.map(Param::Of))
            .unwrap_or(Param::Any)
    }

    /// Calls the function on arguments cast to its parameters.
    pub fn call(&self, args: &[Value]) -> Result<Value, Failure> {
        (self.body)(args)
    }
}

const S: Param = Param::Of(Type::String);
const I: Param = Param::Of(Type::Integer);

const FUNCTIONS: &[Function] = &[
    f("LENGTH", &[S], None, Type::Integer, |a| {
        Ok(Value::Integer(
            i32::try_from(text(&a[0]).chars().count()).unwrap_or(i32::MAX),
        ))
    }),
    f("CONCAT", &[], Some(Type::String), Type::String, |a| {
        Ok(Value::String(a.iter().map(text).collect()))
    }),
    f("CONCAT_WS", &[S], Some(Type::String), Type::String, |a| {
        let rest: Vec<&str> = a[1..].iter().map(text).collect();
        Ok(Value::String(rest.join(text(&a[0]))))
    }),
    f("LOWER", &[S], None, Type::String, |a| {
        Ok(Value::String(text(&a[0]).to_lowercase()))
    }),
    f("UPPER", &[S], None, Type::String, |a| {
        Ok(Value::String(text(&a[0]).to_uppercase()))
    }),
    f("TRIM", &[S], None, Type::String, |a| {
        Ok(Value::String(text(&a[0]).trim().to_string()))
    }),
    f("LEFT", &[S, I], None, Type::String, |a| left_right(a, true)),
    f("RIGHT", &[S, I], None, Type::String, |a| left_right(a, false)),
    f("SUBSTRING", &[S, I], None, Type::String, |a| {
        substring(text(&a[0]), int(&a[1]), None)
    }),
    f("SUBSTRING", &[S, I, I], None, Type::String, |a| {
        substring(text(&a[0]), int(&a[1]), Some(int(&a[2])))
    }),
    f("ABS", &[I], None, Type::Integer, |a| {
        let x = int(&a[0]);
        x.checked_abs().map(Value::Integer).ok_or_else(|| Failure {
            value: Value::Integer(i32::MAX),
            kind: ErrorKind::Math,
            message: format!("ABS({x}) overflows a 32-bit integer"),
        })
    }),
    f("INT", &[Param::Any], None, Type::Integer, |a| {
        cast_to(&a[0], Type::Integer)
    }),
    f("BOOL", &[Param::Any], None, Type::Boolean, |a| {
        cast_to(&a[0], Type::Boolean)
    }),
    f("STRING", &[Param::Any], None, Type::String, |a| {
        cast_to(&a[0], Type::String)
    }),
    f("IS_BOOL", &[Param::Any], None, Type::Boolean, |a| {
        Ok(Value::Boolean(cast::implicit(&a[0], Type::Boolean).is_ok()))
    }),
    f("IS_INT", &[Param::Any], None, Type::Boolean, |a| {
        let int = matches!(&a[0], Value::Integer(_))
            || matches!(&a[0], Value::String(s) if cast::parse_integer(s).is_some());
        Ok(Value::Boolean(int))
    }),
];

const fn f(
    name: &'static str,
    params: &'static [Param],
    variadic: Option<Type>,
    returns: Type,
    body: Body,
) -> Function {
    Function {
        name,
        params,
        variadic,
        returns,
        body,
    }
}

/// The function `name` (upper case) taking `arity` arguments, if there is one.
pub fn lookup(name: &str, arity: usize) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| {
        f.name == name && (f.params.len() == arity || (f.variadic.is_some() && arity >= f.params.len()))
    })
}

fn text(value: &Value) -> &str {
    match value {
        Value::String(s) => s,
        _ => "",
    }
}

fn int(value: &Value) -> i32 {
    match value {
        Value::Integer(i) => *i,
        _ => 0,
    }
}

fn cast_to(value: &Value, target: Type) -> Result<Value, Failure> {
    cast::explicit(value, target).map_err(|CastFailure(message)| Failure {
        value: target.zero(),
        kind: ErrorKind::Cast,
        message,
    })
}

fn evaluation_error(value: Value, message: String) -> Failure {
    Failure {
        value,
        kind: ErrorKind::FunctionEvaluation,
        message,
    }
}

fn left_right(args: &[Value], left: bool) -> Result<Value, Failure> {
    let (x, n) = (text(&args[0]), int(&args[1]));
    let name = if left { "LEFT" } else { "RIGHT" };
    let Ok(n) = usize::try_from(n) else {
        return Err(evaluation_error(
            Value::String(x.to_string()),
            format!("{name}: the length {n} is negative"),
        ));
    };
    let count = x.chars().count();
    let taken: String = if left {
        x.chars().take(n).collect()
    } else {
        x.chars().skip(count.saturating_sub(n)).collect()
    };
    Ok(Value::String(taken))
}

/// Characters from `pos` (1-based; negative counts from the end; 0 gives the empty string), `len` of
/// them or up to the end.
fn substring(x: &str, pos: i32, len: Option<i32>) -> Result<Value, Failure> {
    let count = i64::try_from(x.chars().count()).unwrap_or(i64::MAX);
    let p = i64::from(pos);
    if p > count || p < -count {
        return Err(evaluation_error(
            Value::String(String::new()),
            format!("SUBSTRING: position {pos} is outside a string of {count} characters"),
        ));
    }
    if let Some(len) = len.filter(|l| *l < 0) {
        return Err(evaluation_error(
            Value::String(String::new()),
            format!("SUBSTRING: the length {len} is negative"),
        ));
    }
    if p == 0 {
        return Ok(Value::String(String::new()));
    }
    let start = if p > 0 { p - 1 } else { count + p };
    let take = len.map_or(count, i64::from);
    let (start, take) = (
        usize::try_from(start).unwrap_or(0),
        usize::try_from(take).unwrap_or(0),
    );
    Ok(Value::String(x.chars().skip(start).take(take).collect()))
}
