//! `smelt opt --rules FILE`: a user's rewrite, loaded at run time, no recompilation.

use std::path::PathBuf;
use std::process::Command;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smelt-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn smelt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smelt"))
        .args(args)
        .output()
        .unwrap()
}

const MODEL: &str = "graph @g(%x: f32[?b, 4]) -> (f32[?b, 4]) {
  %a = relu(%x) : f32[?b, 4]
  %b = relu(%a) : f32[?b, 4]
  return %b
}
";

#[test]
fn a_rule_file_rewrites_without_recompiling() {
    let dir = temp_dir("rules");
    let model = dir.join("m.smelt");
    let rules = dir.join("mine.rules");
    std::fs::write(&model, MODEL).unwrap();
    std::fs::write(
        &rules,
        "# relu is idempotent\nrelu-relu: (relu (relu ?x)) => (relu ?x)\n",
    )
    .unwrap();
    let out = smelt(&[
        "opt",
        model.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches("relu(").count(), 1, "{stdout}");
    assert!(
        stderr.contains("rules:mine") && stderr.contains("relu-relu fired 1x"),
        "{stderr}"
    );
}

#[test]
fn a_bad_rule_file_is_a_readable_error() {
    let dir = temp_dir("badrules");
    let model = dir.join("m.smelt");
    let rules = dir.join("bad.rules");
    std::fs::write(&model, MODEL).unwrap();
    std::fs::write(&rules, "oops: (relu ?x) =>\n").unwrap();
    let out = smelt(&[
        "opt",
        model.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error:") && stderr.contains("bad.rules"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let missing = smelt(&["opt", model.to_str().unwrap(), "--rules", "/no/such.rules"]);
    assert_eq!(missing.status.code(), Some(1));
}
