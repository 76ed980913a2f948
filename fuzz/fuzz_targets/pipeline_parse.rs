//! Arbitrary text as a pass pipeline and as a `.rules` file.
//!
//! - As a pipeline: [`smelt::Driver::pass_manager`] (parse plus building every pass from
//!   the registry with its options) gives `Ok` or an error, never a panic. A pipeline
//!   that parses prints (`Display`) to text that parses back to the same pipeline.
//! - As a rule file: [`smelt::rewrite::RuleSet::parse`] gives `Ok` or an error with
//!   `line:col`, never a panic. A rule set that parses prints to rule-file text that
//!   parses again and prints identically.
//!
//! `rewrite{rules=PATH}` is parsed but not built, since building it reads the file.
//!
//! The first byte picks the interpretation(s), so one corpus serves both parsers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smelt::ir::pass::parse_pipeline;
use smelt::rewrite::RuleSet;

thread_local! {
    /// One driver (the registry of every shipped pass) for the whole run.
    static DRIVER: smelt::Driver = smelt::Driver::new();
}

fn pipeline(text: &str) {
    let parsed = parse_pipeline(text);
    // `rewrite{rules=PATH}` reads PATH when the pass is built; the fuzzer is not to roam
    // the file system (or read `/dev/zero` forever), so such pipelines are only parsed.
    let reads_files = parsed.as_ref().is_ok_and(|p| {
        p.0.iter()
            .any(|spec| spec.options.iter().any(|(k, _)| k == "rules"))
    });
    if !reads_files {
        DRIVER.with(|d| {
            let _ = d.pass_manager(text);
        });
    }
    if let Ok(p) = parsed {
        let printed = p.to_string();
        let again = parse_pipeline(&printed)
            .unwrap_or_else(|e| panic!("printed pipeline `{printed}` does not parse: {e}"));
        assert_eq!(
            again, p,
            "pipeline `{text}` printed as `{printed}` changes on re-parse"
        );
    }
}

fn rules(text: &str) {
    if let Ok(set) = RuleSet::parse("<fuzz>", text) {
        let printed = set.to_string();
        let again = RuleSet::parse("<fuzz>", &printed)
            .unwrap_or_else(|e| panic!("printed rules do not parse:\n{printed}\n{e}"));
        assert_eq!(
            again.to_string(),
            printed,
            "rules print differently after re-parse"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => pipeline(text),
        1 => rules(text),
        _ => {
            pipeline(text);
            rules(text);
        }
    }
});
