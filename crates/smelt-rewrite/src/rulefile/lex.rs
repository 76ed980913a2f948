//! The tokens of the `.rules` format, each with its line and column.

// Parsers of untrusted text: no unwrap/expect/panicking indexing on their input.
// Byte indexing stays: every index is behind an explicit `pos < len` check of the
// scanning loop (the `pipeline_parse` fuzz target exercises it).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use crate::cond::Cmp;
use crate::error::ParseError;

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Var(String),
    Num(String),
    Str(String),
    Open(char),
    Close(char),
    Comma,
    Colon,
    Semi,
    Assign,
    Arrow,
    Cmp(Cmp),
    Pipe,
    Question,
    Macro(String),
    Newline,
    Eof,
}

impl Tok {
    /// How an error message names the token.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Var(s) => format!("`?{s}`"),
            Tok::Num(s) => format!("number `{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Open(c) | Tok::Close(c) => format!("`{c}`"),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Semi => "`;`".into(),
            Tok::Assign => "`=`".into(),
            Tok::Arrow => "`=>`".into(),
            Tok::Cmp(c) => format!("`{}`", c.text()),
            Tok::Pipe => "`|`".into(),
            Tok::Question => "`?`".into(),
            Tok::Macro(s) => format!("`${s}`"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
    pub(super) col: usize,
}

/// Split rule-file text into tokens; line ends inside brackets are dropped, so a
/// pattern may span lines.
pub(super) fn lex(source: &str, text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let mut depth = 0usize;
    let mut out = vec![];
    let err = |line, col, msg: String| ParseError {
        source: source.to_string(),
        line,
        col,
        msg,
    };
    while i < chars.len() {
        let c = chars[i];
        let (l0, c0) = (line, col);
        let adv = |n: usize, i: &mut usize, col: &mut usize| {
            *i += n;
            *col += n;
        };
        let push = |out: &mut Vec<Token>, tok| {
            out.push(Token {
                tok,
                line: l0,
                col: c0,
            })
        };
        match c {
            '\n' => {
                if depth == 0 {
                    push(&mut out, Tok::Newline);
                }
                i += 1;
                line += 1;
                col = 1;
            }
            c if c.is_whitespace() => adv(1, &mut i, &mut col),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    adv(1, &mut i, &mut col);
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    adv(1, &mut i, &mut col);
                }
            }
            '(' | '{' | '[' => {
                depth += 1;
                push(&mut out, Tok::Open(c));
                adv(1, &mut i, &mut col);
            }
            ')' | '}' | ']' => {
                depth = depth.saturating_sub(1);
                push(&mut out, Tok::Close(c));
                adv(1, &mut i, &mut col);
            }
            ',' => {
                push(&mut out, Tok::Comma);
                adv(1, &mut i, &mut col);
            }
            ':' => {
                push(&mut out, Tok::Colon);
                adv(1, &mut i, &mut col);
            }
            ';' => {
                push(&mut out, Tok::Semi);
                adv(1, &mut i, &mut col);
            }
            '|' => {
                push(&mut out, Tok::Pipe);
                adv(1, &mut i, &mut col);
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (tok, n) = match (c, next) {
                    ('=', Some('>')) => (Tok::Arrow, 2),
                    ('=', Some('=')) => (Tok::Cmp(Cmp::Eq), 2),
                    ('=', _) => (Tok::Assign, 1),
                    ('!', Some('=')) => (Tok::Cmp(Cmp::Ne), 2),
                    ('<', Some('=')) => (Tok::Cmp(Cmp::Le), 2),
                    ('<', _) => (Tok::Cmp(Cmp::Lt), 1),
                    ('>', Some('=')) => (Tok::Cmp(Cmp::Ge), 2),
                    ('>', _) => (Tok::Cmp(Cmp::Gt), 1),
                    _ => return Err(err(l0, c0, format!("unexpected `{c}`"))),
                };
                push(&mut out, tok);
                adv(n, &mut i, &mut col);
            }
            '?' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                push(
                    &mut out,
                    if name.is_empty() {
                        Tok::Question
                    } else {
                        Tok::Var(name)
                    },
                );
                adv(j - i, &mut i, &mut col);
            }
            '$' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j == i + 1 {
                    return Err(err(l0, c0, "expected a pattern name after `$`".into()));
                }
                push(&mut out, Tok::Macro(chars[i + 1..j].iter().collect()));
                adv(j - i, &mut i, &mut col);
            }
            '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None | Some('\n') => return Err(err(l0, c0, "unterminated string".into())),
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(j + 1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                // `\u{HEX}`: the form the attribute printer writes for
                                // whitespace, control characters and parentheses.
                                Some('u') if chars.get(j + 2) == Some(&'{') => {
                                    let close = chars[j + 3..]
                                        .iter()
                                        .position(|c| *c == '}')
                                        .map(|p| j + 3 + p)
                                        .ok_or_else(|| {
                                            err(l0, c0, "bad `\\u{..}` escape".into())
                                        })?;
                                    let hex: String = chars[j + 3..close].iter().collect();
                                    let ch = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or_else(|| {
                                            err(l0, c0, format!("bad `\\u{{{hex}}}` escape"))
                                        })?;
                                    s.push(ch);
                                    j = close + 1;
                                    continue;
                                }
                                Some(e) => s.push(*e),
                                None => return Err(err(l0, c0, "unterminated string".into())),
                            }
                            j += 2;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            j += 1;
                        }
                    }
                }
                push(&mut out, Tok::Str(s));
                adv(j + 1 - i, &mut i, &mut col);
            }
            c if c.is_ascii_digit()
                || (matches!(c, '-' | '+' | '.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric()
                        || chars[j] == '.'
                        || (matches!(chars[j], '-' | '+') && matches!(chars[j - 1], 'e' | 'E')))
                {
                    j += 1;
                }
                push(&mut out, Tok::Num(chars[i..j].iter().collect()));
                adv(j - i, &mut i, &mut col);
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '-' | '.'))
                {
                    j += 1;
                }
                push(&mut out, Tok::Ident(chars[i..j].iter().collect()));
                adv(j - i, &mut i, &mut col);
            }
            c => return Err(err(l0, c0, format!("unexpected character `{c}`"))),
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}
