//! Pipeline strings: `name{key=value,...},name2`.

// Parsers of untrusted text: no unwrap/expect/panicking indexing on their input.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::fmt;

use crate::error::{IrError, IrResult};

/// One pass in a pipeline with its options as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassSpec {
    /// Registered pass name.
    pub name: String,
    /// `key=value` options in the order written.
    pub options: Vec<(String, String)>,
}

/// A parsed pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pipeline(pub Vec<PassSpec>);

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&p.name)?;
            if !p.options.is_empty() {
                f.write_str("{")?;
                for (j, (k, v)) in p.options.iter().enumerate() {
                    if j > 0 {
                        f.write_str(",")?;
                    }
                    // Unquoted values are trimmed when parsed: keep edge whitespace quoted.
                    let plain = !v.is_empty()
                        && v.trim() == v
                        && v.chars().all(|c| !matches!(c, ',' | '{' | '}' | '"' | '='));
                    if plain {
                        write!(f, "{k}={v}")?;
                    } else {
                        write!(
                            f,
                            "{k}=\"{}\"",
                            v.replace('\\', "\\\\").replace('"', "\\\"")
                        )?;
                    }
                }
                f.write_str("}")?;
            }
        }
        Ok(())
    }
}

/// Parse a pipeline string. Errors give the character offset.
pub fn parse_pipeline(text: &str) -> IrResult<Pipeline> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let err = |at: usize, msg: &str| IrError::Pipeline(format!("{msg} at offset {at} in `{text}`"));
    let skip_ws = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    let ident = |i: &mut usize| -> String {
        let start = *i;
        while chars
            .get(*i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            *i += 1;
        }
        chars.get(start..*i).unwrap_or(&[]).iter().collect()
    };
    let mut passes = vec![];
    skip_ws(&mut i);
    if i == chars.len() {
        return Ok(Pipeline(passes));
    }
    loop {
        skip_ws(&mut i);
        let name = ident(&mut i);
        if name.is_empty() {
            return Err(err(i, "expected a pass name"));
        }
        let mut options = vec![];
        skip_ws(&mut i);
        if chars.get(i) == Some(&'{') {
            i += 1;
            skip_ws(&mut i);
            if chars.get(i) == Some(&'}') {
                i += 1;
            } else {
                loop {
                    skip_ws(&mut i);
                    let key = ident(&mut i);
                    if key.is_empty() {
                        return Err(err(i, "expected an option name"));
                    }
                    skip_ws(&mut i);
                    if chars.get(i) != Some(&'=') {
                        return Err(err(i, "expected `=`"));
                    }
                    i += 1;
                    skip_ws(&mut i);
                    let value = if chars.get(i) == Some(&'"') {
                        i += 1;
                        let mut v = String::new();
                        loop {
                            match chars.get(i) {
                                None => return Err(err(i, "unterminated string")),
                                Some('"') => {
                                    i += 1;
                                    break;
                                }
                                Some('\\') => {
                                    let c = chars
                                        .get(i + 1)
                                        .ok_or_else(|| err(i, "unterminated string"))?;
                                    v.push(*c);
                                    i += 2;
                                }
                                Some(c) => {
                                    v.push(*c);
                                    i += 1;
                                }
                            }
                        }
                        v
                    } else {
                        let start = i;
                        while chars
                            .get(i)
                            .is_some_and(|c| !matches!(c, ',' | '}' | '{' | '=' | '"'))
                        {
                            i += 1;
                        }
                        chars
                            .get(start..i)
                            .unwrap_or(&[])
                            .iter()
                            .collect::<String>()
                            .trim()
                            .to_string()
                    };
                    if value.is_empty() {
                        return Err(err(i, &format!("option `{key}` has no value")));
                    }
                    options.push((key, value));
                    skip_ws(&mut i);
                    match chars.get(i) {
                        Some(',') => i += 1,
                        Some('}') => {
                            i += 1;
                            break;
                        }
                        _ => return Err(err(i, "expected `,` or `}`")),
                    }
                }
            }
        }
        passes.push(PassSpec { name, options });
        skip_ws(&mut i);
        match chars.get(i) {
            None => return Ok(Pipeline(passes)),
            Some(',') => i += 1,
            Some(_) => return Err(err(i, "expected `,` between passes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p = parse_pipeline(
            "fold-constants, dce,blockwise-quant{weights=4, block=64,layers=\"a,b\"}",
        )
        .unwrap();
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.0[2].options[2], ("layers".to_string(), "a,b".to_string()));
        assert_eq!(
            p.to_string(),
            "fold-constants,dce,blockwise-quant{weights=4,block=64,layers=\"a,b\"}"
        );
        assert_eq!(parse_pipeline(&p.to_string()).unwrap(), p);
        assert!(parse_pipeline("").unwrap().0.is_empty());
    }

    #[test]
    fn values_with_edge_whitespace_stay_quoted() {
        // Found by the pipeline_parse fuzz target: unquoted values are trimmed.
        let p = parse_pipeline("a{k=\" x\",m=\"y \"}").unwrap();
        assert_eq!(p.0[0].options[0].1, " x");
        assert_eq!(p.to_string(), "a{k=\" x\",m=\"y \"}");
        assert_eq!(parse_pipeline(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn errors_point_at_the_problem() {
        for bad in [
            "dce,", "dce{", "dce{a}", "dce{a=}", "dce{a=1", "a b", ",", "x{a=\"b}",
        ] {
            let e = parse_pipeline(bad).unwrap_err().to_string();
            assert!(e.contains("offset"), "{bad}: {e}");
        }
    }
}
