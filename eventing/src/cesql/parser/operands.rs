//! Operands of the CESQL parser: unary operators, literals, attributes, `EXISTS`, function calls,
//! parenthesised expressions and the lists of calls and `IN`.

use super::{ParseError, Parser, build};
use crate::cesql::lexer::Token;
use crate::cesql::types::{Node, NodeKind, Position, Value};

const EXPECTED_OPERAND: &str = "a literal, an attribute name, a function call or '('";

impl Parser {
    /// A non-empty, comma-separated list of expressions after its `(`, through its `)`.
    pub(super) fn list(&mut self, what: &str) -> Result<Vec<Node>, ParseError> {
        let mut items = Vec::new();
        loop {
            if self.peek().is_none() || self.peek() == Some(&Token::RParen) {
                return Err(self.error(what));
            }
            items.push(self.nested()?);
            match self.peek() {
                Some(Token::Comma) => self.next += 1,
                _ => break,
            }
        }
        self.expect(&Token::RParen, "',' or ')'")?;
        Ok(items)
    }

    pub(super) fn nested(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let node = self.logic();
        self.depth -= 1;
        node
    }

    pub(super) fn unary(&mut self) -> Result<Node, ParseError> {
        let position = self.position();
        if self.keyword("NOT") {
            self.next += 1;
            self.enter()?;
            let operand = self.unary();
            self.depth -= 1;
            return build(NodeKind::Not(Box::new(operand?)), position);
        }
        if matches!(self.peek(), Some(Token::Minus | Token::Plus)) {
            let minus = self.peek() == Some(&Token::Minus);
            self.next += 1;
            // A sign directly before digits is part of the literal, so -2147483648 is in range.
            if let Some(Token::Digits(digits)) = self.peek().cloned() {
                self.next += 1;
                return integer(&digits, minus, position);
            }
            if !minus {
                return Err(self.error("digits after '+'"));
            }
            self.enter()?;
            let operand = self.unary();
            self.depth -= 1;
            return build(NodeKind::Negate(Box::new(operand?)), position);
        }
        self.primary()
    }

    pub(super) fn primary(&mut self) -> Result<Node, ParseError> {
        let position = self.position();
        let Some(token) = self.peek().cloned() else {
            return Err(self.error(EXPECTED_OPERAND));
        };
        self.next += 1;
        let kind = match token {
            Token::Digits(digits) => return integer(&digits, false, position),
            Token::Str(s) => NodeKind::Literal(Value::String(s)),
            Token::LParen => {
                let inner = self.nested()?;
                self.expect(&Token::RParen, "')'")?;
                return Ok(inner);
            }
            Token::Word(w) if w.eq_ignore_ascii_case("TRUE") => NodeKind::Literal(Value::Boolean(true)),
            Token::Word(w) if w.eq_ignore_ascii_case("FALSE") => NodeKind::Literal(Value::Boolean(false)),
            Token::Word(w) if w.eq_ignore_ascii_case("EXISTS") => match self.peek().cloned() {
                Some(Token::Word(name)) if is_identifier(&name) => {
                    self.next += 1;
                    NodeKind::Exists(name.to_ascii_lowercase())
                }
                _ => return Err(self.error("an attribute name after EXISTS")),
            },
            Token::Word(w) if self.peek() == Some(&Token::LParen) => {
                if !w.starts_with(|c: char| c.is_ascii_alphabetic())
                    || !w.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
                {
                    self.next -= 1;
                    return Err(self.error("a function name (letters and '_')"));
                }
                self.next += 1;
                let args = if self.peek() == Some(&Token::RParen) {
                    self.next += 1;
                    Vec::new()
                } else {
                    self.list("an argument")?
                };
                NodeKind::Call(w.to_ascii_uppercase(), args)
            }
            Token::Word(w) if is_identifier(&w) => NodeKind::Attribute(w.to_ascii_lowercase()),
            _ => {
                self.next -= 1;
                return Err(self.error(EXPECTED_OPERAND));
            }
        };
        build(kind, position)
    }
}

/// Attribute names are letters and digits; CESQL keywords and names are case-insensitive and
/// CloudEvents names lowercase, so the parser lowercases them.
fn is_identifier(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric())
}

fn integer(digits: &str, negative: bool, position: Position) -> Result<Node, ParseError> {
    let text = if negative {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    let value = text.parse::<i32>().map_err(|_| ParseError {
        position,
        message: format!("integer literal {text} is outside the 32-bit range"),
    })?;
    Ok(Node::new(NodeKind::Literal(Value::Integer(value)), position))
}
