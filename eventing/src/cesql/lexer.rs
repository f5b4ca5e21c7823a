//! Splits CESQL text into tokens, each with its position.

use super::types::Position;

/// A token of CESQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `+`.
    Plus,
    /// `-`.
    Minus,
    /// `*`.
    Star,
    /// `/`.
    Slash,
    /// `%`.
    Percent,
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
    /// Decimal digits (the sign is an operator token; the parser applies it).
    Digits(String),
    /// A quoted string, escapes of the quote resolved.
    Str(String),
    /// A run of letters, digits and underscores: a keyword, an identifier or a function name.
    Word(String),
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Digits(d) => format!("integer {d}"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Word(w) => format!("{w:?}"),
            other => format!("{:?}", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Token::LParen => "(",
            Token::RParen => ")",
            Token::Comma => ",",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Eq => "=",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Digits(_) | Token::Str(_) | Token::Word(_) => "",
        }
    }
}

/// Text that is not made of CESQL tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    /// Where.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// Tokens of `text`, each with where it starts, then the position of the end of the text.
pub fn tokenize(text: &str) -> Result<(Vec<(Token, Position)>, Position), LexError> {
    let mut lexer = Lexer {
        chars: text.char_indices().peekable(),
        position: Position {
            offset: 0,
            line: 1,
            column: 1,
        },
    };
    let mut tokens = Vec::new();
    while let Some(c) = lexer.peek() {
        let start = lexer.position;
        if c.is_whitespace() {
            lexer.bump();
            continue;
        }
        let token = match c {
            '\'' | '"' => lexer.string(c)?,
            c if c.is_ascii_alphanumeric() || c == '_' => lexer.word(),
            _ => lexer.symbol(c)?,
        };
        tokens.push((token, start));
    }
    Ok((tokens, lexer.position))
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    position: Position,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|(_, c)| *c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        self.position.offset += c.len_utf8();
        if c == '\n' {
            self.position.line += 1;
            self.position.column = 1;
        } else {
            self.position.column += 1;
        }
        Some(c)
    }

    fn word(&mut self) -> Token {
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            word.push(c);
            self.bump();
        }
        if word.bytes().all(|b| b.is_ascii_digit()) {
            Token::Digits(word)
        } else {
            Token::Word(word)
        }
    }

    /// A string delimited by `quote`. A backslash before the delimiter, or the delimiter doubled, stands
    /// for the delimiter; any other backslash is kept, so that `LIKE` patterns see their `\%` and `\_`.
    fn string(&mut self, quote: char) -> Result<Token, LexError> {
        let start = self.position;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(LexError {
                        position: start,
                        message: format!("unterminated string: expected a closing {quote}"),
                    });
                }
                Some('\\') => match self.bump() {
                    Some(c) if c == quote => text.push(c),
                    Some(c) => {
                        text.push('\\');
                        text.push(c);
                    }
                    None => text.push('\\'),
                },
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        text.push(quote);
                    } else {
                        return Ok(Token::Str(text));
                    }
                }
                Some(c) => text.push(c),
            }
        }
    }

    fn symbol(&mut self, c: char) -> Result<Token, LexError> {
        let start = self.position;
        self.bump();
        let next = self.peek();
        let (token, two) = match (c, next) {
            ('(', _) => (Token::LParen, false),
            (')', _) => (Token::RParen, false),
            (',', _) => (Token::Comma, false),
            ('+', _) => (Token::Plus, false),
            ('-', _) => (Token::Minus, false),
            ('*', _) => (Token::Star, false),
            ('/', _) => (Token::Slash, false),
            ('%', _) => (Token::Percent, false),
            ('=', _) => (Token::Eq, false),
            ('!', Some('=')) => (Token::NotEq, true),
            ('<', Some('>')) => (Token::NotEq, true),
            ('<', Some('=')) => (Token::Le, true),
            ('<', _) => (Token::Lt, false),
            ('>', Some('=')) => (Token::Ge, true),
            ('>', _) => (Token::Gt, false),
            _ => {
                return Err(LexError {
                    position: start,
                    message: format!("unexpected character {c:?}"),
                });
            }
        };
        if two {
            self.bump();
        }
        Ok(token)
    }
}
