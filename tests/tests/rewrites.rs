//! Snapshot tests of rewrites: every `tests/rewrites/<pass>/*.smelt` file is a list of
//! cases (`// RUN: <pipeline>` header, `// -----` between cases); the output IR of each
//! case is checked against an insta snapshot. Review changes with `cargo insta review`.

use smelt_tests::{run_rewrite_case, split_cases};

#[test]
fn rewrite_snapshots() {
    insta::glob!("../rewrites", "**/*.smelt", |path| {
        let text = std::fs::read_to_string(path).expect("readable test file");
        let cases = split_cases(&text);
        assert!(!cases.is_empty(), "{} has no cases", path.display());
        let mut out = String::new();
        for (i, (pipeline, case)) in cases.iter().enumerate() {
            assert!(
                !pipeline.is_empty(),
                "{} case {i} has no // RUN: line",
                path.display()
            );
            if i > 0 {
                out.push_str("// -----\n");
            }
            out.push_str(&format!("// RUN: {pipeline}\n"));
            out.push_str(&run_rewrite_case(pipeline, case));
        }
        insta::assert_snapshot!(out);
    });
}
