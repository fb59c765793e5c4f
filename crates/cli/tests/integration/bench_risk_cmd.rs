//! `safeguard bench contact` and `safeguard bench risk` on small generated streams: the
//! report's shape, the seed's determinism, the exit status against `--min-rate`, and the
//! `[risk]` table of a configuration file.

use std::process::Command;

fn safeguard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(args)
        .output()
        .unwrap()
}

const SMALL: [&str; 4] = ["--risky", "40", "--benign", "200"];

#[test]
fn bench_contact_reports_precision_recall_and_false_alerts() {
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "contact", "--json"];
        args.extend_from_slice(&SMALL);
        args.extend_from_slice(extra);
        let out = safeguard(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let r = run(&[]);
    assert_eq!(r["risky"], 40);
    assert_eq!(r["benign"], 200);
    for t in ["review", "alert"] {
        for m in ["precision", "recall", "f05"] {
            let v = r[t][m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{t}.{m} = {v}");
        }
    }
    assert!(r["review"]["recall"].as_f64().unwrap() > 0.5, "{r:#}");
    assert!(r["false_alert_rate"].as_f64().unwrap() < 0.05, "{r:#}");
    // The same seed, the same figures; the table form prints them too.
    assert_eq!(run(&[]), r);
    let out = safeguard(&["bench", "contact", "--risky", "40", "--benign", "200"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("precision") && text.contains("false-alert rate"),
        "{text}"
    );
}

#[test]
fn bench_contact_reads_the_risk_table_of_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("safeguard.toml");
    // Thresholds nothing reaches: nothing is flagged.
    std::fs::write(&path, "[risk]\nreview = 100.0\nalert = 200.0\n").unwrap();
    let mut args = vec![
        "bench",
        "contact",
        "--json",
        "--config",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(&SMALL);
    let out = safeguard(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["review"]["true_positives"], 0);
    assert_eq!(r["review"]["false_positives"], 0);
    std::fs::write(&path, "[risk]\nreview = 3.0\nalert = 1.0\n").unwrap();
    let out = safeguard(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alert"));
}

#[test]
fn bench_risk_checks_the_rate() {
    let mut args = vec!["bench", "risk", "--min-events", "20000", "--min-rate", "1"];
    args.extend_from_slice(&SMALL);
    let out = safeguard(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("events/s") && text.contains("PASS"), "{text}");
    let mut args = vec![
        "bench",
        "risk",
        "--min-events",
        "20000",
        "--min-rate",
        "1e12",
    ];
    args.extend_from_slice(&SMALL);
    let out = safeguard(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL"));
}

/// The model `scripts/setup` installs (or `SAFEGUARD_SEMANTIC_MODEL`); a skip with a message
/// without it, a failure under `CI=true`.
fn semantic_model() -> Option<String> {
    let dir = safeguard_semantic::setup_model_dir();
    if dir.join("model.safetensors").exists() {
        return Some(dir.display().to_string());
    }
    let msg = format!("no sentence-embedding model at {}", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and bench contact --semantic-model cannot be tested: {msg}");
    }
    eprintln!("SKIPPED: bench contact --semantic-model: {msg} (run scripts/setup)");
    None
}

#[test]
fn bench_contact_with_the_semantic_model_scores_the_stream_twice() {
    let Some(model) = semantic_model() else {
        return;
    };
    let mut args = vec!["bench", "contact", "--json", "--paraphrased", "0.5"];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(&["--semantic-model", &model]);
    let out = safeguard(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &r["semantic"];
    let (candidates, flagged) = (
        s["candidates"].as_u64().unwrap(),
        s["flagged"].as_u64().unwrap(),
    );
    // Paraphrased requests are found, and only in risky accounts' messages.
    assert!(candidates > 0 && flagged > 0, "{s:#}");
    assert_eq!(s["flagged_risky"], s["flagged"], "{s:#}");
    assert!(s["messages_per_second"].as_f64().unwrap() > 0.0);
    let recall = |v: &serde_json::Value| v["review"]["recall"].as_f64().unwrap();
    assert!(recall(&s["report"]) >= recall(&r), "{r:#}");
    assert_eq!(
        s["report"]["review"]["false_positives"], r["review"]["false_positives"],
        "{r:#}"
    );
    // Without the model the same stream has no `semantic` object; a share outside 0..1 is
    // refused.
    let mut args = vec!["bench", "contact", "--json", "--paraphrased", "0.5"];
    args.extend_from_slice(&SMALL);
    let plain: serde_json::Value = serde_json::from_slice(&safeguard(&args).stdout).unwrap();
    assert!(plain.get("semantic").is_none());
    assert_eq!(plain["review"], r["review"]);
    let out = safeguard(&["bench", "contact", "--paraphrased", "1.5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("paraphrased"));
}
