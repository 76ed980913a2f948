//! Typed pass options: each pass declares its options; values from a pipeline string are
//! checked against the declaration before the pass is built.

use std::collections::BTreeMap;

use crate::error::{IrError, IrResult};

/// The type of an option.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionKind {
    /// An integer in an inclusive range.
    Int { min: i64, max: i64 },
    /// A floating-point number.
    Float,
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
}

/// The declaration of one option.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// Option name.
    pub name: &'static str,
    /// Its type.
    pub kind: OptionKind,
    /// The default, as text (`None`: the option has no default and may be omitted).
    pub default: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

impl OptionSpec {
    fn check(&self, pass: &str, value: &str) -> IrResult<()> {
        let bad = |why: String| {
            Err(IrError::Pipeline(format!(
                "pass `{pass}`: option `{}`={value}: {why}",
                self.name
            )))
        };
        match &self.kind {
            OptionKind::Int { min, max } => match value.parse::<i64>() {
                Ok(v) if v >= *min && v <= *max => Ok(()),
                Ok(_) => bad(format!("must be in {min}..={max}")),
                Err(_) => bad("must be an integer".into()),
            },
            OptionKind::Float => match value.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(()),
                _ => bad("must be a finite number".into()),
            },
            OptionKind::Bool => match value {
                "true" | "false" => Ok(()),
                _ => bad("must be true or false".into()),
            },
            OptionKind::Enum(words) => {
                if words.contains(&value) {
                    Ok(())
                } else {
                    bad(format!("must be one of {}", words.join(", ")))
                }
            }
            OptionKind::Str => Ok(()),
        }
    }
}

/// Checked option values for one pass instance, with typed getters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassOptions {
    values: BTreeMap<String, String>,
}

impl PassOptions {
    /// Check `given` against `specs` (unknown names and ill-typed values are errors) and
    /// fill in defaults.
    pub fn resolve(
        pass: &str,
        specs: &[OptionSpec],
        given: &[(String, String)],
    ) -> IrResult<PassOptions> {
        let mut values = BTreeMap::new();
        for (k, v) in given {
            let spec = specs.iter().find(|s| s.name == k).ok_or_else(|| {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                IrError::Pipeline(format!(
                    "pass `{pass}` has no option `{k}` (options: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            spec.check(pass, v)?;
            if values.insert(k.clone(), v.clone()).is_some() {
                return Err(IrError::Pipeline(format!(
                    "pass `{pass}`: option `{k}` given twice"
                )));
            }
        }
        for s in specs {
            if let (false, Some(d)) = (values.contains_key(s.name), s.default) {
                values.insert(s.name.to_string(), d.to_string());
            }
        }
        Ok(PassOptions { values })
    }

    /// The raw text of an option, if set (or defaulted).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An integer option (checked by `resolve`, so parsing cannot fail for declared ones).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name)?.parse().ok()
    }

    /// A float option.
    pub fn float(&self, name: &str) -> Option<f64> {
        self.get(name)?.parse().ok()
    }

    /// A boolean option.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name)?.parse().ok()
    }

    /// All values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
