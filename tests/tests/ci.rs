//! CI runs what README.md says the tests are: `.ci/run` must call the README's test
//! command, and run a seed block of every shipped scenario.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The command in the README's fenced block right after the line that mentions testing.
fn readme_test_command() -> String {
    let readme = read("README.md");
    let start = readme
        .find("<!-- test-command -->")
        .expect("README marks its test command with <!-- test-command -->");
    let block = &readme[start..];
    let open = block
        .find("```")
        .expect("a fenced block follows the marker");
    let body = &block[open + 3..];
    let body = &body[body.find('\n').expect("fence line ends") + 1..];
    let close = body.find("```").expect("the fence closes");
    body[..close].trim().to_string()
}

#[test]
fn ci_runs_the_readme_test_command() {
    let command = readme_test_command();
    let ci = read(".ci/run");
    assert!(
        ci.contains(&command),
        ".ci/run does not call the README's test command `{command}`"
    );
}

#[test]
fn ci_runs_every_scenario() {
    let script = read("scripts/test");
    assert!(
        script.contains("scenarios/*.toml"),
        "scripts/test must sweep every scenario"
    );
}
