//! CloudEvents SQL expressions (CESQL v1), the `cesql` filter dialect of the CloudEvents Subscriptions
//! API.
//!
//! [`Expression::parse`] reads the text into a syntax tree (with positions for errors);
//! [`Expression::compile_filter`] also type-checks it as a filter ([`check`]); [`Expression::evaluate`]
//! computes its value and errors on an event ([`eval`]); [`Expression::matches`] is the filter: the
//! value is Boolean `true` and there was no error (specification section 1.2). See `docs/eventing.md`.

pub mod cast;
pub mod check;
pub mod eval;
pub mod functions;
pub mod lexer;
pub mod like;
pub mod parser;
pub mod types;

use cloudevents::Event;

pub use check::TypeError;
pub use parser::ParseError;
pub use types::{ErrorKind, EvalError, Position, Type, Value};

/// Longest expression text accepted, in bytes (the CRD's bound).
pub const MAX_EXPRESSION_LENGTH: usize = zeroscale_crds::trigger::MAX_CESQL_LENGTH;

/// Why an expression cannot be used as a filter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CesqlError {
    /// The text is empty or too long.
    #[error("a cesql expression must be 1 to {MAX_EXPRESSION_LENGTH} bytes long, this one is {0}")]
    Length(usize),
    /// The text is not a CESQL expression.
    #[error("syntax error: {0}")]
    Parse(#[from] ParseError),
    /// The expression is well formed but cannot work as a filter.
    #[error("type error: {0}")]
    Type(#[from] TypeError),
}

/// A parsed CESQL expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    text: String,
    parsed: parser::Parsed,
}

/// The result of evaluating an expression: a value and the errors met (section 3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The value (the zero value of the expression's type when it failed).
    pub value: Value,
    /// The errors, empty when none.
    pub errors: Vec<EvalError>,
}

impl Expression {
    /// Parses `text`, checking only its syntax.
    pub fn parse(text: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            text: text.to_string(),
            parsed: parser::parse(text)?,
        })
    }

    /// Parses and type-checks `text` for use as a filter (see [`check`] for what is refused).
    pub fn compile_filter(text: &str) -> Result<Expression, CesqlError> {
        if text.trim().is_empty() || text.len() > MAX_EXPRESSION_LENGTH {
            return Err(CesqlError::Length(text.len()));
        }
        let expression = Expression::parse(text)?;
        check::check_filter(&expression.parsed.root, expression.parsed.mixed_logic)?;
        Ok(expression)
    }

    /// The text it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the expression against `event`.
    pub fn evaluate(&self, event: &Event) -> Evaluation {
        match eval::evaluate(&self.parsed.root, event) {
            Ok(value) => Evaluation {
                value,
                errors: Vec::new(),
            },
            Err(failed) => Evaluation {
                value: failed.value,
                errors: failed.errors,
            },
        }
    }

    /// Whether `event` passes the expression as a filter: it evaluates to `true` without error.
    pub fn matches(&self, event: &Event) -> bool {
        matches!(eval::evaluate(&self.parsed.root, event), Ok(Value::Boolean(true)))
    }
}

#[cfg(test)]
mod tck_tests;
#[cfg(test)]
mod tests;
