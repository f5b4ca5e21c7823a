//! Values, types, the syntax tree and the error kinds of CESQL.

use std::fmt;

/// A place in the expression text, for error messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The three primitive types of CESQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `true` or `false`.
    Boolean,
    /// A signed 32-bit integer.
    Integer,
    /// A sequence of Unicode characters (URIs and timestamps are strings too).
    String,
}

impl Type {
    /// The type's zero value, returned by a subexpression that fails.
    pub fn zero(self) -> Value {
        match self {
            Type::Boolean => Value::Boolean(false),
            Type::Integer => Value::Integer(0),
            Type::String => Value::String(String::new()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Boolean => "Boolean",
            Type::Integer => "Integer",
            Type::String => "String",
        })
    }
}

/// A value of one of the primitive types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A Boolean.
    Boolean(bool),
    /// An Integer.
    Integer(i32),
    /// A String.
    String(String),
}

impl Value {
    /// The value's type.
    pub fn ty(&self) -> Type {
        match self {
            Value::Boolean(_) => Type::Boolean,
            Value::Integer(_) => Type::Integer,
            Value::String(_) => Type::String,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The kinds of error the specification names (section 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a valid expression.
    Parse,
    /// Division or remainder by zero, or an Integer overflow.
    Math,
    /// A value cannot be cast to the type an operator or function needs.
    Cast,
    /// The event has no such attribute.
    MissingAttribute,
    /// No built-in function has that name and number of arguments.
    MissingFunction,
    /// A function's arguments are out of its domain.
    FunctionEvaluation,
}

/// One error met while evaluating an expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {position}")]
pub struct EvalError {
    /// Which kind of error.
    pub kind: ErrorKind,
    /// Where in the expression.
    pub position: Position,
    /// What went wrong.
    pub message: String,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `XOR`.
    Xor,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

/// One element of a `LIKE` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternItem {
    /// `%`: any run of characters, possibly empty.
    AnyRun,
    /// `_`: exactly one character.
    AnyOne,
    /// That character.
    Char(char),
}

/// A node of the syntax tree and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Where it starts in the text.
    pub position: Position,
    /// Levels of the tree from this node down (1 for a leaf): evaluation recurses that deep.
    pub depth: usize,
}

impl Node {
    /// A node over `kind`, its depth one more than its deepest child's.
    pub fn new(kind: NodeKind, position: Position) -> Node {
        let children = match &kind {
            NodeKind::Literal(_) | NodeKind::Attribute(_) | NodeKind::Exists(_) => 0,
            NodeKind::Not(x) | NodeKind::Negate(x) => x.depth,
            NodeKind::Like { value, .. } => value.depth,
            NodeKind::Binary(_, x, y) => x.depth.max(y.depth),
            NodeKind::In { value, set, .. } => set.iter().map(|n| n.depth).fold(value.depth, usize::max),
            NodeKind::Call(_, args) => args.iter().map(|n| n.depth).max().unwrap_or(0),
        };
        Node {
            kind,
            position,
            depth: children + 1,
        }
    }
}

/// The kinds of syntax tree node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A literal value.
    Literal(Value),
    /// A context attribute or extension, by lowercase name.
    Attribute(String),
    /// `EXISTS name`.
    Exists(String),
    /// `NOT x`.
    Not(Box<Node>),
    /// `-x`.
    Negate(Box<Node>),
    /// `x op y`.
    Binary(BinaryOp, Box<Node>, Box<Node>),
    /// `x [NOT] LIKE 'pattern'`.
    Like {
        /// The value matched.
        value: Box<Node>,
        /// The pattern, compiled.
        pattern: Vec<PatternItem>,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `x [NOT] IN (y1, y2, ...)`.
    In {
        /// The value looked for.
        value: Box<Node>,
        /// The set (never empty).
        set: Vec<Node>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `NAME(args...)`, the name in upper case.
    Call(String, Vec<Node>),
}
