//! The `where` parser: a safe subset of SQL, parsed into an [`Expr`], never pasted into SQL.
//!
//! | accepted | example |
//! |---|---|
//! | a column compared with a parameter or a literal: `=`, `<>`, `!=`, `<`, `<=`, `>`, `>=` | `user_id = $1`, `priority >= 2` |
//! | `IN` / `NOT IN` a list of parameters or literals | `status IN ('open', $2)` |
//! | `IS NULL` / `IS NOT NULL` | `read_at IS NULL` |
//! | `AND`, `OR`, `NOT`, parentheses | `NOT (a = 1 OR b = 2)` |
//!
//! Literals are single-quoted strings (`''` for a quote), numbers, `TRUE` and `FALSE`; columns are
//! plain or double-quoted identifiers. Everything else (function calls, subqueries, `LIKE`,
//! arithmetic, comments, `;`, a literal on the left of a comparison) is refused with a
//! [`ParseError`] naming what is not supported.

use super::{CmpOp, Expr, Operand};
use crate::value::SqlValue;

/// The longest `where` accepted, in bytes.
pub const MAX_WHERE_LEN: usize = 4096;
/// How deeply expressions may nest (parentheses and `NOT`).
const MAX_DEPTH: usize = 32;

/// Why a `where` clause was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Something outside the supported subset.
    #[error(
        "unsupported in where: {what} at byte {at}; supported are comparisons of a column with $n or a literal, IN (...), IS [NOT] NULL, AND, OR, NOT and parentheses"
    )]
    Unsupported {
        /// What was found.
        what: String,
        /// Where, in bytes from the start.
        at: usize,
    },
    /// The clause ended where more was expected.
    #[error("where ends too early: expected {expected}")]
    UnexpectedEnd {
        /// What was expected.
        expected: &'static str,
    },
    /// A string literal or quoted identifier has no closing quote.
    #[error("unterminated quote starting at byte {at}")]
    Unterminated {
        /// Where the quote opens.
        at: usize,
    },
    /// The clause is longer than [`MAX_WHERE_LEN`] or nests deeper than allowed.
    #[error("where is too long or nests too deeply")]
    TooComplex,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Keyword(Keyword),
    Param(usize),
    Literal(SqlValue),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
}

/// Parses `input` into an expression over column names (not yet checked against a table).
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_WHERE_LEN {
        return Err(ParseError::TooComplex);
    }
    let tokens = lex(input)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        len: input.len(),
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some((_, at)) => Err(ParseError::Unsupported {
            what: "text after the end of the expression".into(),
            at: *at,
        }),
    }
}

fn unsupported(what: impl Into<String>, at: usize) -> ParseError {
    ParseError::Unsupported {
        what: what.into(),
        at,
    }
}

fn lex(input: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => tokens.push((Token::LParen, start)),
            b')' => tokens.push((Token::RParen, start)),
            b',' => tokens.push((Token::Comma, start)),
            b'=' => tokens.push((Token::Op(CmpOp::Eq), start)),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                tokens.push((Token::Op(CmpOp::Ne), start));
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 1;
                    tokens.push((Token::Op(CmpOp::Le), start));
                }
                Some(b'>') => {
                    i += 1;
                    tokens.push((Token::Op(CmpOp::Ne), start));
                }
                _ => tokens.push((Token::Op(CmpOp::Lt), start)),
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 1;
                    tokens.push((Token::Op(CmpOp::Ge), start));
                } else {
                    tokens.push((Token::Op(CmpOp::Gt), start));
                }
            }
            b'\'' | b'"' => {
                let (text, end) = quoted(input, i)?;
                i = end;
                let token = if c == b'\'' {
                    Token::Literal(SqlValue::Text(text))
                } else {
                    Token::Ident(text)
                };
                tokens.push((token, start));
                continue;
            }
            b'$' => {
                let digits = input[i + 1..]
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .count();
                let n = input[i + 1..i + 1 + digits]
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| unsupported("a parameter other than $1, $2, ...", start))?;
                i += 1 + digits;
                tokens.push((Token::Param(n), start));
                continue;
            }
            b'-' | b'0'..=b'9' | b'.' => {
                if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
                    return Err(unsupported("a comment", start));
                }
                let len = 1 + input[i + 1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_digit() || *b == b'.')
                    .count();
                let text = &input[i..i + len];
                let value = if let Ok(n) = text.parse::<i64>() {
                    SqlValue::Integer(n)
                } else if let Ok(f) = text.parse::<f64>()
                    && f.is_finite()
                {
                    SqlValue::Real(f)
                } else {
                    return Err(unsupported(format!("`{text}`"), start));
                };
                i += len;
                tokens.push((Token::Literal(value), start));
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len = input[i..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let word = &input[i..i + len];
                i += len;
                let token = match word.to_ascii_uppercase().as_str() {
                    "AND" => Token::Keyword(Keyword::And),
                    "OR" => Token::Keyword(Keyword::Or),
                    "NOT" => Token::Keyword(Keyword::Not),
                    "IN" => Token::Keyword(Keyword::In),
                    "IS" => Token::Keyword(Keyword::Is),
                    "NULL" => Token::Keyword(Keyword::Null),
                    "TRUE" => Token::Literal(SqlValue::Integer(1)),
                    "FALSE" => Token::Literal(SqlValue::Integer(0)),
                    "SELECT" | "UNION" | "LIKE" | "ILIKE" | "GLOB" | "MATCH" | "REGEXP"
                    | "BETWEEN" | "EXISTS" | "CASE" | "CAST" | "COLLATE" | "ESCAPE" => {
                        return Err(unsupported(format!("`{word}`"), start));
                    }
                    _ => Token::Ident(word.to_owned()),
                };
                tokens.push((token, start));
                continue;
            }
            b';' => return Err(unsupported("`;`", start)),
            b'/' if bytes.get(i + 1) == Some(&b'*') => return Err(unsupported("a comment", start)),
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(unsupported(format!("`{ch}`"), start));
            }
        }
        i += 1;
    }
    Ok(tokens)
}

/// The text of the quoted token opening at `start`, and the index after its closing quote; a
/// doubled quote stands for one.
fn quoted(input: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = input.as_bytes()[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        let rest = &input[i..];
        let Some(pos) = rest.bytes().position(|b| b == quote) else {
            return Err(ParseError::Unterminated { at: start });
        };
        text.push_str(&rest[..pos]);
        i += pos + 1;
        if input.as_bytes().get(i) == Some(&quote) {
            text.push(quote as char);
            i += 1;
        } else {
            return Ok((text, i));
        }
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    depth: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len, |(_, at)| *at)
    }

    fn eat_keyword(&mut self, keyword: Keyword) -> bool {
        if self.peek() == Some(&Token::Keyword(keyword)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next(&mut self, expected: &'static str) -> Result<(Token, usize), ParseError> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or(ParseError::UnexpectedEnd { expected })?;
        self.pos += 1;
        Ok(token)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.and()?];
        while self.eat_keyword(Keyword::Or) {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.not()?];
        while self.eat_keyword(Keyword::And) {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword(Keyword::Not) {
            self.nest(|p| p.not().map(|e| Expr::Not(Box::new(e))))
        } else {
            self.primary()
        }
    }

    fn nest<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::TooComplex);
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let (token, at) = self.next("a column or `(`")?;
        match token {
            Token::LParen => self.nest(|p| {
                let expr = p.or()?;
                match p.next("`)`")? {
                    (Token::RParen, _) => Ok(expr),
                    (_, at) => Err(unsupported("a missing `)`", at)),
                }
            }),
            Token::Ident(column) => {
                if self.peek() == Some(&Token::LParen) {
                    return Err(unsupported(
                        format!("the function call `{column}(...)`"),
                        at,
                    ));
                }
                self.predicate(column)
            }
            Token::Literal(_) | Token::Param(_) => Err(unsupported(
                "a value where a column name must be (write the column on the left)",
                at,
            )),
            other => Err(unsupported(describe(&other), at)),
        }
    }

    fn predicate(&mut self, column: String) -> Result<Expr, ParseError> {
        let at = self.at();
        let (token, _) = self.next("a comparison, IN or IS after the column")?;
        match token {
            Token::Op(op) => {
                let value = self.operand()?;
                Ok(Expr::Compare { column, op, value })
            }
            Token::Keyword(Keyword::Is) => {
                let negated = self.eat_keyword(Keyword::Not);
                if self.eat_keyword(Keyword::Null) {
                    Ok(Expr::IsNull { column, negated })
                } else {
                    Err(unsupported(
                        "IS followed by anything but [NOT] NULL",
                        self.at(),
                    ))
                }
            }
            Token::Keyword(Keyword::In) => self.in_list(column, false),
            Token::Keyword(Keyword::Not) => {
                if self.eat_keyword(Keyword::In) {
                    self.in_list(column, true)
                } else {
                    Err(unsupported(
                        "NOT after a column other than NOT IN",
                        self.at(),
                    ))
                }
            }
            other => Err(unsupported(describe(&other), at)),
        }
    }

    fn in_list(&mut self, column: String, negated: bool) -> Result<Expr, ParseError> {
        match self.next("`(` after IN")? {
            (Token::LParen, _) => {}
            (other, at) => return Err(unsupported(describe(&other), at)),
        }
        let mut values = vec![self.operand()?];
        loop {
            match self.next("`,` or `)` in the IN list")? {
                (Token::Comma, _) => values.push(self.operand()?),
                (Token::RParen, _) => break,
                (other, at) => return Err(unsupported(describe(&other), at)),
            }
        }
        Ok(Expr::In {
            column,
            negated,
            values,
        })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.next("a parameter or a literal")? {
            (Token::Param(n), _) => Ok(Operand::Param(n)),
            (Token::Literal(value), _) => Ok(Operand::Literal(value)),
            (Token::Ident(name), at) => Err(unsupported(
                format!("`{name}` where a value must be (comparing two columns is not supported)"),
                at,
            )),
            (Token::Keyword(Keyword::Null), at) => {
                Err(unsupported("a comparison with NULL (use IS NULL)", at))
            }
            (other, at) => Err(unsupported(describe(&other), at)),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Ident(name) => format!("`{name}`"),
        Token::Keyword(k) => format!("`{}`", format!("{k:?}").to_ascii_uppercase()),
        Token::Param(n) => format!("`${n}`"),
        Token::Literal(_) => "a literal".into(),
        Token::Op(_) => "a comparison operator".into(),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(column: &str, op: CmpOp, value: Operand) -> Expr {
        Expr::Compare {
            column: column.into(),
            op,
            value,
        }
    }

    #[test]
    fn comparisons_lists_and_nulls() {
        assert_eq!(
            parse("user_id = $1").expect("parses"),
            cmp("user_id", CmpOp::Eq, Operand::Param(1))
        );
        assert_eq!(
            parse(r#""title" <> 'it''s'"#).expect("parses"),
            cmp(
                "title",
                CmpOp::Ne,
                Operand::Literal(SqlValue::Text("it's".into()))
            )
        );
        assert_eq!(
            parse("id NOT IN (1, -2.5, $3)").expect("parses"),
            Expr::In {
                column: "id".into(),
                negated: true,
                values: vec![
                    Operand::Literal(SqlValue::Integer(1)),
                    Operand::Literal(SqlValue::Real(-2.5)),
                    Operand::Param(3)
                ],
            }
        );
        assert_eq!(
            parse("read_at is not null").expect("parses"),
            Expr::IsNull {
                column: "read_at".into(),
                negated: true
            }
        );
    }

    #[test]
    fn precedence_and_grouping() {
        let parsed = parse("a = 1 OR b = 2 AND NOT (c = 3)").expect("parses");
        let a = cmp("a", CmpOp::Eq, Operand::Literal(SqlValue::Integer(1)));
        let b = cmp("b", CmpOp::Eq, Operand::Literal(SqlValue::Integer(2)));
        let c = cmp("c", CmpOp::Eq, Operand::Literal(SqlValue::Integer(3)));
        assert_eq!(
            parsed,
            Expr::Or(vec![a, Expr::And(vec![b, Expr::Not(Box::new(c))])])
        );
    }

    #[test]
    fn injection_attempts_are_refused_with_a_reason() {
        for (input, names) in [
            ("user_id = 'bob'; DROP TABLE notifications", "`;`"),
            ("user_id = 'a' OR 1=1", "write the column on the left"),
            ("1 = 1", "write the column on the left"),
            ("user_id = 'a' -- comment", "comment"),
            ("user_id = 'a' /* x */", "comment"),
            ("id IN (SELECT id FROM notifications)", "`SELECT`"),
            ("lower(user_id) = 'a'", "function call"),
            ("title LIKE '%a%'", "`LIKE`"),
            ("user_id = user_id", "comparing two columns"),
            ("user_id = $0", "parameter"),
            ("id = 1 + 1", "`+`"),
            ("user_id = NULL", "IS NULL"),
        ] {
            let err = parse(input).expect_err(input).to_string();
            assert!(err.contains(names), "{input}: {err}");
        }
        assert_eq!(
            parse("title = 'open"),
            Err(ParseError::Unterminated { at: 8 })
        );
        assert!(matches!(
            parse("a = "),
            Err(ParseError::UnexpectedEnd { .. })
        ));
        assert_eq!(parse(&"(".repeat(100)), Err(ParseError::TooComplex));
        assert_eq!(
            parse(&"a = 1 AND ".repeat(1000)),
            Err(ParseError::TooComplex)
        );
    }
}
