//! Parses CESQL tokens into a syntax tree.
//!
//! Precedence, tightest first (CESQL v1 section 3.6 and its grammar): function calls and literals; `NOT`
//! and unary `-`; `LIKE` and `IN`; `*` `/` `%`; `+` `-`; comparisons; `AND` `OR` `XOR`. Operators of equal
//! precedence group left to right, as the specification's text says; `AND`, `OR` and `XOR` share one
//! level, so `a AND b OR c` is `(a AND b) OR c` (unlike SQL). [`Parsed::mixed_logic`] remembers where such
//! a chain mixes them without parentheses, so a filter can refuse the ambiguity.

mod operands;

use super::lexer::{Token, tokenize};
use super::like;
use super::types::{BinaryOp, Node, NodeKind, Position};

/// Deepest nesting of parentheses, function calls and unary operators accepted: keeps recursion (and
/// so the stack) bounded whatever the input.
pub const MAX_NESTING: usize = 64;

/// Deepest syntax tree accepted: evaluation recurses once per level, and operators of a chain group
/// left to right, so `1+1+1...` nests one level per operator.
pub const MAX_DEPTH: usize = 64;

/// Text that is not a valid CESQL expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {position}")]
pub struct ParseError {
    /// Where the problem is.
    pub position: Position,
    /// What was found and what was expected.
    pub message: String,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The syntax tree.
    pub root: Node,
    /// Where a chain of `AND`/`OR`/`XOR` first mixes two of them without parentheses, if it does.
    pub mixed_logic: Option<Position>,
}

/// Parses `text` as one CESQL expression.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let (tokens, end) = tokenize(text).map_err(|e| ParseError {
        position: e.position,
        message: e.message,
    })?;
    let mut parser = Parser {
        tokens,
        next: 0,
        end,
        depth: 0,
        mixed_logic: None,
    };
    let root = parser.logic()?;
    if let Some((token, position)) = parser.tokens.get(parser.next) {
        return Err(ParseError {
            position: *position,
            message: format!(
                "unexpected {}: expected an operator or the end of the expression",
                token.describe()
            ),
        });
    }
    Ok(Parsed {
        root,
        mixed_logic: parser.mixed_logic,
    })
}

struct Parser {
    tokens: Vec<(Token, Position)>,
    next: usize,
    end: Position,
    depth: usize,
    mixed_logic: Option<Position>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(t, _)| t)
    }

    fn position(&self) -> Position {
        self.tokens.get(self.next).map_or(self.end, |(_, p)| *p)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn error(&self, expected: &str) -> ParseError {
        let found = self
            .peek()
            .map_or_else(|| "end of expression".to_string(), Token::describe);
        ParseError {
            position: self.position(),
            message: format!("unexpected {found}: expected {expected}"),
        }
    }

    fn expect(&mut self, token: &Token, expected: &str) -> Result<(), ParseError> {
        if self.peek() == Some(token) {
            self.next += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ParseError {
                position: self.position(),
                message: format!("expression nests deeper than {MAX_NESTING} levels"),
            });
        }
        Ok(())
    }

    fn logic(&mut self) -> Result<Node, ParseError> {
        let mut left = self.comparison()?;
        let mut first: Option<BinaryOp> = None;
        loop {
            let op = if self.keyword("AND") {
                BinaryOp::And
            } else if self.keyword("OR") {
                BinaryOp::Or
            } else if self.keyword("XOR") {
                BinaryOp::Xor
            } else {
                return Ok(left);
            };
            let position = self.position();
            match first {
                Some(f) if f != op && self.mixed_logic.is_none() => self.mixed_logic = Some(position),
                None => first = Some(op),
                _ => {}
            }
            self.next += 1;
            let right = self.comparison()?;
            left = binary(op, left, right)?;
        }
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Token::Eq) => BinaryOp::Eq,
                Some(Token::NotEq) => BinaryOp::NotEq,
                Some(Token::Lt) => BinaryOp::Lt,
                Some(Token::Le) => BinaryOp::Le,
                Some(Token::Gt) => BinaryOp::Gt,
                Some(Token::Ge) => BinaryOp::Ge,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.additive()?;
            left = binary(op, left, right)?;
        }
    }

    fn additive(&mut self) -> Result<Node, ParseError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Token::Plus) => BinaryOp::Add,
                Some(Token::Minus) => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.multiplicative()?;
            left = binary(op, left, right)?;
        }
    }

    fn multiplicative(&mut self) -> Result<Node, ParseError> {
        let mut left = self.postfix()?;
        loop {
            let op = match self.peek() {
                Some(Token::Star) => BinaryOp::Mul,
                Some(Token::Slash) => BinaryOp::Div,
                Some(Token::Percent) => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.postfix()?;
            left = binary(op, left, right)?;
        }
    }

    /// `x [NOT] LIKE 'pattern'` and `x [NOT] IN (set)`.
    fn postfix(&mut self) -> Result<Node, ParseError> {
        let mut value = self.unary()?;
        loop {
            let start = self.next;
            let negated = self.keyword("NOT");
            if negated {
                self.next += 1;
            }
            let position = value.position;
            if self.keyword("LIKE") {
                self.next += 1;
                let Some(Token::Str(pattern)) = self.peek().cloned() else {
                    return Err(self.error("a string literal (the pattern of LIKE)"));
                };
                self.next += 1;
                let kind = NodeKind::Like {
                    value: Box::new(value),
                    pattern: like::compile(&pattern),
                    negated,
                };
                value = build(kind, position)?;
            } else if self.keyword("IN") {
                self.next += 1;
                self.expect(&Token::LParen, "'(' opening the set of IN")?;
                let set = self.list("an expression of the set of IN")?;
                let kind = NodeKind::In {
                    value: Box::new(value),
                    set,
                    negated,
                };
                value = build(kind, position)?;
            } else if negated {
                self.next = start;
                return Err(self.error_after_not());
            } else {
                return Ok(value);
            }
        }
    }

    fn error_after_not(&mut self) -> ParseError {
        self.next += 1;
        self.error("LIKE or IN after NOT")
    }
}

fn binary(op: BinaryOp, left: Node, right: Node) -> Result<Node, ParseError> {
    let position = left.position;
    build(NodeKind::Binary(op, Box::new(left), Box::new(right)), position)
}

/// A node, unless the tree gets deeper than [`MAX_DEPTH`].
fn build(kind: NodeKind, position: Position) -> Result<Node, ParseError> {
    let node = Node::new(kind, position);
    if node.depth > MAX_DEPTH {
        return Err(ParseError {
            position,
            message: format!(
                "expression is deeper than {MAX_DEPTH} levels (each operator of a chain is a level; use IN for long lists of alternatives)"
            ),
        });
    }
    Ok(node)
}
