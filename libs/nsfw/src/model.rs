//! The model file: checked against [`crate::MODEL_SHA256`], its graph read from the metadata and
//! planned into a list of steps, each batch normalisation folded into the convolution before it
//! and each ReLU6 fused into the step it follows.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ModelError;
use crate::net::{self, Activation, Conv, Dense, Depthwise, Padding, Tensor};
use crate::picture::{self, ImageError, Input, Limits};
use crate::{INPUT_SIZE, MODEL_SHA256, MODEL_SOURCE, Scores};

fn format(what: impl std::fmt::Display) -> ModelError {
    ModelError::Format(what.to_string())
}

/// One layer as `models/nsfw/convert.mjs` writes it.
#[derive(Debug, Deserialize)]
struct Layer {
    name: String,
    op: String,
    inputs: Vec<String>,
    #[serde(default)]
    padding: Option<serde_json::Value>,
    #[serde(default)]
    kernel_size: Option<[usize; 2]>,
    #[serde(default)]
    strides: Option<[usize; 2]>,
    #[serde(default)]
    dilation_rate: Option<[usize; 2]>,
    #[serde(default)]
    activation: Option<String>,
    #[serde(default)]
    use_bias: Option<bool>,
    #[serde(default)]
    depth_multiplier: Option<usize>,
    #[serde(default)]
    epsilon: Option<f64>,
    #[serde(default)]
    center: Option<bool>,
    #[serde(default)]
    scale: Option<bool>,
    #[serde(default)]
    max_value: Option<f64>,
    #[serde(default)]
    negative_slope: Option<f64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    pool_size: Option<[usize; 2]>,
    #[serde(default)]
    shape: Option<Vec<Option<usize>>>,
}

#[derive(Debug, Deserialize)]
struct Graph {
    layers: Vec<Layer>,
    output: Vec<String>,
}

#[derive(Debug)]
enum Op {
    Conv(Conv),
    Depthwise(Depthwise),
    Pad([usize; 4]),
    Affine {
        a: Vec<f32>,
        b: Vec<f32>,
        clamp: net::Clamp,
    },
    Clamp(f32, f32),
    Add,
    AvgPool {
        pool: (usize, usize),
        strides: (usize, usize),
    },
    Flatten,
    Dense(Dense),
}

#[derive(Debug)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    out: usize,
}

/// The classifier: the planned network, ready to run on any number of threads at once.
#[derive(Debug)]
pub struct Classifier {
    steps: Vec<Step>,
    input: usize,
    output: usize,
    values: usize,
    /// How many steps read each value (to free it after its last reader).
    readers: Vec<usize>,
    version: String,
}

struct Weights<'a>(SafeTensors<'a>);

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let t = self
            .0
            .tensor(name)
            .map_err(|e| format(format_args!("{name}: {e}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(format(format_args!(
                "{name}: {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>, ModelError> {
        Ok(self
            .0
            .tensor(name)
            .map_err(|e| format(format_args!("{name}: {e}")))?
            .shape()
            .to_vec())
    }
}

fn padding(layer: &Layer) -> Result<Padding, ModelError> {
    match layer.padding.as_ref().and_then(|p| p.as_str()) {
        Some("same") => Ok(Padding::Same),
        Some("valid") => Ok(Padding::Valid),
        other => Err(format(format_args!("{}: padding {other:?}", layer.name))),
    }
}

fn square_stride(layer: &Layer) -> Result<usize, ModelError> {
    match layer.strides {
        Some([a, b]) if a == b && a > 0 => Ok(a),
        other => Err(format(format_args!("{}: strides {other:?}", layer.name))),
    }
}

fn linear(layer: &Layer) -> Result<(), ModelError> {
    if layer.dilation_rate.is_some_and(|d| d != [1, 1]) {
        return Err(format(format_args!("{}: dilation", layer.name)));
    }
    match layer.activation.as_deref() {
        Some("linear") | None => Ok(()),
        Some(a) => Err(format(format_args!("{}: activation {a}", layer.name))),
    }
}

impl Classifier {
    /// Loads the model file, refusing one whose SHA-256 is not [`MODEL_SHA256`].
    pub fn load(path: &Path) -> Result<Classifier, ModelError> {
        let bytes = std::fs::read(path)?;
        let got = Sha256::digest(&bytes);
        let got: String = got.iter().map(|b| format!("{b:02x}")).collect();
        if got != MODEL_SHA256 {
            return Err(ModelError::Hash { got });
        }
        Classifier::from_bytes(&bytes, &got)
    }

    fn from_bytes(bytes: &[u8], sha256: &str) -> Result<Classifier, ModelError> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("coffer-nsfw/1") {
            return Err(format("not a coffer-nsfw/1 file"));
        }
        let graph: Graph =
            serde_json::from_str(meta.get("graph").ok_or_else(|| format("no graph"))?)
                .map_err(format)?;
        let weights = Weights(SafeTensors::deserialize(bytes).map_err(format)?);
        let mut plan = Planner::new(&graph)?;
        for layer in &graph.layers {
            plan.layer(layer, &weights)?;
        }
        let [output] = graph.output.as_slice() else {
            return Err(format("one output expected"));
        };
        let output = *plan
            .value
            .get(output.as_str())
            .ok_or_else(|| format("the output is no layer"))?;
        let input = plan.input.ok_or_else(|| format("no input layer"))?;
        let mut readers = vec![0; plan.next];
        for s in &plan.steps {
            for i in &s.inputs {
                readers[*i] += 1;
            }
        }
        let classifier = Classifier {
            steps: plan.steps,
            input,
            output,
            values: plan.next,
            readers,
            version: format!("{MODEL_SOURCE}+sha256:{}", &sha256[..12]),
        };
        // The package's own load runs the model once on zeros; here that also proves every
        // shape fits, so `classify` can never meet a shape error.
        let out = classifier.forward(Tensor::zeros(INPUT_SIZE, INPUT_SIZE, 3))?;
        if out.data.len() != crate::CLASSES.len() {
            return Err(ModelError::Shape("the output is not five classes"));
        }
        Ok(classifier)
    }

    /// `nsfwjs@4.4.0/mobilenet_v2+sha256:<first 12 hex digits>`: what a verdict records.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Decodes an image (within `limits`) and classifies it.
    pub fn classify(&self, bytes: &[u8], limits: &Limits) -> Result<Scores, ImageError> {
        let input = picture::prepare(bytes, limits)?;
        Ok(self.classify_input(input))
    }

    /// Classifies a prepared input.
    pub fn classify_input(&self, input: Input) -> Scores {
        let mut scores = [0.0; 5];
        // The load ran this network on an input of this shape: no shape error is possible.
        if let Ok(out) = self.forward(input.0) {
            for (s, v) in scores.iter_mut().zip(out.data) {
                *s = v;
            }
        }
        Scores(scores)
    }

    fn forward(&self, input: Tensor) -> Result<Tensor, ModelError> {
        let mut values: Vec<Option<Tensor>> = (0..self.values).map(|_| None).collect();
        let mut left = self.readers.clone();
        values[self.input] = Some(input);
        for step in &self.steps {
            // Take an input whose last reader this is, else borrow and copy.
            let mut take =
                |i: usize, values: &mut Vec<Option<Tensor>>| -> Result<Tensor, ModelError> {
                    left[i] -= 1;
                    let v = if left[i] == 0 && i != self.output {
                        values[i].take()
                    } else {
                        values[i].clone()
                    };
                    v.ok_or(ModelError::Shape("a value used before it is made"))
                };
            let first = take(step.inputs[0], &mut values)?;
            let out = match &step.op {
                Op::Conv(c) => c.run(&first)?,
                Op::Depthwise(d) => d.run(&first)?,
                Op::Pad(p) => net::pad(&first, *p),
                Op::Affine { a, b, clamp } => net::affine(first, a, b, *clamp)?,
                Op::Clamp(lo, hi) => net::clamp(first, *lo, *hi),
                Op::Add => {
                    let second = take(step.inputs[1], &mut values)?;
                    net::add(first, &second)?
                }
                Op::AvgPool { pool, strides } => net::avg_pool(&first, *pool, *strides)?,
                Op::Flatten => Tensor {
                    h: 1,
                    w: 1,
                    c: first.data.len(),
                    data: first.data,
                },
                Op::Dense(d) => d.run(&first)?,
            };
            values[step.out] = Some(out);
        }
        values[self.output]
            .take()
            .ok_or(ModelError::Shape("no output"))
    }
}

/// Turns layers into steps. Values are numbered; a layer that computes nothing (dropout, the
/// input) or that was folded into its producer names the same value as its input.
struct Planner {
    steps: Vec<Step>,
    value: HashMap<String, usize>,
    /// Readers of each layer's output (the model's output counts as one).
    readers: HashMap<String, usize>,
    /// How many layers still read each value (a step may absorb the next layer only when it is
    /// that value's one reader).
    uses: Vec<usize>,
    /// The step that made each value.
    made_by: Vec<Option<usize>>,
    input: Option<usize>,
    next: usize,
}

impl Planner {
    fn new(graph: &Graph) -> Result<Planner, ModelError> {
        let mut readers: HashMap<String, usize> = HashMap::new();
        for l in &graph.layers {
            for i in &l.inputs {
                *readers.entry(i.clone()).or_default() += 1;
            }
        }
        for o in &graph.output {
            *readers.entry(o.clone()).or_default() += 1;
        }
        Ok(Planner {
            steps: Vec::new(),
            value: HashMap::new(),
            readers,
            uses: Vec::new(),
            made_by: Vec::new(),
            input: None,
            next: 0,
        })
    }

    fn readers(&self, name: &str) -> usize {
        self.readers.get(name).copied().unwrap_or(0)
    }

    fn input_of(&self, layer: &Layer, n: usize) -> Result<Vec<usize>, ModelError> {
        if layer.inputs.len() != n {
            return Err(format(format_args!(
                "{}: {} inputs",
                layer.name,
                layer.inputs.len()
            )));
        }
        layer
            .inputs
            .iter()
            .map(|i| {
                self.value
                    .get(i)
                    .copied()
                    .ok_or_else(|| format(format_args!("{}: unknown input {i}", layer.name)))
            })
            .collect()
    }

    fn emit(&mut self, layer: &Layer, op: Op, inputs: Vec<usize>) {
        let out = self.next;
        self.next += 1;
        self.steps.push(Step { op, inputs, out });
        self.uses.push(self.readers(&layer.name));
        self.made_by.push(Some(self.steps.len() - 1));
        self.value.insert(layer.name.clone(), out);
    }

    /// The same value under the layer's name: its one reader (this layer) is replaced by the
    /// layer's own readers.
    fn alias(&mut self, layer: &Layer, v: usize) {
        self.uses[v] = self.uses[v] - 1 + self.readers(&layer.name);
        self.value.insert(layer.name.clone(), v);
    }

    /// The step that made `v`, when this layer is its only reader (so it may be changed).
    fn sole_producer(&mut self, v: usize) -> Option<&mut Op> {
        if self.uses[v] != 1 {
            return None;
        }
        let s = self.made_by[v]?;
        Some(&mut self.steps[s].op)
    }

    fn layer(&mut self, layer: &Layer, w: &Weights<'_>) -> Result<(), ModelError> {
        let name = layer.name.as_str();
        match layer.op.as_str() {
            "InputLayer" => {
                if layer.shape.as_deref() != Some(&[Some(INPUT_SIZE), Some(INPUT_SIZE), Some(3)]) {
                    return Err(format("the input is not 224 × 224 × 3"));
                }
                let v = self.next;
                self.next += 1;
                self.uses.push(self.readers(name));
                self.made_by.push(None);
                self.value.insert(layer.name.clone(), v);
                self.input = Some(v);
            }
            "Dropout" => {
                let v = self.input_of(layer, 1)?[0];
                self.alias(layer, v);
            }
            "ZeroPadding2D" => {
                let inputs = self.input_of(layer, 1)?;
                let p: [[usize; 2]; 2] = layer
                    .padding
                    .clone()
                    .and_then(|p| serde_json::from_value(p).ok())
                    .ok_or_else(|| format(format_args!("{name}: padding")))?;
                self.emit(layer, Op::Pad([p[0][0], p[0][1], p[1][0], p[1][1]]), inputs);
            }
            "Conv2D" => {
                linear(layer)?;
                let inputs = self.input_of(layer, 1)?;
                let kernel_name = format!("{name}/kernel");
                let shape = w.shape(&kernel_name)?;
                let [kh, kw, cin, cout] = shape[..] else {
                    return Err(format(format_args!("{name}: kernel shape")));
                };
                if layer.kernel_size != Some([kh, kw]) {
                    return Err(format(format_args!("{name}: kernel size")));
                }
                let bias = if layer.use_bias == Some(true) {
                    w.get(&format!("{name}/bias"), &[cout])?
                } else {
                    vec![0.0; cout]
                };
                let conv = Conv {
                    kernel: w.get(&kernel_name, &shape)?,
                    bias,
                    kh,
                    kw,
                    cin,
                    cout,
                    stride: square_stride(layer)?,
                    padding: padding(layer)?,
                    clamp: None,
                };
                self.emit(layer, Op::Conv(conv), inputs);
            }
            "DepthwiseConv2D" => {
                linear(layer)?;
                let inputs = self.input_of(layer, 1)?;
                let kernel_name = format!("{name}/depthwise_kernel");
                let shape = w.shape(&kernel_name)?;
                let [kh, kw, c, 1] = shape[..] else {
                    return Err(format(format_args!("{name}: depthwise kernel shape")));
                };
                if layer.depth_multiplier != Some(1) || layer.kernel_size != Some([kh, kw]) {
                    return Err(format(format_args!(
                        "{name}: depth multiplier or kernel size"
                    )));
                }
                let bias = if layer.use_bias == Some(true) {
                    w.get(&format!("{name}/bias"), &[c])?
                } else {
                    vec![0.0; c]
                };
                let d = Depthwise {
                    kernel: w.get(&kernel_name, &shape)?,
                    bias,
                    kh,
                    kw,
                    c,
                    stride: square_stride(layer)?,
                    padding: padding(layer)?,
                    clamp: None,
                };
                self.emit(layer, Op::Depthwise(d), inputs);
            }
            "BatchNormalization" => {
                let v = self.input_of(layer, 1)?[0];
                let c = w.shape(&format!("{name}/moving_mean"))?;
                let [c] = c[..] else {
                    return Err(format(format_args!("{name}: shape")));
                };
                let mean = w.get(&format!("{name}/moving_mean"), &[c])?;
                let var = w.get(&format!("{name}/moving_variance"), &[c])?;
                let gamma = if layer.scale == Some(false) {
                    vec![1.0; c]
                } else {
                    w.get(&format!("{name}/gamma"), &[c])?
                };
                let beta = if layer.center == Some(false) {
                    vec![0.0; c]
                } else {
                    w.get(&format!("{name}/beta"), &[c])?
                };
                let eps = layer
                    .epsilon
                    .ok_or_else(|| format(format_args!("{name}: epsilon")))?;
                // y = (x − mean) · γ / √(var + ε) + β = x · a + b
                let a: Vec<f32> = gamma
                    .iter()
                    .zip(&var)
                    .map(|(g, v)| (f64::from(*g) / (f64::from(*v) + eps).sqrt()) as f32)
                    .collect();
                let b: Vec<f32> = beta
                    .iter()
                    .zip(&mean)
                    .zip(&a)
                    .map(|((b, m), a)| (f64::from(*b) - f64::from(*m) * f64::from(*a)) as f32)
                    .collect();
                match self.sole_producer(v) {
                    Some(Op::Conv(conv)) if conv.clamp.is_none() && conv.cout == c => {
                        for row in conv.kernel.chunks_exact_mut(c) {
                            for (k, a) in row.iter_mut().zip(&a) {
                                *k *= a;
                            }
                        }
                        for ((bias, a), b) in conv.bias.iter_mut().zip(&a).zip(&b) {
                            *bias = *bias * a + b;
                        }
                        self.alias(layer, v);
                    }
                    Some(Op::Depthwise(d)) if d.clamp.is_none() && d.c == c => {
                        for row in d.kernel.chunks_exact_mut(c) {
                            for (k, a) in row.iter_mut().zip(&a) {
                                *k *= a;
                            }
                        }
                        for ((bias, a), b) in d.bias.iter_mut().zip(&a).zip(&b) {
                            *bias = *bias * a + b;
                        }
                        self.alias(layer, v);
                    }
                    _ => self.emit(layer, Op::Affine { a, b, clamp: None }, vec![v]),
                }
            }
            "ReLU" => {
                let v = self.input_of(layer, 1)?[0];
                if layer.negative_slope.unwrap_or(0.0) != 0.0
                    || layer.threshold.unwrap_or(0.0) != 0.0
                {
                    return Err(format(format_args!("{name}: a leaky or thresholded ReLU")));
                }
                let hi = layer.max_value.map_or(f32::INFINITY, |m| m as f32);
                match self.sole_producer(v) {
                    Some(Op::Conv(Conv {
                        clamp: c @ None, ..
                    }))
                    | Some(Op::Depthwise(Depthwise {
                        clamp: c @ None, ..
                    }))
                    | Some(Op::Affine {
                        clamp: c @ None, ..
                    }) => {
                        *c = Some((0.0, hi));
                        self.alias(layer, v);
                    }
                    _ => self.emit(layer, Op::Clamp(0.0, hi), vec![v]),
                }
            }
            "Add" => {
                let inputs = self.input_of(layer, 2)?;
                self.emit(layer, Op::Add, inputs);
            }
            "AveragePooling2D" => {
                let inputs = self.input_of(layer, 1)?;
                if padding(layer)? != Padding::Valid {
                    return Err(format(format_args!("{name}: padded pooling")));
                }
                let (Some([ph, pw]), Some([sh, sw])) = (layer.pool_size, layer.strides) else {
                    return Err(format(format_args!("{name}: pool")));
                };
                self.emit(
                    layer,
                    Op::AvgPool {
                        pool: (ph, pw),
                        strides: (sh, sw),
                    },
                    inputs,
                );
            }
            "Flatten" => {
                let inputs = self.input_of(layer, 1)?;
                self.emit(layer, Op::Flatten, inputs);
            }
            "Dense" => {
                let inputs = self.input_of(layer, 1)?;
                let kernel_name = format!("{name}/kernel");
                let shape = w.shape(&kernel_name)?;
                let [k, n] = shape[..] else {
                    return Err(format(format_args!("{name}: kernel shape")));
                };
                let activation = match layer.activation.as_deref() {
                    Some("linear") | None => Activation::Linear,
                    Some("relu") => Activation::Relu,
                    Some("softmax") => Activation::Softmax,
                    Some(a) => return Err(format(format_args!("{name}: activation {a}"))),
                };
                let bias = if layer.use_bias == Some(true) {
                    w.get(&format!("{name}/bias"), &[n])?
                } else {
                    vec![0.0; n]
                };
                let d = Dense {
                    weights: w.get(&kernel_name, &shape)?,
                    bias,
                    inputs: k,
                    units: n,
                    activation,
                };
                self.emit(layer, Op::Dense(d), inputs);
            }
            other => return Err(format(format_args!("{name}: {other} is not supported"))),
        }
        Ok(())
    }
}
