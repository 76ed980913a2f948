//! The `.rules` text format.
//!
//! ```text
//! # comments start with `#` or `//`
//! [stage cleanup]                      # optional: later rules form a new stage
//! transpose-transpose: (transpose (transpose ?x {perm=?p}) {perm=?q})
//!     => (transpose ?x {perm=compose_perm(?p, ?q)})
//! mul-one: (mul ?x 1) => ?x
//! report shift: (mul ?x ?c) if is_pow2_const(?c)
//! ```
//!
//! * A statement is `[report] NAME: LHS [=> RHS] [if COND, ...]`; it ends at the end of
//!   a line (or `;`) once every bracket is closed; a line starting with `=>` or `if`
//!   continues the statement above.
//! * Patterns are s-expressions over the textual IR's op names; `{name=value, ...}` in an
//!   op constrains (left) or sets (right) attributes, `?x` is a variable, `?_` matches
//!   anything, `_` is an omitted input, a number matches a constant whose elements all
//!   equal it, `(out K P)` is output K of a multi-output node, `(| P Q ...)` is any of
//!   the alternatives (left side only).
//! * Right-hand-side attributes may be computed: `compose_perm(?p, ?q)`, `value(?c)`,
//!   `axis(?axes)`.
//! * Conditions are the fixed vocabulary of [`crate::cond::Cond`].
//! * `let NAME = PATTERN` names a left-hand-side pattern for later `$NAME` uses; its
//!   variables are those of the rule using it (the text is spliced in).
//!
//! Errors carry `line:col` of the offending token.

// Parsers of untrusted text: no unwrap/expect/panicking indexing on their input.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod lex;

use std::collections::HashMap;

use smelt_ir::{Attr, DType, OpKind};

use crate::attrs::{list_of, parse_number};
use crate::cond::{Cmp, Cond, DimLit, VOCABULARY};
use crate::error::ParseError;
use crate::lang::op_from_text;
use crate::pattern::{AttrPat, Pat};
use crate::rhs::{AttrExpr, AttrFn, Rhs};
use crate::ruleset::{Body, Rule, RuleSet, Stage};
use lex::{lex, Tok, Token};

/// What a variable stands for, decided by where the left-hand side binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarKind {
    Class,
    Attr,
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    source: &'a str,
    /// `let NAME = PATTERN` definitions: their tokens, spliced in where `$NAME` is used.
    macros: HashMap<String, Vec<Token>>,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    // The lexer always ends the list with `Eof`, so it is never empty and the clamped
    // index is in bounds.
    #[allow(clippy::indexing_slicing)]
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len().saturating_sub(1))]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at<T>(&self, t: &Token, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            source: self.source.to_string(),
            line: t.line,
            col: t.col,
            msg: msg.into(),
        })
    }

    fn expect(&mut self, want: Tok, what: &str) -> PResult<Token> {
        let t = self.next();
        if t.tok == want {
            Ok(t)
        } else {
            self.err_at(&t, format!("expected {what}, found {}", t.tok.describe()))
        }
    }

    /// Skip line ends if the next significant token continues the statement.
    fn continue_with(&mut self, cont: impl Fn(&Tok) -> bool) {
        let mut j = self.pos;
        while self.toks.get(j).is_some_and(|t| t.tok == Tok::Newline) {
            j += 1;
        }
        if self.toks.get(j).is_some_and(|t| cont(&t.tok)) {
            self.pos = j;
        }
    }

    fn file(&mut self, name: &str) -> PResult<RuleSet> {
        let mut set = RuleSet::new(name);
        let mut seen: HashMap<String, usize> = HashMap::new();
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Eof => break,
                Tok::Newline | Tok::Semi => {
                    self.next();
                }
                Tok::Open('[') => {
                    self.next();
                    let kw = self.next();
                    if kw.tok != Tok::Ident("stage".into()) {
                        return self
                            .err_at(&kw, "expected `stage` in a section header `[stage NAME]`");
                    }
                    let n = self.next();
                    let Tok::Ident(stage) = n.tok else {
                        return self.err_at(&n, "expected a stage name");
                    };
                    self.expect(Tok::Close(']'), "`]`")?;
                    self.end_of_statement()?;
                    set.stages.push(Stage {
                        name: stage,
                        rules: vec![],
                    });
                }
                Tok::Ident(kw)
                    if kw == "let"
                        && matches!(
                            self.toks.get(self.pos + 2).map(|t| &t.tok),
                            Some(Tok::Assign)
                        ) =>
                {
                    self.definition()?;
                }
                _ => {
                    let rule = self.statement()?;
                    if let Some(line) = seen.insert(rule.name.clone(), t.line) {
                        return self.err_at(
                            &t,
                            format!("rule `{}` is already defined on line {line}", rule.name),
                        );
                    }
                    set.push(rule);
                }
            }
        }
        Ok(set)
    }

    /// `let NAME = PATTERN`: remember the pattern's tokens. A definition may use earlier
    /// ones only, so expansion always terminates.
    fn definition(&mut self) -> PResult<()> {
        self.next();
        let n = self.next();
        let Tok::Ident(name) = n.tok.clone() else {
            return self.err_at(&n, "expected a pattern name after `let`");
        };
        if self.macros.contains_key(&name) {
            return self.err_at(&n, format!("pattern `${name}` is already defined"));
        }
        self.expect(Tok::Assign, "`=`")?;
        let mut body = vec![];
        while !matches!(self.peek().tok, Tok::Newline | Tok::Semi | Tok::Eof) {
            let t = self.next();
            if let Tok::Macro(m) = &t.tok {
                if !self.macros.contains_key(m) {
                    return self.err_at(
                        &t,
                        format!("unknown pattern `${m}` (define it with `let` before use)"),
                    );
                }
            }
            body.push(t);
        }
        if body.is_empty() {
            return self.err_at(&n, format!("pattern `${name}` is empty"));
        }
        self.macros.insert(name, body);
        Ok(())
    }

    /// Parse the left-hand-side pattern `$name` stands for, with the rule's variables.
    fn expand(&self, at: &Token, name: &str, vars: &mut HashMap<String, VarKind>) -> PResult<Pat> {
        let Some(body) = self.macros.get(name) else {
            return self.err_at(
                at,
                format!("unknown pattern `${name}` (define it with `let` before use)"),
            );
        };
        let mut toks = body.clone();
        toks.push(Token {
            tok: Tok::Eof,
            line: at.line,
            col: at.col,
        });
        let mut sub = Parser {
            toks,
            pos: 0,
            source: self.source,
            macros: self.macros.clone(),
        };
        let p = sub.lhs(vars)?;
        let rest = sub.peek().clone();
        if rest.tok != Tok::Eof {
            return sub.err_at(
                &rest,
                format!("pattern `${name}` has trailing {}", rest.tok.describe()),
            );
        }
        Ok(p)
    }

    fn end_of_statement(&mut self) -> PResult<()> {
        let t = self.next();
        match &t.tok {
            Tok::Newline | Tok::Semi | Tok::Eof => Ok(()),
            other => self.err_at(
                &t,
                format!(
                    "expected the end of the statement, found {}",
                    other.describe()
                ),
            ),
        }
    }

    fn statement(&mut self) -> PResult<Rule> {
        let first = self.next();
        let Tok::Ident(mut name) = first.tok.clone() else {
            return self.err_at(
                &first,
                format!("expected a rule name, found {}", first.tok.describe()),
            );
        };
        let mut report = false;
        if name == "report" && matches!(self.peek().tok, Tok::Ident(_)) {
            report = true;
            let t = self.next();
            if let Tok::Ident(n) = t.tok {
                name = n;
            }
        }
        self.expect(Tok::Colon, "`:` after the rule name")?;
        let mut vars: HashMap<String, VarKind> = HashMap::new();
        let lhs_tok = self.peek().clone();
        let lhs = self.lhs(&mut vars)?;
        if !matches!(lhs, Pat::Op { .. } | Pat::Alt(_) | Pat::Out { .. }) {
            return self.err_at(&lhs_tok, "the left-hand side must be an op pattern");
        }
        self.continue_with(|t| matches!(t, Tok::Arrow) || *t == Tok::Ident("if".into()));
        let rhs = if self.peek().tok == Tok::Arrow {
            let arrow = self.next();
            if report {
                return self.err_at(&arrow, "a report rule has no right-hand side");
            }
            Some(self.rhs(&vars)?)
        } else {
            if !report {
                let t = self.peek().clone();
                return self.err_at(
                    &t,
                    format!(
                        "expected `=>` (or `report` before the name), found {}",
                        t.tok.describe()
                    ),
                );
            }
            None
        };
        self.continue_with(|t| *t == Tok::Ident("if".into()));
        let mut conds = vec![];
        if self.peek().tok == Tok::Ident("if".into()) {
            self.next();
            loop {
                conds.push(self.cond(&vars)?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.next();
                self.continue_with(|_| true);
            }
        }
        self.end_of_statement()?;
        Ok(Rule {
            name,
            body: Body::Text { lhs, rhs, conds },
            origin: format!("{}:{}", self.source, first.line),
        })
    }

    fn bind(
        &self,
        vars: &mut HashMap<String, VarKind>,
        name: &str,
        kind: VarKind,
        at: &Token,
    ) -> PResult<()> {
        match vars.insert(name.to_string(), kind) {
            Some(k) if k != kind => self.err_at(
                at,
                format!("`?{name}` is used both as an operand and as an attribute"),
            ),
            _ => Ok(()),
        }
    }

    fn lhs(&mut self, vars: &mut HashMap<String, VarKind>) -> PResult<Pat> {
        let t = self.next();
        match &t.tok {
            Tok::Var(v) if v == "_" => Ok(Pat::Wild),
            Tok::Var(v) => {
                self.bind(vars, v, VarKind::Class, &t)?;
                Ok(Pat::Var(v.clone()))
            }
            Tok::Ident(s) if s == "_" => Ok(Pat::Absent),
            Tok::Macro(m) => self.expand(&t, m, vars),
            Tok::Num(n) => Ok(Pat::Num(self.number(&t, n)?)),
            Tok::Open('(') => {
                if self.peek().tok == Tok::Pipe {
                    self.next();
                    let mut alts = vec![];
                    while self.peek().tok != Tok::Close(')') {
                        if self.peek().tok == Tok::Eof {
                            let e = self.peek().clone();
                            return self.err_at(&e, "unclosed `(|`");
                        }
                        alts.push(self.lhs(vars)?);
                    }
                    self.next();
                    if alts.len() < 2 {
                        return self.err_at(&t, "`(| ...)` needs at least two alternatives");
                    }
                    return Ok(Pat::Alt(alts));
                }
                let head = self.next();
                let Tok::Ident(op) = &head.tok else {
                    return self.err_at(
                        &head,
                        format!("expected an op name, found {}", head.tok.describe()),
                    );
                };
                if op == "out" {
                    let (index, node) = (self.index()?, self.lhs(vars)?);
                    self.expect(Tok::Close(')'), "`)`")?;
                    return Ok(Pat::Out {
                        index,
                        node: Box::new(node),
                    });
                }
                let op = self.op(&head, op)?;
                let (mut attrs, mut args) = (vec![], vec![]);
                loop {
                    match self.peek().tok {
                        Tok::Close(')') => {
                            self.next();
                            break;
                        }
                        Tok::Open('{') => {
                            for (name, at, value) in self.attr_block(true)? {
                                let ap = match value {
                                    AttrItem::Lit(a) => AttrPat::Lit(a),
                                    AttrItem::Var(v) => {
                                        self.bind(vars, &v, VarKind::Attr, &at)?;
                                        AttrPat::Var(v)
                                    }
                                    AttrItem::Call(..) => return self.err_at(&at, "attribute functions are only allowed on the right-hand side"),
                                };
                                attrs.push((name, ap));
                            }
                        }
                        Tok::Eof => {
                            let e = self.peek().clone();
                            return self.err_at(&e, "unclosed `(`");
                        }
                        _ => args.push(self.lhs(vars)?),
                    }
                }
                Ok(Pat::Op { op, attrs, args })
            }
            other => self.err_at(
                &t,
                format!("expected a pattern, found {}", other.describe()),
            ),
        }
    }

    fn rhs(&mut self, vars: &HashMap<String, VarKind>) -> PResult<Rhs> {
        let t = self.next();
        match &t.tok {
            Tok::Var(v) => match vars.get(v) {
                Some(VarKind::Class) => Ok(Rhs::Var(v.clone())),
                Some(VarKind::Attr) => {
                    self.err_at(&t, format!("`?{v}` is an attribute, not an operand"))
                }
                None => self.err_at(&t, format!("`?{v}` is not bound on the left-hand side")),
            },
            Tok::Ident(s) if s == "_" => Ok(Rhs::Absent),
            Tok::Macro(m) => self.err_at(
                &t,
                format!("`${m}`: named patterns are only allowed on the left-hand side"),
            ),
            Tok::Num(n) => Ok(Rhs::Num(self.number(&t, n)?)),
            Tok::Open('(') => {
                let head = self.next();
                let Tok::Ident(op) = &head.tok else {
                    return self.err_at(
                        &head,
                        format!("expected an op name, found {}", head.tok.describe()),
                    );
                };
                if op == "out" {
                    let (index, node) = (self.index()?, self.rhs(vars)?);
                    self.expect(Tok::Close(')'), "`)`")?;
                    return Ok(Rhs::Out {
                        index,
                        node: Box::new(node),
                    });
                }
                let op = self.op(&head, op)?;
                let (mut attrs, mut args) = (vec![], vec![]);
                loop {
                    match self.peek().tok {
                        Tok::Close(')') => {
                            self.next();
                            break;
                        }
                        Tok::Open('{') => {
                            for (name, at, value) in self.attr_block(false)? {
                                let e = match value {
                                    AttrItem::Lit(a) => AttrExpr::Lit(a),
                                    AttrItem::Var(v) => {
                                        self.attr_var(vars, &v, &at)?;
                                        AttrExpr::Var(v)
                                    }
                                    AttrItem::Call(f, args) => {
                                        for (a, at) in &args {
                                            let want = if f == AttrFn::ComposePerm {
                                                VarKind::Attr
                                            } else {
                                                VarKind::Class
                                            };
                                            match vars.get(a) {
                                                Some(k) if *k == want => {}
                                                Some(_) => {
                                                    return self.err_at(
                                                        at,
                                                        format!(
                                                            "`{}` takes {} variables",
                                                            f.name(),
                                                            if want == VarKind::Attr {
                                                                "attribute"
                                                            } else {
                                                                "operand"
                                                            }
                                                        ),
                                                    )
                                                }
                                                None => {
                                                    return self.err_at(
                                                        at,
                                                        format!(
                                                        "`?{a}` is not bound on the left-hand side"
                                                    ),
                                                    )
                                                }
                                            }
                                        }
                                        AttrExpr::Call(
                                            f,
                                            args.into_iter().map(|(a, _)| a).collect(),
                                        )
                                    }
                                };
                                attrs.push((name, e));
                            }
                        }
                        Tok::Eof => {
                            let e = self.peek().clone();
                            return self.err_at(&e, "unclosed `(`");
                        }
                        _ => args.push(self.rhs(vars)?),
                    }
                }
                Ok(Rhs::Op { op, attrs, args })
            }
            other => self.err_at(
                &t,
                format!("expected a pattern, found {}", other.describe()),
            ),
        }
    }

    fn attr_var(&self, vars: &HashMap<String, VarKind>, v: &str, at: &Token) -> PResult<()> {
        match vars.get(v) {
            Some(VarKind::Attr) => Ok(()),
            Some(VarKind::Class) => {
                self.err_at(at, format!("`?{v}` is an operand, not an attribute"))
            }
            None => self.err_at(at, format!("`?{v}` is not bound on the left-hand side")),
        }
    }

    fn op(&self, at: &Token, name: &str) -> PResult<OpKind> {
        match op_from_text(name) {
            Some(OpKind::Const) => self.err_at(
                at,
                "`const` cannot appear in a pattern; use a number or `is_const`",
            ),
            Some(k) => Ok(k),
            None => self.err_at(at, format!("unknown op `{name}`")),
        }
    }

    fn index(&mut self) -> PResult<usize> {
        let t = self.next();
        match &t.tok {
            Tok::Num(n) => match n.parse::<usize>() {
                Ok(k) => Ok(k),
                Err(_) => self.err_at(&t, format!("`{n}` is not an output index")),
            },
            other => self.err_at(
                &t,
                format!("expected an output index, found {}", other.describe()),
            ),
        }
    }

    fn number(&self, at: &Token, text: &str) -> PResult<f64> {
        match parse_number(text) {
            Some(Attr::Int(i)) => Ok(i as f64),
            // re-parse as f64 so a literal keeps the precision it was written with
            // A literal that overflows to infinity would print as `inf`, which is no
            // number in this format: refuse it here.
            Some(Attr::Float(_)) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => self.err_at(at, format!("number `{text}` is out of range")),
                Err(_) => self.err_at(at, format!("bad number `{text}`")),
            },
            _ => self.err_at(at, format!("bad number `{text}`")),
        }
    }

    fn attr_block(&mut self, lhs: bool) -> PResult<Vec<(String, Token, AttrItem)>> {
        self.next();
        let mut out = vec![];
        if self.peek().tok == Tok::Close('}') {
            self.next();
            return Ok(out);
        }
        loop {
            let n = self.next();
            let Tok::Ident(name) = n.tok.clone() else {
                return self.err_at(
                    &n,
                    format!("expected an attribute name, found {}", n.tok.describe()),
                );
            };
            self.expect(Tok::Assign, "`=` after the attribute name")?;
            let at = self.peek().clone();
            let value = match &at.tok {
                Tok::Var(v) => {
                    self.next();
                    AttrItem::Var(v.clone())
                }
                Tok::Ident(f) if !lhs && AttrFn::from_name(f).is_some() => {
                    self.next();
                    let Some((func, arity)) = AttrFn::from_name(f) else {
                        return self.err_at(&at, format!("unknown function `{f}`"));
                    };
                    self.expect(Tok::Open('('), "`(`")?;
                    let mut args = vec![];
                    while self.peek().tok != Tok::Close(')') {
                        let a = self.next();
                        let Tok::Var(v) = a.tok.clone() else {
                            return self.err_at(
                                &a,
                                format!("`{f}` takes variables, found {}", a.tok.describe()),
                            );
                        };
                        args.push((v, a));
                        if self.peek().tok == Tok::Comma {
                            self.next();
                        }
                    }
                    self.next();
                    if args.len() != arity {
                        return self.err_at(
                            &at,
                            format!("`{f}` takes {arity} argument(s), got {}", args.len()),
                        );
                    }
                    AttrItem::Call(func, args)
                }
                _ => AttrItem::Lit(self.literal()?),
            };
            out.push((name, at, value));
            let t = self.next();
            match &t.tok {
                Tok::Comma => continue,
                Tok::Close('}') => return Ok(out),
                other => {
                    return self.err_at(
                        &t,
                        format!("expected `,` or `}}`, found {}", other.describe()),
                    )
                }
            }
        }
    }

    fn literal(&mut self) -> PResult<Attr> {
        let t = self.next();
        match &t.tok {
            Tok::Num(n) => match parse_number(n) {
                Some(Attr::Float(v)) if !v.is_finite() => {
                    self.err_at(&t, format!("number `{n}` is out of range"))
                }
                Some(a) => Ok(a),
                None => self.err_at(&t, format!("bad number `{n}`")),
            },
            Tok::Str(s) => Ok(Attr::Str(s.clone())),
            Tok::Ident(w) if matches!(w.as_str(), "ints" | "floats" | "strs") => {
                self.expect(Tok::Open('['), "`[`")?;
                self.expect(Tok::Close(']'), "`]`")?;
                Ok(match w.as_str() {
                    "ints" => Attr::Ints(vec![]),
                    "floats" => Attr::Floats(vec![]),
                    _ => Attr::Strs(vec![]),
                })
            }
            Tok::Open('[') => {
                let mut items = vec![];
                while self.peek().tok != Tok::Close(']') {
                    let it = self.peek().clone();
                    let v = self.literal()?;
                    if matches!(v, Attr::Ints(_) | Attr::Floats(_) | Attr::Strs(_)) {
                        return self.err_at(&it, "lists cannot be nested");
                    }
                    items.push(v);
                    match self.peek().tok {
                        Tok::Comma => {
                            self.next();
                        }
                        Tok::Close(']') => {}
                        _ => {
                            let e = self.peek().clone();
                            return self.err_at(
                                &e,
                                format!("expected `,` or `]`, found {}", e.tok.describe()),
                            );
                        }
                    }
                }
                self.next();
                list_of(items).map_or_else(|| self.err_at(&t, "a list mixes value kinds"), Ok)
            }
            other => self.err_at(&t, format!("expected a value, found {}", other.describe())),
        }
    }

    fn cond(&mut self, vars: &HashMap<String, VarKind>) -> PResult<Cond> {
        let head = self.next();
        let Tok::Ident(name) = head.tok.clone() else {
            return self.err_at(
                &head,
                format!("expected a condition, found {}", head.tok.describe()),
            );
        };
        self.expect(Tok::Open('('), "`(` after the condition name")?;
        let mut args: Vec<Token> = vec![];
        let mut dims: Option<Vec<DimLit>> = None;
        while self.peek().tok != Tok::Close(')') {
            let a = self.next();
            match &a.tok {
                Tok::Open('[') => dims = Some(self.dims()?),
                Tok::Var(_) | Tok::Num(_) | Tok::Ident(_) | Tok::Str(_) => args.push(a),
                Tok::Eof | Tok::Newline => return self.err_at(&a, "unclosed `(`"),
                other => {
                    return self.err_at(
                        &a,
                        format!("unexpected {} in a condition", other.describe()),
                    )
                }
            }
            if self.peek().tok == Tok::Comma {
                self.next();
            }
        }
        self.next();
        let class = |p: &Self, i: usize| -> PResult<String> {
            let Some(t) = args.get(i) else {
                return p.err_at(&head, format!("`{name}` needs more arguments"));
            };
            match &t.tok {
                Tok::Var(v) => match vars.get(v) {
                    Some(VarKind::Class) => Ok(v.clone()),
                    Some(VarKind::Attr) => {
                        p.err_at(t, format!("`?{v}` is an attribute, not an operand"))
                    }
                    None => p.err_at(t, format!("`?{v}` is not bound on the left-hand side")),
                },
                other => p.err_at(
                    t,
                    format!("expected a variable, found {}", other.describe()),
                ),
            }
        };
        let attr = |p: &Self, i: usize| -> PResult<String> {
            let Some(t) = args.get(i) else {
                return p.err_at(&head, format!("`{name}` needs more arguments"));
            };
            match &t.tok {
                Tok::Var(v) => p.attr_var(vars, v, t).map(|_| v.clone()),
                other => p.err_at(
                    t,
                    format!("expected a variable, found {}", other.describe()),
                ),
            }
        };
        let arity = |p: &Self, n: usize| -> PResult<()> {
            if args.len() + usize::from(dims.is_some()) == n {
                Ok(())
            } else {
                p.err_at(
                    &head,
                    format!(
                        "`{name}` takes {n} argument(s), got {}",
                        args.len() + usize::from(dims.is_some())
                    ),
                )
            }
        };
        let cond = match name.as_str() {
            "is_const" | "is_scalar" | "is_pow2_const" | "is_float" | "no_zero" | "single_axis" => {
                arity(self, 1)?;
                let x = class(self, 0)?;
                match name.as_str() {
                    "is_const" => Cond::IsConst(x),
                    "is_scalar" => Cond::IsScalar(x),
                    "is_pow2_const" => Cond::IsPow2Const(x),
                    "is_float" => Cond::IsFloat(x),
                    "no_zero" => Cond::NoZero(x),
                    _ => Cond::SingleAxis(x),
                }
            }
            "is_scalar_const" => {
                arity(self, 2)?;
                let x = class(self, 0)?;
                let arg = args.get(1).cloned().unwrap_or_else(|| self.peek().clone());
                let v = match &arg.tok {
                    Tok::Num(n) => self.number(&arg, n)?,
                    other => {
                        return self.err_at(
                            &arg,
                            format!("expected a number, found {}", other.describe()),
                        )
                    }
                };
                Cond::IsScalarConst(x, v)
            }
            "same_shape" | "last_axis" => {
                arity(self, 2)?;
                let (a, b) = (class(self, 0)?, class(self, 1)?);
                if name == "same_shape" {
                    Cond::SameShape(a, b)
                } else {
                    Cond::LastAxis(a, b)
                }
            }
            "same_axis" => {
                arity(self, 3)?;
                Cond::SameAxis(class(self, 0)?, class(self, 1)?, attr(self, 2)?)
            }
            "identity_perm" => {
                arity(self, 1)?;
                Cond::IdentityPerm(attr(self, 0)?)
            }
            "shape_eq" => {
                let x = class(self, 0)?;
                match (args.len(), dims) {
                    (1, Some(d)) => Cond::ShapeEq(x, d),
                    _ => return self.err_at(&head, "`shape_eq` takes a variable and a list of dims: shape_eq(?x, [2, \"batch\", ?])"),
                }
            }
            "has_encoding" => {
                let x = class(self, 0)?;
                match args.get(1).map(|t| &t.tok) {
                    None => Cond::HasEncoding(x, None),
                    Some(Tok::Ident(k)) if args.len() == 2 => {
                        const KINDS: [&str; 7] = [
                            "plain",
                            "blockwise",
                            "sparse24",
                            "shift",
                            "float",
                            "mx",
                            "lowrank",
                        ];
                        if !KINDS.contains(&k.as_str()) {
                            return self.err_at(
                                args.get(1).unwrap_or(&head),
                                format!(
                                    "unknown encoding kind `{k}` (kinds: {})",
                                    KINDS.join(", ")
                                ),
                            );
                        }
                        Cond::HasEncoding(x, Some(k.clone()))
                    }
                    _ => {
                        return self.err_at(
                            &head,
                            "`has_encoding` takes a variable and optionally an encoding kind",
                        )
                    }
                }
            }
            "rank" => {
                arity(self, 1)?;
                let x = class(self, 0)?;
                let op = self.next();
                let Tok::Cmp(cmp) = op.tok else {
                    return self.err_at(&op, "expected a comparison after `rank(...)`");
                };
                let n = self.next();
                let Tok::Num(v) = &n.tok else {
                    return self.err_at(&n, "expected a rank");
                };
                let Ok(v) = v.parse::<usize>() else {
                    return self.err_at(&n, format!("`{v}` is not a rank"));
                };
                Cond::Rank(x, cmp, v)
            }
            "dtype" => {
                arity(self, 1)?;
                let x = class(self, 0)?;
                let op = self.next();
                let eq = match op.tok {
                    Tok::Cmp(Cmp::Eq) => true,
                    Tok::Cmp(Cmp::Ne) => false,
                    _ => return self.err_at(&op, "expected `==` or `!=` after `dtype(...)`"),
                };
                let d = self.next();
                let Tok::Ident(dn) = &d.tok else {
                    return self.err_at(&d, "expected a dtype");
                };
                let Ok(dt) = dn.parse::<DType>() else {
                    return self.err_at(&d, format!("unknown dtype `{dn}`"));
                };
                Cond::DType(x, eq, dt)
            }
            _ => {
                let known: Vec<String> =
                    VOCABULARY.iter().map(|(n, a)| format!("{n}{a}")).collect();
                return self.err_at(
                    &head,
                    format!(
                        "unknown condition `{name}` (conditions: {})",
                        known.join(", ")
                    ),
                );
            }
        };
        Ok(cond)
    }

    fn dims(&mut self) -> PResult<Vec<DimLit>> {
        let mut out = vec![];
        loop {
            let t = self.next();
            match &t.tok {
                Tok::Close(']') => return Ok(out),
                Tok::Num(n) => match n.parse::<u64>() {
                    Ok(k) => out.push(DimLit::Known(k)),
                    Err(_) => return self.err_at(&t, format!("`{n}` is not a dim size")),
                },
                Tok::Str(s) => out.push(DimLit::Sym(s.clone())),
                Tok::Question => out.push(DimLit::Any),
                other => {
                    return self.err_at(
                        &t,
                        format!(
                            "expected a dim (size, \"name\" or ?), found {}",
                            other.describe()
                        ),
                    )
                }
            }
            if self.peek().tok == Tok::Comma {
                self.next();
            }
        }
    }
}

enum AttrItem {
    Lit(Attr),
    Var(String),
    Call(AttrFn, Vec<(String, Token)>),
}

/// Parse rule-file text into a set named `name`; `source` names the text in errors.
pub fn parse(name: &str, source: &str, text: &str) -> Result<RuleSet, ParseError> {
    let toks = lex(source, text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        source,
        macros: HashMap::new(),
    };
    p.file(name)
}
