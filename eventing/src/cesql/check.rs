//! Checks an expression before it is used as a filter, so mistakes show in the Trigger's status rather
//! than as events that silently never match.
//!
//! Refused: a call to a function that does not exist (or with the wrong number of arguments); a literal
//! or a subexpression that an operator or function would have to cast to a type it cannot become (such
//! as `'abc' + 1` or `NOT 10`); an expression whose type is known and is not Boolean (a filter must
//! return a Boolean); a chain mixing `AND`, `OR` and `XOR` without parentheses (they share one
//! precedence in CESQL, unlike SQL, so such a chain rarely means what it seems to).

use super::cast;
use super::eval::static_type;
use super::functions::{self, Param};
use super::types::{BinaryOp, Node, NodeKind, Position, Type};

/// A type error found before evaluation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {position}")]
pub struct TypeError {
    /// Where.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// Checks `root`, an expression used as a filter; `mixed_logic` is where the parser saw `AND`, `OR` or
/// `XOR` mixed without parentheses.
pub fn check_filter(root: &Node, mixed_logic: Option<Position>) -> Result<(), TypeError> {
    check(root)?;
    if let Some(position) = mixed_logic {
        return Err(TypeError {
            position,
            message: "AND, OR and XOR have equal precedence in CESQL and group left to right: add parentheses to say which comes first".into(),
        });
    }
    match static_type(root) {
        Some(Type::Boolean) | None => Ok(()),
        Some(t) => Err(TypeError {
            position: root.position,
            message: format!("a filter must be a Boolean expression, this one is {t}"),
        }),
    }
}

fn check(node: &Node) -> Result<(), TypeError> {
    match &node.kind {
        NodeKind::Literal(_) | NodeKind::Attribute(_) | NodeKind::Exists(_) => Ok(()),
        NodeKind::Not(x) => operand(x, Type::Boolean),
        NodeKind::Negate(x) => operand(x, Type::Integer),
        NodeKind::Like { value, .. } => operand(value, Type::String),
        NodeKind::In { value, set, .. } => {
            check(value)?;
            for item in set {
                match static_type(value) {
                    Some(t) => operand(item, t)?,
                    None => check(item)?,
                }
            }
            Ok(())
        }
        NodeKind::Binary(op, x, y) => match op {
            BinaryOp::Eq | BinaryOp::NotEq => {
                check(y)?;
                match static_type(y) {
                    Some(t) => operand(x, t),
                    None => check(x),
                }
            }
            BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
                operand(x, Type::Boolean)?;
                operand(y, Type::Boolean)
            }
            _ => {
                operand(x, Type::Integer)?;
                operand(y, Type::Integer)
            }
        },
        NodeKind::Call(name, args) => {
            let function = functions::lookup(name, args.len()).ok_or_else(|| TypeError {
                position: node.position,
                message: format!(
                    "unknown function {name} with {} argument{}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
            })?;
            for (i, arg) in args.iter().enumerate() {
                match function.param(i) {
                    Param::Of(t) => operand(arg, t)?,
                    Param::Any => check(arg)?,
                }
            }
            Ok(())
        }
    }
}

/// Checks `node`, which will be cast implicitly to `target`.
fn operand(node: &Node, target: Type) -> Result<(), TypeError> {
    check(node)?;
    let refused = match (&node.kind, static_type(node)) {
        // A literal's cast is known now.
        (NodeKind::Literal(v), _) => cast::implicit(v, target).err().map(|e| e.0),
        (_, Some(Type::Integer)) if target == Type::Boolean => {
            Some("an Integer cannot be used as a Boolean (write BOOL(x) to convert)".to_string())
        }
        _ => None,
    };
    match refused {
        Some(message) => Err(TypeError {
            position: node.position,
            message,
        }),
        None => Ok(()),
    }
}
