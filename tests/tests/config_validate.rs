//! `gateway validate` as a user runs it: exit codes 0 / 1 / 2, text and JSON
//! findings with code, file, line, resource and field path.

use std::path::PathBuf;
use std::process::Command;

use gateway_tests::gateway_process::gateway_bin;

fn fixtures(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).join(rel)
}

fn validate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(gateway_bin()).arg("validate").args(args).output().expect("run gateway validate");
    (
        out.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_fixtures_and_the_bundled_examples_validate_clean() {
    let examples = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));
    for (dir, labels) in [
        (fixtures("istio/good/v1"), "istio=ingressgateway"),
        (fixtures("istio/good/v1beta1"), "istio=ingressgateway"),
        (fixtures("istio/good/v1alpha3"), "istio=ingressgateway"),
        (examples, "istio=egressgateway"),
    ] {
        let (code, out, err) = validate(&[dir.to_str().unwrap(), "--labels", labels]);
        assert_eq!(code, 0, "{}: {out}{err}", dir.display());
        assert!(out.contains("0 error(s), 0 warning(s)"), "{}: {out}", dir.display());
    }
}

#[test]
fn a_broken_file_exits_1_with_a_precise_json_finding() {
    let file = fixtures("istio/broken/02-unknown-field.yaml");
    let (code, out, err) = validate(&[file.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let errors: Vec<&serde_json::Value> =
        doc["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").collect();
    assert_eq!(errors.len(), 1, "{out}");
    let f = errors[0];
    assert_eq!(f["code"], "GW1001", "{f}");
    assert_eq!(f["line"], 16, "{f}");
    assert_eq!(f["field"], "spec.servers[0].tlsMode", "{f}");
    assert_eq!(f["resource"]["kind"], "Gateway", "{f}");
    assert_eq!(f["resource"]["name"], "hello-gateway", "{f}");
    assert!(f["file"].as_str().unwrap().ends_with("02-unknown-field.yaml"), "{f}");
    assert_eq!(doc["errors"], 1, "{out}");
}

#[test]
fn every_file_of_the_broken_corpus_is_reported_in_one_run() {
    let (code, out, _) = validate(&[fixtures("istio/broken").to_str().unwrap()]);
    assert_eq!(code, 1);
    let expected = std::fs::read_to_string(fixtures("istio/broken/expected.txt")).expect("expected.txt");
    for line in expected.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let file = line.split_whitespace().next().unwrap();
        assert!(out.contains(file), "no finding for {file} in a whole-directory run:\n{out}");
    }
}

#[test]
fn unreadable_input_exits_2_and_output_into_a_closed_pipe_does_not_panic() {
    let (code, _, err) = validate(&["/nonexistent/gateway-config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/gateway-config"), "{err}");
    // `gateway validate … | head -1`: the pipe closes early.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' validate '{}' | head -1 >/dev/null; echo ${{PIPESTATUS:-}}", gateway_bin().display(), fixtures("istio/broken").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
