//! Rules, stages and rule sets.
//!
//! A [`Rule`] is a named rewrite or report. Rewrites come from rule files (text patterns
//! with the condition vocabulary), from Rust with egg patterns and plain-function
//! conditions ([`Rule::rust`], the [`rule!`](crate::rule) macro), or as raw egg rewrites
//! ([`Rule::from_rewrite`]). A [`RuleSet`] is a list of [`Stage`]s, each saturated in turn.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use egg::{Pattern, Rewrite};

use crate::analysis::IrAnalysis;
use crate::cond::{Cond, RustCond};
use crate::error::RewriteError;
use crate::lang::IrLang;
use crate::pattern::Pat;
use crate::rhs::Rhs;
use crate::rulefile;

/// What a rule does.
#[derive(Clone)]
pub(crate) enum Body {
    /// A text rule: rewrite when `rhs` is given, report the match otherwise.
    Text {
        lhs: Pat,
        rhs: Option<Rhs>,
        conds: Vec<Cond>,
    },
    /// A raw egg rewrite (applied by egg, without the type check).
    Egg(Rewrite<IrLang, IrAnalysis>),
    /// An egg-pattern rule with plain-function conditions, type-checked like text rules.
    Rust {
        lhs: Pattern<IrLang>,
        rhs: Pattern<IrLang>,
        conds: Vec<RustCond>,
    },
}

/// A named rewrite or report rule.
#[derive(Clone)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) body: Body,
    /// Where the rule was defined (`file:line`), for messages.
    pub(crate) origin: String,
}

impl Rule {
    /// A text rule (what rule files contain). `rhs = None` makes a report rule: matches
    /// are recorded as groups, nothing is rewritten.
    pub fn text(name: &str, lhs: Pat, rhs: Option<Rhs>, conds: Vec<Cond>) -> Rule {
        Rule {
            name: name.to_string(),
            body: Body::Text { lhs, rhs, conds },
            origin: "rust".into(),
        }
    }

    /// A rule from egg patterns (`"(mul ?x ?y)"`, ops with attributes written as in
    /// `RecExpr`s: `transpose{perm=[1,0]}`) with conditions that are plain functions of
    /// the e-graph, the matched class and the substitution. The right-hand side is
    /// type-checked before it is added, as for text rules.
    pub fn rust<C>(name: &str, lhs: &str, rhs: &str, conds: Vec<C>) -> Result<Rule, RewriteError>
    where
        C: Fn(&crate::IrEGraph, egg::Id, &egg::Subst) -> bool + Send + Sync + 'static,
    {
        let bad = |what: &str, e: String| RewriteError::Rule {
            rule: name.to_string(),
            msg: format!("{what}: {e}"),
        };
        let lhs: Pattern<IrLang> = lhs
            .parse()
            .map_err(|e| bad("left-hand side", format!("{e}")))?;
        let rhs: Pattern<IrLang> = rhs
            .parse()
            .map_err(|e| bad("right-hand side", format!("{e}")))?;
        let bound = lhs.vars();
        if let Some(v) = rhs.vars().into_iter().find(|v| !bound.contains(v)) {
            return Err(bad(
                "right-hand side",
                format!("{v} is not bound on the left"),
            ));
        }
        let conds = conds
            .into_iter()
            .map(|c| std::sync::Arc::new(c) as RustCond)
            .collect();
        Ok(Rule {
            name: name.to_string(),
            body: Body::Rust { lhs, rhs, conds },
            origin: "rust".into(),
        })
    }

    /// Like [`Rule::rust`] with conditions already boxed (e.g. from [`crate::cond`]'s
    /// `when_*` helpers).
    pub fn rust_boxed(
        name: &str,
        lhs: &str,
        rhs: &str,
        conds: Vec<RustCond>,
    ) -> Result<Rule, RewriteError> {
        let mut r = Rule::rust::<fn(&crate::IrEGraph, egg::Id, &egg::Subst) -> bool>(
            name,
            lhs,
            rhs,
            vec![],
        )?;
        if let Body::Rust { conds: c, .. } = &mut r.body {
            *c = conds;
        }
        Ok(r)
    }

    /// A raw egg rewrite (`egg::rewrite!`). egg applies it directly, so its right-hand
    /// side is not type-checked: the rewritten graph is re-verified instead.
    pub fn from_rewrite(rw: Rewrite<IrLang, IrAnalysis>) -> Rule {
        Rule {
            name: rw.name.to_string(),
            body: Body::Egg(rw),
            origin: "rust".into(),
        }
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the rule was defined: `file:line`, or `rust`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the rule only reports matches.
    pub fn is_report(&self) -> bool {
        matches!(self.body, Body::Text { rhs: None, .. })
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}

/// Text rules print in the rule-file syntax; others print their name and kind.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            Body::Text { lhs, rhs, conds } => {
                if rhs.is_none() {
                    f.write_str("report ")?;
                }
                write!(f, "{}: {lhs}", self.name)?;
                if let Some(r) = rhs {
                    write!(f, " => {r}")?;
                }
                for (i, c) in conds.iter().enumerate() {
                    f.write_str(if i == 0 { " if " } else { ", " })?;
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Body::Egg(rw) => write!(f, "{}: <egg rewrite>", rw.name),
            Body::Rust { lhs, rhs, conds } => write!(
                f,
                "{}: {lhs} => {rhs} [{} conditions]",
                self.name,
                conds.len()
            ),
        }
    }
}

/// Build a [`Rule`] from egg patterns with plain-function conditions:
/// `rule!("name"; "(mul ?x ?y)" => "(mul ?y ?x)" if cond1, cond2)`. Evaluates to a
/// `Result<Rule, RewriteError>`.
#[macro_export]
macro_rules! rule {
    ($name:expr; $lhs:tt => $rhs:tt $(if $($cond:expr),+)?) => {
        $crate::Rule::rust_boxed(
            $name,
            $lhs,
            $rhs,
            vec![$($(::std::sync::Arc::new($cond) as $crate::cond::RustCond),+)?],
        )
    };
}

/// A stage: rules saturated together.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The stage's name (`[stage NAME]` in a rule file; the set's name otherwise).
    pub name: String,
    /// Its rules, rewrites and reports.
    pub rules: Vec<Rule>,
}

/// A rule set: stages saturated one after the other on the same e-graph.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// The set's name.
    pub name: String,
    /// Its stages.
    pub stages: Vec<Stage>,
}

/// The largest `.rules` file [`RuleSet::from_file`] reads.
pub const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

impl RuleSet {
    /// An empty set.
    pub fn new(name: &str) -> RuleSet {
        RuleSet {
            name: name.to_string(),
            stages: vec![],
        }
    }

    /// Parse rule-file text; `source` names it in errors (`line:col` follow).
    pub fn parse(source: &str, text: &str) -> Result<RuleSet, RewriteError> {
        let name = Path::new(source)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(source)
            .trim_matches(['<', '>'])
            .to_string();
        Ok(rulefile::parse(&name, source, text)?)
    }

    /// Read and parse a rule file.
    ///
    /// Only regular files of at most [`MAX_RULE_FILE_BYTES`] are read (a device or a
    /// FIFO named as a rule file would never end).
    pub fn from_file(path: impl AsRef<Path>) -> Result<RuleSet, RewriteError> {
        use std::io::Read;
        let path = path.as_ref();
        let io = |msg: String| RewriteError::Io {
            path: path.display().to_string(),
            msg,
        };
        let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
        if !meta.is_file() {
            return Err(io("not a regular file".into()));
        }
        if meta.len() > MAX_RULE_FILE_BYTES {
            return Err(io(format!(
                "{} bytes: rule files are limited to {MAX_RULE_FILE_BYTES} bytes",
                meta.len()
            )));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(|e| io(e.to_string()))?
            .take(MAX_RULE_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| io(e.to_string()))?;
        if text.len() as u64 > MAX_RULE_FILE_BYTES {
            return Err(io(format!(
                "rule files are limited to {MAX_RULE_FILE_BYTES} bytes"
            )));
        }
        RuleSet::parse(&path.display().to_string(), &text)
    }

    /// Append a rule to the last stage (creating one named after the set if needed).
    pub fn push(&mut self, rule: Rule) -> &mut Self {
        if self.stages.is_empty() {
            self.stages.push(Stage {
                name: self.name.clone(),
                rules: vec![],
            });
        }
        if let Some(s) = self.stages.last_mut() {
            s.rules.push(rule);
        }
        self
    }

    /// Append a stage.
    pub fn add_stage(&mut self, name: &str, rules: Vec<Rule>) -> &mut Self {
        self.stages.push(Stage {
            name: name.to_string(),
            rules,
        });
        self
    }

    /// All rules in stage order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.stages.iter().flat_map(|s| s.rules.iter())
    }

    /// Number of rewrite rules.
    pub fn rewrite_count(&self) -> usize {
        self.rules().filter(|r| !r.is_report()).count()
    }

    /// Number of report rules.
    pub fn report_count(&self) -> usize {
        self.rules().filter(|r| r.is_report()).count()
    }
}

/// Parses rule-file text named `<string>`.
impl FromStr for RuleSet {
    type Err = RewriteError;
    fn from_str(text: &str) -> Result<RuleSet, RewriteError> {
        RuleSet::parse("<string>", text)
    }
}

/// Prints in the rule-file syntax (Rust-only rules as comments).
impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.stages {
            writeln!(f, "[stage {}]", s.name)?;
            for r in &s.rules {
                match r.body {
                    Body::Text { .. } => writeln!(f, "{r}")?,
                    _ => writeln!(f, "# {r}")?,
                }
            }
        }
        Ok(())
    }
}
