//! The NSFW image classifier of the scan service: the MobileNetV2 that the npm package `nsfwjs`
//! ships, run by a forward pass written here (eleven layer kinds, each a few loops; the 1×1
//! convolutions that carry most of the work go through `ndarray`'s sgemm), after decoding and
//! resizing exactly as the package's own code does (pixels ÷ 255, then TensorFlow.js's bilinear
//! resize to 224×224 with aligned corners).
//!
//! The model file is made from the package by `models/nsfw/convert.mjs` and must hash to
//! [`MODEL_SHA256`]: any other file is refused. Plain code: no I/O but reading that file.
//!
//! Why a forward pass of our own rather than `candle` or `tract`: the model is a Keras graph in
//! TensorFlow.js's format, which neither reads (tract wants ONNX or TF protobuf, and converting
//! needs Python TensorFlow, not available here; candle has no Keras loader), while its eleven
//! layer kinds are a few hundred lines; the heavy part, the 1×1 convolutions, is one sgemm call
//! each through `ndarray` (matrixmultiply: pure Rust, no BLAS to link). It adds two small crates
//! where candle would add dozens, and it runs at the speed BENCHMARKS.md records.

mod error;
mod model;
mod net;
pub mod picture;

pub use error::ModelError;
pub use model::Classifier;
pub use picture::{ImageError, Input, Limits, prepare};

/// The package and model the engine runs (what a verdict records and re-scans follow).
pub const MODEL_SOURCE: &str = "nsfwjs@4.4.0/mobilenet_v2";

/// The SHA-256 of the converted model file (`models/nsfw/convert.mjs` on [`MODEL_SOURCE`]).
pub const MODEL_SHA256: &str = "aa270c9c28327ecad71974af1b90710916e3678e997c006119533e68e2fd9180";

/// The model's classes, in its output's order.
pub const CLASSES: [&str; 5] = ["drawing", "hentai", "neutral", "porn", "sexy"];

/// The model's input: a square of this many pixels a side.
pub const INPUT_SIZE: usize = 224;

/// One image's probabilities, in [`CLASSES`] order; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores(pub [f32; 5]);

impl Scores {
    /// The score of a class by name (`None` for an unknown one).
    pub fn get(&self, class: &str) -> Option<f32> {
        CLASSES.iter().position(|c| *c == class).map(|i| self.0[i])
    }

    /// `(class, score)` pairs in [`CLASSES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f32)> + '_ {
        CLASSES.iter().copied().zip(self.0.iter().copied())
    }
}
