//! The NSFW engine: classifies images — the file itself, and images inside archives — with the
//! model `coffer-nsfw` runs, and flags an image whose score for a class reaches the org's
//! threshold. What an org does with the flag (nothing, `flag`, `quarantine`) is its policy; with
//! `off` no image is even decoded. Findings name the class, never the image.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use coffer_nsfw::{Classifier, Limits, Scores};
use serde::{Deserialize, Serialize};

use super::{Engine, Finding, Verdict};

/// What an org does with images the engine flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsfwPolicy {
    /// Images are not classified; nothing is recorded.
    Off,
    /// The verdict `nsfw` with the scores; the file stays downloadable.
    Flag,
    /// As `flag`, and the file is quarantined (as `suspicious` would be).
    Quarantine,
}

impl NsfwPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            NsfwPolicy::Off => "off",
            NsfwPolicy::Flag => "flag",
            NsfwPolicy::Quarantine => "quarantine",
        }
    }

    pub fn parse(s: &str) -> Option<NsfwPolicy> {
        [NsfwPolicy::Off, NsfwPolicy::Flag, NsfwPolicy::Quarantine]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Per class, the score at or above which an image is flagged. `drawing` and `neutral` are safe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub porn: f32,
    pub hentai: f32,
    pub sexy: f32,
}

impl Default for Thresholds {
    /// Explicit content at 0.7; `sexy` (swimwear, lingerie) only when the model is sure.
    fn default() -> Thresholds {
        Thresholds {
            porn: 0.7,
            hentai: 0.7,
            sexy: 0.9,
        }
    }
}

impl Thresholds {
    /// Every threshold in (0, 1]; the first one that is not, by name.
    pub fn check(&self) -> Result<(), &'static str> {
        for (name, v) in [
            ("porn", self.porn),
            ("hentai", self.hentai),
            ("sexy", self.sexy),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(name);
            }
        }
        Ok(())
    }

    fn pairs(&self) -> [(&'static str, f32); 3] {
        [
            ("porn", self.porn),
            ("hentai", self.hentai),
            ("sexy", self.sexy),
        ]
    }
}

/// An org's settings for this engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsfwSettings {
    pub policy: NsfwPolicy,
    pub thresholds: Thresholds,
}

/// The `[scan.nsfw]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NsfwConfig {
    /// The converted model (`models/nsfw/convert.mjs`); none: the engine is off for every org.
    /// A file whose SHA-256 is not the one `coffer-nsfw` records stops the service at start.
    pub model: Option<PathBuf>,
    /// Largest image file classified (bigger ones are left unclassified, `too-large`).
    pub max_image_bytes: u64,
    /// Most images classified in one file (an archive's); the rest are `too-many`.
    pub max_images_per_file: u32,
    /// Decoding limits: widest/tallest side, pixels, bytes the decoder may allocate.
    pub max_side: u32,
    pub max_pixels: u64,
    pub max_alloc_bytes: u64,
    /// What an org that never chose gets.
    pub default_policy: NsfwPolicy,
    pub default_thresholds: Thresholds,
}

impl Default for NsfwConfig {
    fn default() -> NsfwConfig {
        let l = Limits::default();
        NsfwConfig {
            model: None,
            max_image_bytes: 64 << 20,
            max_images_per_file: 100,
            max_side: l.max_side,
            max_pixels: l.max_pixels,
            max_alloc_bytes: l.max_alloc,
            default_policy: NsfwPolicy::Flag,
            default_thresholds: Thresholds::default(),
        }
    }
}

impl NsfwConfig {
    pub fn defaults(&self) -> NsfwSettings {
        NsfwSettings {
            policy: self.default_policy,
            thresholds: self.default_thresholds,
        }
    }
}

/// The loaded model and the limits it decodes under.
#[derive(Debug)]
pub struct Nsfw {
    classifier: Classifier,
    limits: Limits,
    max_bytes: u64,
    max_images: u32,
}

impl Nsfw {
    /// Loads the configured model (none configured: `None`); a wrong file is an error.
    pub fn load(config: &NsfwConfig) -> Result<Option<Nsfw>, coffer_nsfw::ModelError> {
        let Some(path) = &config.model else {
            return Ok(None);
        };
        Ok(Some(Nsfw {
            classifier: Classifier::load(path)?,
            limits: Limits {
                max_side: config.max_side,
                max_pixels: config.max_pixels,
                max_alloc: config.max_alloc_bytes,
            },
            max_bytes: config.max_image_bytes,
            max_images: config.max_images_per_file,
        }))
    }

    /// The model's version (`nsfwjs@4.4.0/mobilenet_v2+sha256:…`).
    pub fn version(&self) -> &str {
        self.classifier.version()
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// Whether bytes starting so are an image the engine reads (JPEG, PNG, GIF, WebP).
pub fn is_image(head: &[u8]) -> bool {
    head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
}

/// What the engine saw in one file (the file itself and its archive members).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsfwSummary {
    pub classified: u32,
    /// Images not classified, by reason (`too-large`, `undecodable`, `unsupported`).
    pub unclassified: BTreeMap<String, u32>,
    /// The scores of the image most likely not safe for work.
    pub scores: Option<Scores>,
}

impl NsfwSummary {
    /// The scores as the report shows them: `{drawing, hentai, neutral, porn, sexy}`.
    pub fn score_map(&self) -> Option<BTreeMap<String, f32>> {
        self.scores
            .map(|s| s.iter().map(|(c, v)| (c.to_owned(), v)).collect())
    }
}

/// One scan's images: classified one by one as they are met, summed up at the end.
pub struct Images<'a> {
    engine: &'a Nsfw,
    thresholds: Thresholds,
    seen: RefCell<(NsfwSummary, Vec<&'static str>)>,
    /// Seconds each classification took.
    took: RefCell<Vec<f64>>,
}

impl<'a> Images<'a> {
    pub fn new(engine: &'a Nsfw, thresholds: Thresholds) -> Images<'a> {
        Images {
            engine,
            thresholds,
            seen: RefCell::new((NsfwSummary::default(), Vec::new())),
            took: RefCell::new(Vec::new()),
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.engine.max_bytes
    }

    /// Whether this file's images are all classified that may be (no reading another then).
    pub fn full(&self) -> bool {
        let seen = self.seen.borrow();
        seen.0.classified + seen.0.unclassified.values().sum::<u32>() >= self.engine.max_images
    }

    /// Whether another image may be classified in this file; counts it `too-many` if not.
    pub fn room(&self) -> bool {
        let mut seen = self.seen.borrow_mut();
        let summary = &mut seen.0;
        let met = summary.classified + summary.unclassified.values().sum::<u32>();
        if met >= self.engine.max_images {
            *summary
                .unclassified
                .entry("too-many".to_owned())
                .or_default() += 1;
            return false;
        }
        true
    }

    /// Classifies one image's bytes (within the file's count of images).
    pub fn check(&self, bytes: &[u8]) {
        if !self.room() {
            return;
        }
        let started = std::time::Instant::now();
        let got = self.engine.classifier.classify(bytes, &self.engine.limits);
        self.took.borrow_mut().push(started.elapsed().as_secs_f64());
        let mut seen = self.seen.borrow_mut();
        let (summary, flagged) = &mut *seen;
        match got {
            Ok(scores) => {
                summary.classified += 1;
                let explicit = |s: &Scores| {
                    ["porn", "hentai", "sexy"]
                        .iter()
                        .filter_map(|c| s.get(c))
                        .fold(0.0f32, f32::max)
                };
                if summary
                    .scores
                    .is_none_or(|top| explicit(&scores) > explicit(&top))
                {
                    summary.scores = Some(scores);
                }
                for (class, threshold) in self.thresholds.pairs() {
                    if scores.get(class).is_some_and(|v| v >= threshold)
                        && !flagged.contains(&class)
                    {
                        flagged.push(class);
                    }
                }
            }
            Err(e) => {
                *summary
                    .unclassified
                    .entry(e.as_str().to_owned())
                    .or_default() += 1
            }
        }
    }

    /// An image too big to read at all.
    pub fn too_large(&self) {
        *self
            .seen
            .borrow_mut()
            .0
            .unclassified
            .entry("too-large".to_owned())
            .or_default() += 1;
    }

    /// Seconds each classification took so far.
    pub fn took(&self) -> Vec<f64> {
        self.took.borrow().clone()
    }

    /// The findings (one per class flagged) and the summary; `None` when no image was met.
    pub fn finish(self, findings: &mut Vec<Finding>) -> Option<NsfwSummary> {
        let (summary, flagged) = self.seen.into_inner();
        for class in flagged {
            findings.push(Finding {
                engine: Engine::Nsfw,
                signature: class.to_owned(),
                verdict: Verdict::Nsfw,
            });
        }
        (summary.classified > 0 || !summary.unclassified.is_empty()).then_some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_first_bytes() {
        assert!(is_image(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(is_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(is_image(b"GIF89a.."));
        assert!(is_image(b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(!is_image(b"RIFF\x10\0\0\0WAVEfmt "));
        assert!(!is_image(b"%PDF-1.7"));
    }

    #[test]
    fn thresholds_must_be_in_zero_to_one() {
        assert!(Thresholds::default().check().is_ok());
        let mut t = Thresholds {
            sexy: 0.0,
            ..Thresholds::default()
        };
        assert_eq!(t.check(), Err("sexy"));
        t.sexy = 1.5;
        assert_eq!(t.check(), Err("sexy"));
        t.sexy = f32::NAN;
        assert_eq!(t.check(), Err("sexy"));
        assert_eq!(
            NsfwPolicy::parse("quarantine"),
            Some(NsfwPolicy::Quarantine)
        );
        assert_eq!(NsfwPolicy::parse("Quarantine"), None);
    }
}
