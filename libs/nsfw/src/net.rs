//! The forward pass: NHWC float tensors of one image, and the operations MobileNetV2 is made of.
//! Shapes are checked on every call, so a model that does not fit together is an error, never a
//! panic or an out-of-bounds read.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::ModelError;

/// One image's activations: `h × w × c`, channels last.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(h: usize, w: usize, c: usize) -> Tensor {
        Tensor {
            h,
            w,
            c,
            data: vec![0.0; h * w * c],
        }
    }
}

/// How a convolution pads its input (TensorFlow's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Valid,
    Same,
}

/// Output size and padding before, for one spatial axis.
fn axis(
    input: usize,
    k: usize,
    stride: usize,
    padding: Padding,
) -> Result<(usize, usize), ModelError> {
    match padding {
        Padding::Valid => {
            if input < k {
                return Err(ModelError::Shape("a window larger than its input"));
            }
            Ok(((input - k) / stride + 1, 0))
        }
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(input);
            Ok((out, total / 2))
        }
    }
}

/// `y = clamp(y, lo, hi)` after an operation (ReLU6: 0..6), when fused into it.
pub type Clamp = Option<(f32, f32)>;

fn clamp_all(data: &mut [f32], clamp: Clamp) {
    if let Some((lo, hi)) = clamp {
        for v in data {
            *v = v.clamp(lo, hi);
        }
    }
}

/// `out[m×n] = a[m×k] · b[k×n]`.
fn matmul(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) -> Result<(), ModelError> {
    let bad = |_| ModelError::Shape("matrix sizes");
    let a = ArrayView2::from_shape((m, k), a).map_err(bad)?;
    let b = ArrayView2::from_shape((k, n), b).map_err(bad)?;
    let mut c = ArrayViewMut2::from_shape((m, n), out).map_err(bad)?;
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    Ok(())
}

/// A convolution over all input channels; `kernel` is `kh × kw × cin × cout` (Keras's layout).
#[derive(Debug)]
pub struct Conv {
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
    pub kh: usize,
    pub kw: usize,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    pub padding: Padding,
    pub clamp: Clamp,
}

impl Conv {
    pub fn run(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        if x.c != self.cin {
            return Err(ModelError::Shape("convolution input channels"));
        }
        let (oh, pt) = axis(x.h, self.kh, self.stride, self.padding)?;
        let (ow, pl) = axis(x.w, self.kw, self.stride, self.padding)?;
        let mut out = Tensor::zeros(oh, ow, self.cout);
        let k = self.kh * self.kw * self.cin;
        if self.kh == 1 && self.kw == 1 && self.stride == 1 {
            matmul(&x.data, &self.kernel, &mut out.data, oh * ow, k, self.cout)?;
        } else {
            // im2col: one row of kh·kw·cin values per output pixel, zeros where padded.
            let mut cols = vec![0.0f32; oh * ow * k];
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &mut cols[(oy * ow + ox) * k..][..k];
                    for ky in 0..self.kh {
                        let Some(iy) = (oy * self.stride + ky).checked_sub(pt).filter(|y| *y < x.h)
                        else {
                            continue;
                        };
                        for kx in 0..self.kw {
                            let Some(ix) =
                                (ox * self.stride + kx).checked_sub(pl).filter(|v| *v < x.w)
                            else {
                                continue;
                            };
                            let src = &x.data[(iy * x.w + ix) * x.c..][..x.c];
                            row[(ky * self.kw + kx) * x.c..][..x.c].copy_from_slice(src);
                        }
                    }
                }
            }
            matmul(&cols, &self.kernel, &mut out.data, oh * ow, k, self.cout)?;
        }
        for px in out.data.chunks_exact_mut(self.cout) {
            for (v, b) in px.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        clamp_all(&mut out.data, self.clamp);
        Ok(out)
    }
}

/// A depthwise convolution (depth multiplier 1); `kernel` is `kh × kw × c`.
#[derive(Debug)]
pub struct Depthwise {
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
    pub kh: usize,
    pub kw: usize,
    pub c: usize,
    pub stride: usize,
    pub padding: Padding,
    pub clamp: Clamp,
}

impl Depthwise {
    pub fn run(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        if x.c != self.c {
            return Err(ModelError::Shape("depthwise input channels"));
        }
        let c = self.c;
        let (oh, pt) = axis(x.h, self.kh, self.stride, self.padding)?;
        let (ow, pl) = axis(x.w, self.kw, self.stride, self.padding)?;
        let mut out = Tensor::zeros(oh, ow, c);
        for oy in 0..oh {
            for ox in 0..ow {
                let o = &mut out.data[(oy * ow + ox) * c..][..c];
                o.copy_from_slice(&self.bias);
                for ky in 0..self.kh {
                    let Some(iy) = (oy * self.stride + ky).checked_sub(pt).filter(|y| *y < x.h)
                    else {
                        continue;
                    };
                    for kx in 0..self.kw {
                        let Some(ix) = (ox * self.stride + kx).checked_sub(pl).filter(|v| *v < x.w)
                        else {
                            continue;
                        };
                        let xs = &x.data[(iy * x.w + ix) * c..][..c];
                        let ks = &self.kernel[(ky * self.kw + kx) * c..][..c];
                        for ((o, xv), kv) in o.iter_mut().zip(xs).zip(ks) {
                            *o += xv * kv;
                        }
                    }
                }
                clamp_all(o, self.clamp);
            }
        }
        Ok(out)
    }
}

/// Zero padding: `top, bottom, left, right` rows and columns.
pub fn pad(x: &Tensor, [top, bottom, left, right]: [usize; 4]) -> Tensor {
    let (h, w) = (x.h + top + bottom, x.w + left + right);
    let mut out = Tensor::zeros(h, w, x.c);
    for y in 0..x.h {
        let src = &x.data[y * x.w * x.c..][..x.w * x.c];
        out.data[((y + top) * w + left) * x.c..][..x.w * x.c].copy_from_slice(src);
    }
    out
}

/// `y = x · a + b` per channel (a batch normalisation that could not be folded), then a clamp.
pub fn affine(mut x: Tensor, a: &[f32], b: &[f32], clamp: Clamp) -> Result<Tensor, ModelError> {
    if a.len() != x.c || b.len() != x.c {
        return Err(ModelError::Shape("normalisation channels"));
    }
    for px in x.data.chunks_exact_mut(x.c) {
        for ((v, a), b) in px.iter_mut().zip(a).zip(b) {
            *v = *v * a + b;
        }
    }
    clamp_all(&mut x.data, clamp);
    Ok(x)
}

/// A clamp on its own (a ReLU that could not be fused).
pub fn clamp(mut x: Tensor, lo: f32, hi: f32) -> Tensor {
    clamp_all(&mut x.data, Some((lo, hi)));
    x
}

pub fn add(mut a: Tensor, b: &Tensor) -> Result<Tensor, ModelError> {
    if (a.h, a.w, a.c) != (b.h, b.w, b.c) {
        return Err(ModelError::Shape("added tensors differ"));
    }
    for (x, y) in a.data.iter_mut().zip(&b.data) {
        *x += y;
    }
    Ok(a)
}

/// Average pooling without padding.
pub fn avg_pool(
    x: &Tensor,
    (ph, pw): (usize, usize),
    (sh, sw): (usize, usize),
) -> Result<Tensor, ModelError> {
    let (oh, _) = axis(x.h, ph, sh, Padding::Valid)?;
    let (ow, _) = axis(x.w, pw, sw, Padding::Valid)?;
    let mut out = Tensor::zeros(oh, ow, x.c);
    let n = (ph * pw) as f32;
    for oy in 0..oh {
        for ox in 0..ow {
            let o = &mut out.data[(oy * ow + ox) * x.c..][..x.c];
            for y in oy * sh..oy * sh + ph {
                for xx in ox * sw..ox * sw + pw {
                    for (o, v) in o.iter_mut().zip(&x.data[(y * x.w + xx) * x.c..][..x.c]) {
                        *o += v;
                    }
                }
            }
            for v in o {
                *v /= n;
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Softmax,
}

/// A fully connected layer on a flattened tensor; `weights` is `inputs × units`.
#[derive(Debug)]
pub struct Dense {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub units: usize,
    pub activation: Activation,
}

impl Dense {
    pub fn run(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        if x.data.len() != self.inputs {
            return Err(ModelError::Shape("dense inputs"));
        }
        let mut out = Tensor::zeros(1, 1, self.units);
        matmul(
            &x.data,
            &self.weights,
            &mut out.data,
            1,
            self.inputs,
            self.units,
        )?;
        for (v, b) in out.data.iter_mut().zip(&self.bias) {
            *v += b;
        }
        match self.activation {
            Activation::Linear => {}
            Activation::Relu => clamp_all(&mut out.data, Some((0.0, f32::INFINITY))),
            Activation::Softmax => {
                let max = out.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f64> = out.data.iter().map(|v| f64::from(v - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for (v, e) in out.data.iter_mut().zip(exps) {
                    *v = (e / sum) as f32;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_follows_tensorflow() {
        // 3×3, stride 1: one on each side; stride 2 on an even input: none before, one after.
        assert_eq!(axis(112, 3, 1, Padding::Same).unwrap(), (112, 1));
        assert_eq!(axis(112, 3, 2, Padding::Same).unwrap(), (56, 0));
        assert_eq!(axis(225, 3, 2, Padding::Valid).unwrap(), (112, 0));
        assert!(axis(2, 3, 1, Padding::Valid).is_err());
    }

    #[test]
    fn a_general_convolution_matches_a_direct_sum() {
        let x = Tensor {
            h: 5,
            w: 4,
            c: 2,
            data: (0..40).map(|i| (i as f32 * 0.37).sin()).collect(),
        };
        let conv = Conv {
            kernel: (0..3 * 3 * 2 * 3)
                .map(|i| (i as f32 * 0.11).cos())
                .collect(),
            bias: vec![0.5, -0.25, 0.0],
            kh: 3,
            kw: 3,
            cin: 2,
            cout: 3,
            stride: 2,
            padding: Padding::Same,
            clamp: None,
        };
        let y = conv.run(&x).unwrap();
        assert_eq!((y.h, y.w, y.c), (3, 2, 3));
        let (_, pt) = axis(5, 3, 2, Padding::Same).unwrap();
        let (_, pl) = axis(4, 3, 2, Padding::Same).unwrap();
        for oy in 0..3 {
            for ox in 0..2 {
                for o in 0..3 {
                    let mut want = conv.bias[o];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (
                                (oy * 2 + ky) as isize - pt as isize,
                                (ox * 2 + kx) as isize - pl as isize,
                            );
                            if iy < 0 || ix < 0 || iy >= 5 || ix >= 4 {
                                continue;
                            }
                            for i in 0..2 {
                                want += x.data[((iy as usize) * 4 + ix as usize) * 2 + i]
                                    * conv.kernel[((ky * 3 + kx) * 2 + i) * 3 + o];
                            }
                        }
                    }
                    let got = y.data[(oy * 2 + ox) * 3 + o];
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_shapes_are_checked() {
        let d = Dense {
            weights: vec![1.0, 0.0, 0.0, 1.0],
            bias: vec![0.0, 0.0],
            inputs: 2,
            units: 2,
            activation: Activation::Softmax,
        };
        let y = d
            .run(&Tensor {
                h: 1,
                w: 1,
                c: 2,
                data: vec![1000.0, 1000.0],
            })
            .unwrap();
        assert_eq!(y.data, vec![0.5, 0.5]);
        assert!(d.run(&Tensor::zeros(1, 1, 3)).is_err());
        assert!(add(Tensor::zeros(1, 1, 2), &Tensor::zeros(1, 2, 1)).is_err());
    }
}
