//! From file bytes to the model's input, as the package's own code prepares an image: decode
//! (JPEG, PNG, GIF's first frame, WebP) under hard limits, turn as the EXIF orientation says,
//! drop alpha, divide by 255 and resize to 224 × 224 with TensorFlow.js's bilinear kernel
//! (`alignCorners = true`), value for value.
//!
//! JPEG is decoded by libjpeg-turbo (as mozjpeg, the `mozjpeg` crate), the decoder browsers use,
//! because the model is sensitive to the last bit: the pure-Rust decoders' IDCTs differ from
//! libjpeg-turbo's by ±1 on a fraction of a percent of pixels, which moved scores by 1.4e-3 on a
//! Debian wallpaper. PNG, GIF and WebP, decoded exactly by any correct decoder, go through `image`.
//!
//! The orientation is applied while sampling (no turned copy of the image is made), and 8-bit
//! images are read in place, so the memory an image takes is its decoded size and no more.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::INPUT_SIZE;
use crate::net::Tensor;

/// Hard limits on the images the engine decodes: a hostile image is input like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Widest and tallest image decoded, in pixels.
    pub max_side: u32,
    /// Most pixels decoded (width × height).
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate.
    pub max_alloc: u64,
}

impl Default for Limits {
    /// 16384 a side, 40 megapixels, 160 MiB: any photograph a phone or camera takes.
    fn default() -> Limits {
        Limits {
            max_side: 16_384,
            max_pixels: 40_000_000,
            max_alloc: 160 << 20,
        }
    }
}

/// Why an image was not classified. Never holds a byte of the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("not an image format the engine reads")]
    Unsupported,
    #[error("the image is larger than the limits")]
    TooLarge,
    #[error("the image cannot be decoded")]
    Undecodable,
}

impl ImageError {
    /// A short name for reports: `unsupported`, `too-large`, `undecodable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageError::Unsupported => "unsupported",
            ImageError::TooLarge => "too-large",
            ImageError::Undecodable => "undecodable",
        }
    }
}

fn from_image(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        image::ImageError::Unsupported(_) => ImageError::Unsupported,
        _ => ImageError::Undecodable,
    }
}

/// Most scans a progressive JPEG may have: each one walks the whole image again, so thousands
/// of tiny scans make a small file cost minutes (libjpeg-turbo's own tools stop at 500).
const MAX_JPEG_SCANS: usize = 100;

/// An image decoded, turned and resized: the network's input (224 × 224 × 3, values in 0..1).
#[derive(Debug, Clone)]
pub struct Input(pub(crate) Tensor);

/// Decodes and prepares one image.
pub fn prepare(bytes: &[u8], limits: &Limits) -> Result<Input, ImageError> {
    decode(bytes, limits).map(Input)
}

fn decode(bytes: &[u8], limits: &Limits) -> Result<Tensor, ImageError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return jpeg(bytes, limits);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| ImageError::Undecodable)?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP) => {}
        _ => return Err(ImageError::Unsupported),
    }
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    let webp = reader.format() == Some(ImageFormat::WebP);
    let mut decoder = reader.into_decoder().map_err(from_image)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(ImageError::Undecodable);
    }
    let pixels = u64::from(w) * u64::from(h);
    // What decoding holds at once, beyond what `image` counts (the output buffer): WebP's
    // decoder keeps a canvas and a frame of 4 bytes a pixel besides (animations), and 16-bit or
    // float images are brought to 8 bits in a copy.
    let mut need = decoder.total_bytes();
    if webp {
        need = need.saturating_add(pixels * 8);
    }
    if !matches!(
        decoder.color_type(),
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8
    ) {
        need = need.saturating_add(pixels * 3);
    }
    if pixels > limits.max_pixels || need > limits.max_alloc {
        return Err(ImageError::TooLarge);
    }
    // An unreadable EXIF block is no orientation, as browsers treat it.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let _one_large_at_a_time = large(need);
    let image = DynamicImage::from_decoder(decoder).map_err(from_image)?;
    Ok(resize(&Pixels::new(&image), orientation))
}

/// Images whose decoding takes more than this are decoded one at a time in the process, so
/// several scans at once hold one large image and small ones, never several large ones.
const LARGE_DECODE: u64 = 48 << 20;

static LARGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lock that makes large decodes take turns (none for a small one).
fn large(need: u64) -> Option<std::sync::MutexGuard<'static, ()>> {
    (need > LARGE_DECODE).then(|| LARGE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// What a JPEG's markers say before it is decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct JpegFrame {
    width: u64,
    height: u64,
    /// Each component's sampling factors (horizontal, vertical).
    sampling: Vec<(u64, u64)>,
    progressive: bool,
    scans: usize,
    /// Whether a frame header was met (later ones are ignored, as libjpeg ignores them).
    framed: bool,
    /// How many components the first scan holds (fewer than the frame's: several scans).
    first_scan_components: usize,
}

/// Walks a JPEG's marker segments, and past each scan's entropy-coded data (where a 0xFF byte
/// is always followed by 0x00 or a restart marker): the frame header and the scans, as libjpeg
/// meets them. Bytes that merely look like a marker, in a comment or an EXIF block, count for
/// nothing.
fn jpeg_frame(bytes: &[u8]) -> JpegFrame {
    let mut f = JpegFrame::default();
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            i += 1;
            continue;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else { break };
        i += 1;
        match marker {
            0xD9 => break,
            // A stray 0xFF 0x00 outside a scan, TEM, restarts, SOI: no segment follows (libjpeg
            // skips them too).
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            // Markers libjpeg refuses: the decode fails there; nothing after it counts.
            0x02..=0xBF | 0xF0..=0xFD => break,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        let segment = bytes
            .get(i + 2..(i + len).min(bytes.len()))
            .unwrap_or_default();
        match marker {
            // Start of frame (not DHT C4, JPG C8 or DAC CC): the first one is the frame libjpeg
            // decodes.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && !f.framed => {
                f.framed = true;
                if segment.len() >= 6 {
                    f.height = u64::from(u16::from_be_bytes([segment[1], segment[2]]));
                    f.width = u64::from(u16::from_be_bytes([segment[3], segment[4]]));
                    f.sampling = segment[6..]
                        .chunks_exact(3)
                        .take(usize::from(segment[5]))
                        .map(|c| (u64::from(c[1] >> 4).max(1), u64::from(c[1] & 15).max(1)))
                        .collect();
                }
                f.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            }
            0xDA => {
                f.scans += 1;
                if f.scans == 1 {
                    f.first_scan_components = segment.first().map_or(0, |n| usize::from(*n));
                }
                // Past the scan header, then past its entropy-coded data.
                let mut j = i + len;
                while j + 1 < bytes.len()
                    && !(bytes[j] == 0xFF
                        && bytes[j + 1] != 0
                        && !(0xD0..=0xD7).contains(&bytes[j + 1]))
                {
                    j += 1;
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += len;
    }
    f
}

impl JpegFrame {
    /// What libjpeg holds while decoding into RGB: the output, and for an image of several scans
    /// (progressive, or components in scans of their own) every DCT coefficient of every
    /// component at once, 2 bytes each, at the component's own resolution.
    fn need(&self) -> u64 {
        let out = self.width * self.height * 3;
        // libjpeg buffers the whole image's coefficients unless the image is one sequential
        // scan of every component.
        let single = !self.progressive
            && self.scans <= 1
            && self.first_scan_components == self.sampling.len();
        if single {
            return out;
        }
        let hmax = self.sampling.iter().map(|s| s.0).max().unwrap_or(1);
        let vmax = self.sampling.iter().map(|s| s.1).max().unwrap_or(1);
        let coefficients: u64 = self
            .sampling
            .iter()
            .map(|(h, v)| {
                let w = (self.width * h).div_ceil(hmax).div_ceil(8) * 8;
                let t = (self.height * v).div_ceil(vmax).div_ceil(8) * 8;
                w * t * 2
            })
            .sum();
        out + coefficients
    }
}

fn jpeg(bytes: &[u8], limits: &Limits) -> Result<Tensor, ImageError> {
    let frame = jpeg_frame(bytes);
    if frame.scans > MAX_JPEG_SCANS || frame.need() > limits.max_alloc {
        return Err(ImageError::TooLarge);
    }
    let _one_large_at_a_time = large(frame.need());
    // libjpeg reports a fatal error by unwinding (the crate's error manager, which prints
    // nothing): every call is inside catch_unwind, and an unwind is an undecodable image.
    let decoded = std::panic::catch_unwind(
        || -> Result<(Vec<u8>, usize, usize, Orientation), ImageError> {
            let d = mozjpeg::Decompress::with_markers(&[mozjpeg::Marker::APP(1)])
                .from_mem(bytes)
                .map_err(|_| ImageError::Undecodable)?;
            let (w, h) = d.size();
            if w == 0 || h == 0 {
                return Err(ImageError::Undecodable);
            }
            let pixels = w as u64 * h as u64;
            // The frame libjpeg read must be the one the estimate above was made from.
            let sampling: Vec<(u64, u64)> = d
                .components()
                .iter()
                .map(|c| (c.h_samp_factor.max(1) as u64, c.v_samp_factor.max(1) as u64))
                .collect();
            if w > limits.max_side as usize
                || h > limits.max_side as usize
                || pixels > limits.max_pixels
                || (w as u64, h as u64) != (frame.width, frame.height)
                || sampling != frame.sampling
            {
                return Err(ImageError::TooLarge);
            }
            let orientation = d
                .markers()
                .filter_map(|m| m.data.strip_prefix(b"Exif\0\0"))
                .find_map(Orientation::from_exif_chunk)
                .unwrap_or(Orientation::NoTransforms);
            let mut started = d.rgb().map_err(|_| ImageError::Undecodable)?;
            let data = started
                .read_scanlines::<u8>()
                .map_err(|_| ImageError::Undecodable)?;
            // A truncated image is decoded as far as it goes and the rest filled grey, as browsers
            // (and the reference) show it; what `finish` says about the missing end changes nothing.
            let _ = started.finish();
            Ok((data, w, h, orientation))
        },
    );
    let (data, w, h, orientation) = decoded.map_err(|_| ImageError::Undecodable)??;
    if data.len() != w * h * 3 {
        return Err(ImageError::Undecodable);
    }
    let px = Pixels {
        data: std::borrow::Cow::Owned(data),
        w,
        h,
        step: 3,
        grey: false,
    };
    Ok(resize(&px, orientation))
}

/// 8-bit pixels read in place: channels per pixel and the offset of R, G, B in a pixel.
struct Pixels<'a> {
    data: std::borrow::Cow<'a, [u8]>,
    w: usize,
    h: usize,
    step: usize,
    grey: bool,
}

impl<'a> Pixels<'a> {
    fn new(image: &'a DynamicImage) -> Pixels<'a> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (data, step, grey) = match image {
            DynamicImage::ImageLuma8(b) => {
                (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), 1, true)
            }
            DynamicImage::ImageLumaA8(b) => {
                (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), 2, true)
            }
            DynamicImage::ImageRgb8(b) => {
                (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), 3, false)
            }
            DynamicImage::ImageRgba8(b) => {
                (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), 4, false)
            }
            // 16-bit and float images (rare) are brought to 8 bits first.
            other => (
                std::borrow::Cow::Owned(other.to_rgb8().into_raw()),
                3,
                false,
            ),
        };
        Pixels {
            data,
            w,
            h,
            step,
            grey,
        }
    }

    /// R, G, B of the raw pixel at (x, y), each ÷ 255 as TensorFlow.js divides (in f32).
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.w + x) * self.step;
        if self.grey {
            let v = f32::from(self.data[i]) / 255.0;
            [v, v, v]
        } else {
            [0, 1, 2].map(|c| f32::from(self.data[i + c]) / 255.0)
        }
    }
}

/// The raw pixel shown at (x, y) of the turned image (EXIF orientations 1–8), for a raw image
/// `w × h`.
fn raw_at(o: Orientation, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
    match o {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (w - 1 - x, y),
        Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
        Orientation::FlipVertical => (x, h - 1 - y),
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate90 => (y, h - 1 - x),
        Orientation::Rotate270FlipH => (w - 1 - y, h - 1 - x),
        Orientation::Rotate270 => (w - 1 - y, x),
    }
}

fn turned(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// TensorFlow.js's `resizeBilinear(…, [224, 224], alignCorners = true)` (CPU backend), computed
/// in f64 from f32 inputs as JavaScript does, each result stored as f32.
fn resize(px: &Pixels<'_>, o: Orientation) -> Tensor {
    let (ow, oh) = if turned(o) {
        (px.h, px.w)
    } else {
        (px.w, px.h)
    };
    let n = INPUT_SIZE;
    let ratio = |old: usize| {
        if n > 1 {
            (old - 1) as f64 / (n - 1) as f64
        } else {
            old as f64 / n as f64
        }
    };
    let (rr, cr) = (ratio(oh), ratio(ow));
    let mut out = Tensor::zeros(n, n, 3);
    let at = |x: usize, y: usize| {
        let (x, y) = raw_at(o, x, y, px.w, px.h);
        px.rgb(x, y)
    };
    for r in 0..n {
        let src = rr * r as f64;
        let top = src.floor().max(0.0) as usize;
        let rf = src - top as f64;
        let bottom = (src.ceil() as usize).min(oh - 1);
        for c in 0..n {
            let src = cr * c as f64;
            let left = src.floor().max(0.0) as usize;
            let cf = src - left as f64;
            let right = (src.ceil() as usize).min(ow - 1);
            let (tl, tr, bl, br) = (
                at(left, top),
                at(right, top),
                at(left, bottom),
                at(right, bottom),
            );
            let o = &mut out.data[(r * n + c) * 3..][..3];
            for d in 0..3 {
                let (tl, tr, bl, br) = (
                    f64::from(tl[d]),
                    f64::from(tr[d]),
                    f64::from(bl[d]),
                    f64::from(br[d]),
                );
                let t = tl + (tr - tl) * cf;
                let b = bl + (br - bl) * cf;
                o[d] = (t + (b - t) * rf) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn the_jpeg_walk_counts_real_scans_only_and_sizes_the_coefficients() {
        // SOI, a comment full of fake SOS markers, SOF2 100×50 at 4:2:0, two scans, EOI.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x0A];
        j.extend([0xFF, 0xDA, 0xFF, 0xDA, 0xFF, 0xDA, 0xFF, 0xDA]);
        j.extend([
            0xFF, 0xC2, 0x00, 0x11, 8, 0, 50, 0, 100, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        ]);
        for _ in 0..2 {
            j.extend([0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]);
            j.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        }
        j.extend([0xFF, 0xD9]);
        let f = jpeg_frame(&j);
        assert_eq!(
            f,
            JpegFrame {
                width: 100,
                height: 50,
                sampling: vec![(2, 2), (1, 1), (1, 1)],
                progressive: true,
                scans: 2,
                framed: true,
                first_scan_components: 1,
            }
        );
        // The output, 100·50·3; coefficients: luma 104·56·2, each chroma 56·32·2.
        assert_eq!(f.need(), 15_000 + 11_648 + 2 * 3_584);
        // One sequential scan of every component: the output only.
        let baseline = JpegFrame {
            progressive: false,
            scans: 1,
            first_scan_components: 3,
            ..f.clone()
        };
        assert_eq!(baseline.need(), 15_000);
        // One sequential scan of the luma only: libjpeg buffers every component all the same.
        let luma_only = JpegFrame {
            progressive: false,
            scans: 1,
            ..f.clone()
        };
        assert_eq!(luma_only.need(), f.need());
        // A stray FF 00 between segments hides nothing, and a second frame header counts not.
        let mut sneaky = j[..2].to_vec();
        sneaky.extend([0xFF, 0x00, 0x00, 0x40]);
        sneaky.extend(&j[2..]);
        sneaky.truncate(sneaky.len() - 2);
        sneaky.extend([0xFF, 0xC0, 0x00, 0x0B, 8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        sneaky.extend([0xFF, 0xD9]);
        assert_eq!(jpeg_frame(&sneaky), f);
    }

    #[test]
    fn sampling_through_an_orientation_matches_turning_the_image() {
        let raw = RgbImage::from_fn(5, 3, |x, y| {
            Rgb([x as u8 * 40, y as u8 * 70, (x * y) as u8])
        });
        for exif in 1..=8 {
            let o = Orientation::from_exif(exif).unwrap();
            let mut turned_img = DynamicImage::ImageRgb8(raw.clone());
            turned_img.apply_orientation(o);
            let t = turned_img.to_rgb8();
            for y in 0..t.height() as usize {
                for x in 0..t.width() as usize {
                    let (rx, ry) = raw_at(o, x, y, 5, 3);
                    assert_eq!(
                        raw.get_pixel(rx as u32, ry as u32),
                        t.get_pixel(x as u32, y as u32),
                        "orientation {exif} at {x},{y}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_224_square_is_not_resampled_and_a_single_pixel_fills_the_input() {
        let img = RgbImage::from_fn(224, 224, |x, y| Rgb([x as u8, y as u8, 7]));
        let d = DynamicImage::ImageRgb8(img);
        let t = resize(&Pixels::new(&d), Orientation::NoTransforms);
        assert_eq!(t.data[(10 * 224 + 20) * 3], 20.0 / 255.0);
        assert_eq!(t.data[(10 * 224 + 20) * 3 + 1], 10.0 / 255.0);
        let one = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([255, 0, 51])));
        let t = resize(&Pixels::new(&one), Orientation::NoTransforms);
        assert!(t.data.chunks(3).all(|p| p == [1.0, 0.0, 0.2]));
    }
}
