//! The content engines and how their findings combine into one verdict. Plain code: no tonic, no
//! database. Findings name a rule or a kind of data (`pem-private-key`), never the bytes that
//! matched, so a report may be stored, logged and sent to a webhook without leaking content.

pub mod archive;
pub mod clamd;
pub mod content;
pub mod local;
pub mod nsfw;
pub mod sensitive;
pub mod truetype;
pub mod yara;

use serde::{Deserialize, Serialize};

/// A scan's outcome, from best to worst for the file's owner (the kit's, shared with metadata).
pub use coffer_kit::vocab::Verdict;

/// One engine's finding: what it saw (`signature`) and what that means for the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub engine: Engine,
    pub signature: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Engine {
    Yara,
    Clamav,
    TrueType,
    Archive,
    Sensitive,
    Nsfw,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Yara => "yara-x",
            Engine::Clamav => "clamav",
            Engine::TrueType => "true-type",
            Engine::Archive => "archive",
            Engine::Sensitive => "sensitive-data",
            Engine::Nsfw => "nsfw",
        }
    }
}

/// One engine's line in a report, as the API shows it: `{engine, clean, signature?}`, and for the
/// NSFW engine `scores?` and `unclassified?`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineResult {
    pub engine: String,
    pub clean: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signature: Option<String>,
    /// The NSFW engine's scores (of the image most likely not safe for work), per class.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scores: Option<std::collections::BTreeMap<String, f32>>,
    /// The NSFW engine's images it could not classify, by reason (`too-large`, `undecodable`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unclassified: Option<std::collections::BTreeMap<String, u32>>,
}

/// Most signatures listed per engine; a file that trips more says so with a count.
const MAX_SIGNATURES: usize = 8;

/// Folds findings into one line per engine that ran (clean engines included) and the verdict:
/// the worst finding wins (infected over suspicious over sensitive over nsfw); no finding is
/// clean.
pub fn combine(ran: &[Engine], findings: &[Finding]) -> (Verdict, Vec<EngineResult>) {
    // What the bytes hold outranks a finding that they could not be trusted (`failed`, as bytes
    // other than the uploader declared) when it quarantines anyway: malware with a wrong declared
    // hash stays `infected`. A verdict that may leave the file downloadable (`clean`, `nsfw`)
    // never does: bytes other than declared are never served.
    let content = findings
        .iter()
        .map(|f| f.verdict)
        .filter(|v| *v != Verdict::Failed)
        .max()
        .unwrap_or(Verdict::Clean);
    let verdict =
        if content <= Verdict::Nsfw && findings.iter().any(|f| f.verdict == Verdict::Failed) {
            Verdict::Failed
        } else {
            content
        };
    let mut engines: Vec<Engine> = ran.to_vec();
    engines.extend(findings.iter().map(|f| f.engine));
    engines.sort();
    engines.dedup();
    let results = engines
        .into_iter()
        .map(|engine| {
            let mut sigs: Vec<&str> = findings
                .iter()
                .filter(|f| f.engine == engine)
                .map(|f| f.signature.as_str())
                .collect();
            sigs.sort_unstable();
            sigs.dedup();
            let signature = match sigs.len() {
                0 => None,
                n if n > MAX_SIGNATURES => Some(format!(
                    "{} (+{} more)",
                    sigs[..MAX_SIGNATURES].join(","),
                    n - MAX_SIGNATURES
                )),
                _ => Some(sigs.join(",")),
            };
            EngineResult {
                engine: engine.as_str().to_owned(),
                clean: signature.is_none(),
                signature,
                scores: None,
                unclassified: None,
            }
        })
        .collect();
    (verdict, results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(engine: Engine, sig: &str, verdict: Verdict) -> Finding {
        Finding {
            engine,
            signature: sig.into(),
            verdict,
        }
    }

    #[test]
    fn worst_finding_wins_and_every_engine_that_ran_is_listed() {
        let ran = [Engine::Yara, Engine::TrueType, Engine::Sensitive];
        let (v, r) = combine(&ran, &[]);
        assert_eq!(v, Verdict::Clean);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|e| e.clean && e.signature.is_none()));

        let findings = [
            f(Engine::Sensitive, "iban", Verdict::Sensitive),
            f(Engine::Yara, "executable_pe", Verdict::Suspicious),
            f(Engine::Yara, "eicar_test_file", Verdict::Infected),
            f(Engine::Yara, "eicar_test_file", Verdict::Infected),
        ];
        let (v, r) = combine(&ran, &findings);
        assert_eq!(v, Verdict::Infected);
        let yara = r.iter().find(|e| e.engine == "yara-x").unwrap();
        assert_eq!(
            yara.signature.as_deref(),
            Some("eicar_test_file,executable_pe")
        );
        assert!(r.iter().find(|e| e.engine == "true-type").unwrap().clean);

        let (v, _) = combine(&ran, &[f(Engine::Sensitive, "iban", Verdict::Sensitive)]);
        assert_eq!(v, Verdict::Sensitive);
    }

    #[test]
    fn what_the_bytes_hold_outranks_a_declared_hash_that_does_not_match() {
        let ran = [Engine::Yara, Engine::TrueType, Engine::Sensitive];
        let mismatch = f(
            Engine::TrueType,
            "declared-sha256-mismatch",
            Verdict::Failed,
        );
        let (v, r) = combine(&ran, std::slice::from_ref(&mismatch));
        assert_eq!(
            v,
            Verdict::Failed,
            "clean bytes that are not the ones declared"
        );
        assert!(!r.iter().find(|e| e.engine == "true-type").unwrap().clean);
        let (v, _) = combine(
            &ran,
            &[
                mismatch,
                f(Engine::Yara, "eicar_test_file", Verdict::Infected),
            ],
        );
        assert_eq!(
            v,
            Verdict::Infected,
            "malware behind a wrong hash is still malware"
        );
        // `nsfw` may leave a file downloadable: a wrong hash must not.
        let (v, _) = combine(
            &ran,
            &[
                f(
                    Engine::TrueType,
                    "declared-sha256-mismatch",
                    Verdict::Failed,
                ),
                f(Engine::Nsfw, "porn", Verdict::Nsfw),
            ],
        );
        assert_eq!(v, Verdict::Failed);
    }

    #[test]
    fn many_signatures_are_capped() {
        let findings: Vec<Finding> = (0..20)
            .map(|i| f(Engine::Yara, &format!("r{i:02}"), Verdict::Suspicious))
            .collect();
        let (_, r) = combine(&[Engine::Yara], &findings);
        assert!(r[0].signature.as_deref().unwrap().ends_with("(+12 more)"));
    }

    #[test]
    fn verdict_names_round_trip() {
        for v in [
            Verdict::Clean,
            Verdict::Sensitive,
            Verdict::Suspicious,
            Verdict::Infected,
            Verdict::Failed,
        ] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("CLEAN"), None);
    }
}
