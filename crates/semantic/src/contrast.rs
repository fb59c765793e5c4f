//! Contrastive scoring against example sets, as Sentinel scores an observation: similarity to
//! the rare class's examples against similarity to ordinary ones.

use serde::Deserialize;

use crate::{Embedder, Error, MAX_EXAMPLES, MAX_EXAMPLE_BYTES};

/// The example sets Safeguard ships (`crates/semantic/default-examples.toml`).
pub const DEFAULT_EXAMPLES_TOML: &str = include_str!("../default-examples.toml");

/// One positive example.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What behaviour it shows (`off_platform`, `secrecy`, ...): the explanation a hit
    /// carries.
    pub label: String,
    /// The example text.
    pub text: String,
}

/// Positive examples (labelled) and negative examples.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleSets {
    /// `[[positive]]` tables, each with a `label` and a `text`.
    pub positive: Vec<Example>,
    /// `negative = [...]`, plain texts.
    pub negative: Vec<String>,
}

impl ExampleSets {
    /// Parses and checks example sets: both non-empty, at most [`MAX_EXAMPLES`] each, texts
    /// and labels non-empty and at most [`MAX_EXAMPLE_BYTES`].
    pub fn from_toml(text: &str) -> Result<ExampleSets, Error> {
        let sets: ExampleSets = toml::from_str(text).map_err(|e| Error::Examples(e.to_string()))?;
        for (name, n) in [
            ("positive", sets.positive.len()),
            ("negative", sets.negative.len()),
        ] {
            if n == 0 || n > MAX_EXAMPLES {
                return Err(Error::Examples(format!(
                    "{n} {name} examples; between 1 and {MAX_EXAMPLES} are accepted"
                )));
            }
        }
        let texts = sets
            .positive
            .iter()
            .flat_map(|e| [&e.label, &e.text])
            .chain(&sets.negative);
        for t in texts {
            if t.trim().is_empty() || t.len() > MAX_EXAMPLE_BYTES {
                return Err(Error::Examples(format!(
                    "an example or label of {} bytes; 1 to {MAX_EXAMPLE_BYTES} non-blank bytes \
                     are accepted",
                    t.len()
                )));
            }
        }
        Ok(sets)
    }

    /// The sets in the TOML file at `path`, or the shipped ones when there is none: what
    /// `[risk.semantic] examples` names.
    pub fn from_file(path: Option<&std::path::Path>) -> Result<ExampleSets, Error> {
        let Some(path) = path else {
            return Ok(ExampleSets::default_sets());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Examples(format!("{}: {e}", path.display())))?;
        ExampleSets::from_toml(&text).map_err(|e| match e {
            Error::Examples(m) => Error::Examples(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The shipped sets.
    pub fn default_sets() -> ExampleSets {
        ExampleSets::from_toml(DEFAULT_EXAMPLES_TOML).expect("the shipped examples are valid")
    }
}

/// How one message compares with the example sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Similarity {
    /// `positive - negative`: above 0 when the message is closer to the positive examples.
    pub contrast: f32,
    /// Mean cosine similarity of the `top_k` nearest positive examples.
    pub positive: f32,
    /// Mean cosine similarity of the `top_k` nearest negative examples.
    pub negative: f32,
    /// The label of the nearest positive example.
    pub label: String,
    /// Its text.
    pub example: String,
    /// Its cosine similarity.
    pub nearest: f32,
}

/// A model and the embedded example sets.
#[derive(Debug)]
pub struct Contrast {
    embedder: Embedder,
    positive: Vec<(Example, Vec<f32>)>,
    negative: Vec<Vec<f32>>,
    top_k: usize,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The mean of the `k` largest values (all of them when there are fewer).
fn top_k_mean(mut sims: Vec<f32>, k: usize) -> f32 {
    sims.sort_unstable_by(|a, b| b.total_cmp(a));
    let k = k.clamp(1, sims.len().max(1));
    sims.iter().take(k).sum::<f32>() / k as f32
}

impl Contrast {
    /// Embeds the examples once. `top_k` (at least 1) is how many nearest examples of each
    /// set are averaged: 1 is the nearest only; more smooths over a single odd example.
    pub fn new(embedder: Embedder, sets: &ExampleSets, top_k: usize) -> Result<Contrast, Error> {
        // The fields are public: sets not made by `from_toml` are checked here too.
        if sets.positive.is_empty() || sets.negative.is_empty() {
            return Err(Error::Examples(
                "both the positive and the negative set need at least one example".into(),
            ));
        }
        let texts: Vec<&str> = sets.positive.iter().map(|e| e.text.as_str()).collect();
        let pos = embed_chunked(&embedder, &texts)?;
        let texts: Vec<&str> = sets.negative.iter().map(String::as_str).collect();
        let negative = embed_chunked(&embedder, &texts)?;
        Ok(Contrast {
            embedder,
            positive: sets.positive.iter().cloned().zip(pos).collect(),
            negative,
            top_k: top_k.max(1),
        })
    }

    /// The model.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Scores each message against the example sets, in order.
    pub fn score(&self, texts: &[&str]) -> Result<Vec<Similarity>, Error> {
        let vectors = embed_chunked(&self.embedder, texts)?;
        Ok(vectors.iter().map(|v| self.compare(v)).collect())
    }

    fn compare(&self, v: &[f32]) -> Similarity {
        let pos: Vec<f32> = self.positive.iter().map(|(_, e)| dot(v, e)).collect();
        let (best, nearest) = pos
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, s)| (i, *s))
            .expect("at least one positive example");
        let negative = top_k_mean(
            self.negative.iter().map(|e| dot(v, e)).collect(),
            self.top_k,
        );
        let positive = top_k_mean(pos, self.top_k);
        let (ex, _) = &self.positive[best];
        Similarity {
            contrast: positive - negative,
            positive,
            negative,
            label: ex.label.clone(),
            example: ex.text.clone(),
            nearest,
        }
    }
}

/// Embeds in batches of 32 texts of similar length, in the order given. A batch pads every
/// row to its longest text, and an obfuscated message ("d o n t  t e l l") is several times
/// as many tokens as a plain one, so batching by length keeps short texts from paying for
/// long ones.
fn embed_chunked(embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(32) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        for (&i, v) in chunk.iter().zip(embedder.embed(&batch)?) {
            out[i] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_examples_parse() {
        let s = ExampleSets::default_sets();
        assert!(s.positive.len() >= 12 && s.negative.len() >= 12);
        let labels: std::collections::BTreeSet<&str> =
            s.positive.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            [
                "age_question",
                "gifts",
                "image_request",
                "meeting",
                "off_platform",
                "secrecy"
            ]
        );
    }

    #[test]
    fn bad_example_sets_are_refused() {
        for bad in [
            "",
            "negative = [\"a\"]",
            "negative = []\n[[positive]]\nlabel = \"x\"\ntext = \"y\"",
            "negative = [\"a\"]\n[[positive]]\nlabel = \"x\"\ntext = \"  \"",
            "negative = [\"a\"]\n[[positive]]\nlabel = \"x\"\ntext = \"y\"\nextra = 1",
        ] {
            let e = ExampleSets::from_toml(bad).unwrap_err();
            assert_eq!(e.code(), "semantic_examples_invalid", "{bad:?}: {e}");
        }
        let long = format!(
            "negative = [\"{}\"]\n[[positive]]\nlabel = \"x\"\ntext = \"y\"",
            "a".repeat(MAX_EXAMPLE_BYTES + 1)
        );
        assert!(ExampleSets::from_toml(&long).is_err());
    }

    #[test]
    fn example_files_are_read_and_named_in_errors() {
        assert_eq!(
            ExampleSets::from_file(None).unwrap(),
            ExampleSets::default_sets()
        );
        let dir = std::env::temp_dir().join(format!("sg-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "negative = [\"a\"]\n[[positive]]\nlabel = \"x\"\ntext = \"y\"\n",
        )
        .unwrap();
        let sets = ExampleSets::from_file(Some(&good)).unwrap();
        assert_eq!((sets.positive.len(), sets.negative.len()), (1, 1));
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "negative = []").unwrap();
        for p in [bad, dir.join("missing.toml")] {
            let e = ExampleSets::from_file(Some(&p)).unwrap_err();
            assert_eq!(e.code(), "semantic_examples_invalid");
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn top_k_mean_takes_the_largest() {
        assert_eq!(top_k_mean(vec![0.1, 0.9, 0.5], 2), 0.7);
        assert_eq!(top_k_mean(vec![0.4], 3), 0.4);
        assert_eq!(top_k_mean(vec![0.2, 0.6], 1), 0.6);
    }
}
