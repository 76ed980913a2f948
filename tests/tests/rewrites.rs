//! Snapshot tests of rewrites: every `tests/rewrites/<pass>/*.smelt` file is a list of
//! cases (`// RUN: <pipeline>` header, `// -----` between cases, `// ERROR: <text>` for an
//! expected failure); the output IR of each case is checked against an insta snapshot.
//! Review changes with `cargo insta review`. The runner is `smelt::testing`, the same one
//! users get for their own passes.

#[test]
fn rewrite_snapshots() {
    smelt::rewrite_file_tests!("../rewrites", "**/*.smelt");
}
