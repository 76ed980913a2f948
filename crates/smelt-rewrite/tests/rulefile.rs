//! The `.rules` format: shipped files parse, print back, and bad input gets `line:col`.

use smelt_rewrite::{shipped, shipped_names, RewriteError, RuleSet};

#[test]
fn shipped_sets_parse_and_reprint() {
    let mut counts = vec![];
    for name in shipped_names() {
        let set = shipped(name).unwrap();
        assert!(set.rules().count() > 0, "{name} is empty");
        counts.push(format!(
            "{name}: {} rewrites, {} reports",
            set.rewrite_count(),
            set.report_count()
        ));
        // printing gives rule-file text that parses to the same rules
        let text = set.to_string();
        let again: RuleSet = text
            .parse()
            .unwrap_or_else(|e| panic!("{name} reprinted:\n{text}\n{e}"));
        assert_eq!(again.to_string(), text);
    }
    eprintln!("{}", counts.join("\n"));
    assert_eq!(shipped("simplify").unwrap().rewrite_count(), 13);
    assert_eq!(shipped("recognize").unwrap().rewrite_count(), 5);
    assert!(matches!(
        shipped("nope"),
        Err(RewriteError::UnknownSet { .. })
    ));
}

#[test]
fn stages_continuations_and_macros() {
    let err = "
# a comment
[stage first]
a: (mul ?x 1) => ?x   // trailing comment
b: (transpose (transpose ?x {perm=?p}) {perm=?q})
   => (transpose ?x {perm=compose_perm(?p, ?q)})
   if rank(?x) >= 2,
      dtype(?x) == f32
[stage second]
let sq = (mul ?x ?x)
c: (add $sq $sq) => (mul $sq 2)
report d: (| (relu ?x) (sigmoid ?x)) if shape_eq(?x, [2, \"batch\", ?]); e: (neg ?x) => (neg ?x)
"
    .parse::<RuleSet>()
    .map_err(|e| e.to_string())
    .expect_err("`$sq` is not allowed on the right-hand side");
    assert!(
        err.contains(
            "<string>:11:26: `$sq`: named patterns are only allowed on the left-hand side"
        ),
        "{err}"
    );

    let set: RuleSet = "
[stage first]
a: (mul ?x 1) => ?x   // trailing comment
b: (transpose (transpose ?x {perm=?p}) {perm=?q})
   => (transpose ?x {perm=compose_perm(?p, ?q)})
   if rank(?x) >= 2,
      dtype(?x) == f32
[stage second]
let sq = (mul ?x ?x)
c: (add $sq $sq) => (mul (mul ?x ?x) 2)
report d: (| (relu ?x) (sigmoid ?x)) if shape_eq(?x, [2, \"batch\", ?]); e: (neg ?x) => (neg ?x)
"
    .parse()
    .unwrap();
    assert_eq!(set.stages.len(), 2);
    assert_eq!(set.stages[0].rules.len(), 2);
    assert_eq!(set.stages[1].rules.len(), 3);
    assert_eq!(set.rewrite_count(), 4);
    assert_eq!(set.report_count(), 1);
    let b = set.stages[0].rules[1].to_string();
    assert_eq!(b, "b: (transpose (transpose ?x {perm=?p}) {perm=?q}) => (transpose ?x {perm=compose_perm(?p, ?q)}) if rank(?x) >= 2, dtype(?x) == f32");
    assert_eq!(
        set.stages[1].rules[0].to_string(),
        "c: (add (mul ?x ?x) (mul ?x ?x)) => (mul (mul ?x ?x) 2)"
    );
    assert_eq!(set.stages[0].rules[0].origin(), "<string>:3");
}

fn error_of(text: &str) -> String {
    match text.parse::<RuleSet>() {
        Ok(_) => panic!("`{text}` parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_give_line_and_column() {
    let cases: &[(&str, &str)] = &[
        ("a: (mul ?x 1) => ?y", "1:18: `?y` is not bound"),
        (
            "\n\na: (frobnicate ?x) => ?x",
            "3:5: unknown op `frobnicate`",
        ),
        ("a: (mul ?x 1) ?x", "1:15: expected `=>`"),
        ("a: (mul ?x 1 => ?x", "1:14: expected a pattern"),
        (
            "a: ?x => ?x",
            "1:4: the left-hand side must be an op pattern",
        ),
        (
            "a: (mul ?x 1) => ?x if frob(?x)",
            "1:24: unknown condition `frob`",
        ),
        (
            "a: (mul ?x 1) => ?x if rank(?x) = 2",
            "1:33: expected a comparison",
        ),
        (
            "a: (mul ?x 1) => ?x if dtype(?x) == q7",
            "1:37: unknown dtype `q7`",
        ),
        (
            "a: (transpose ?x {perm=?p}) => (relu ?p)",
            "1:38: `?p` is an attribute",
        ),
        (
            "a: (transpose ?x {perm=?p}) => ?x if is_const(?p)",
            "1:47: `?p` is an attribute",
        ),
        (
            "a: (mul ?x 1) => ?x\na: (mul ?x 1) => ?x",
            "2:1: rule `a` is already defined on line 1",
        ),
        (
            "a: (mul ?x \"unterminated) => ?x",
            "1:12: unterminated string",
        ),
        (
            "a: (mul ?x 1) => (relu ?x {alpha=value(?x, ?x)})",
            "1:34: `value` takes 1 argument",
        ),
        (
            "report a: (mul ?x 1) => ?x",
            "1:22: a report rule has no right-hand side",
        ),
        ("a: (mul ?x @) => ?x", "1:12: unexpected character `@`"),
        ("[stage]\n", "1:7: expected a stage name"),
        (
            "a: (| (relu ?x)) => ?x",
            "1:4: `(| ...)` needs at least two alternatives",
        ),
        ("a: (mul $nope 1) => ?x", "1:9: unknown pattern `$nope`"),
        ("a: (const) => ?x", "1:5: `const` cannot appear"),
        (
            "a: (mul ?x 1) => ?x if has_encoding(?x, zip)",
            "1:41: unknown encoding kind `zip`",
        ),
        ("a: (mul ?x [1, [2]]) => ?x", "1:12: expected a pattern"),
        (
            "a: (relu ?x {alpha=[1, \"a\"]}) => ?x",
            "1:20: a list mixes value kinds",
        ),
    ];
    for (text, want) in cases {
        let e = error_of(text);
        assert!(e.contains(want), "`{text}`: got `{e}`, want `{want}`");
        assert!(e.starts_with("<string>:"), "{e}");
    }
}

#[test]
fn from_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("smelt-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mine.rules");
    std::fs::write(&path, "ok: (mul ?x 1) => ?x\nbad: (mul ?x 1) => ?z\n").unwrap();
    let e = RuleSet::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("mine.rules:2:20: `?z` is not bound"), "{e}");
    std::fs::write(&path, "ok: (mul ?x 1) => ?x\n").unwrap();
    let set = RuleSet::from_file(&path).unwrap();
    assert_eq!(set.name, "mine");
    let missing = RuleSet::from_file(dir.join("missing.rules")).unwrap_err();
    assert!(matches!(missing, RewriteError::Io { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn attribute_strings_with_parentheses_and_spaces_round_trip() {
    // Found by the pipeline_parse fuzz target: the printer escapes `(`, `)` and
    // whitespace in attribute strings as `\u{..}`, which the lexer must read back.
    let set: RuleSet = "r: (mul ?a ?b) => (elu ?a {e=\")\", f=\"a b\\tc\"})"
        .parse()
        .unwrap();
    let printed = set.to_string();
    let again: RuleSet = printed
        .parse()
        .unwrap_or_else(|e| panic!("reprinted:\n{printed}\n{e}"));
    assert_eq!(again.to_string(), printed);
    assert!(
        "r: (mul ?a ?b) => (elu ?a {e=\"\\u{zz}\"})"
            .parse::<RuleSet>()
            .is_err(),
        "a bad escape is an error"
    );
}

#[test]
fn rule_files_must_be_regular_and_bounded() {
    let e = RuleSet::from_file("/dev/zero").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let dir = std::env::temp_dir().join(format!("smelt-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.rules");
    std::fs::write(
        &big,
        vec![b'#'; (smelt_rewrite::MAX_RULE_FILE_BYTES + 1) as usize],
    )
    .unwrap();
    let e = RuleSet::from_file(&big).unwrap_err();
    assert!(e.to_string().contains("limited to"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn numbers_that_overflow_are_refused() {
    // Found by the pipeline_parse fuzz target: `1.4E142135` became `inf`, which printed
    // as a name the parser does not read back.
    for text in [
        "r: (div ?x 1.4E142135) => ?x",
        "r: (mul ?x ?y) => (elu ?x {alpha=1e999})",
    ] {
        let e = text.parse::<RuleSet>().unwrap_err();
        assert!(e.to_string().contains("out of range"), "{text}: {e}");
    }
}
