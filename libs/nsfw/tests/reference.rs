//! The engine computes what the model's own reference computes: the nsfwjs package's classifier
//! on TensorFlow.js's pure-JavaScript CPU backend in Node (`models/nsfw/reference.mjs`), given
//! the same file bytes, each side decoding, turning (EXIF orientation) and resizing on its own.
//! Every image, every class: |Rust − reference| ≤ 1e-3.
//!
//! Needs `scripts/install-deps` (the npm packages in models/nsfw, the converted model, Debian's
//! desktop-base artwork unpacked into the tools cache).

use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_nsfw::{Classifier, Limits};

#[path = "common/art.rs"]
mod art;
use art::model_path;
use image::{Rgb, RgbImage, Rgba, RgbaImage};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A deterministic pseudo-random byte stream (the images must be the same on every run).
struct Lcg(u64);
impl Lcg {
    fn byte(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 56) as u8
    }
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x + y) * 128 / (w + h)) as u8,
        ])
    })
}

fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut r = Lcg(seed);
    RgbImage::from_fn(w, h, |_, _| Rgb([r.byte(), r.byte(), r.byte()]))
}

/// Discs and bars on a warm background: asymmetric, so a wrong turn shows.
fn shapes(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let d1 = (fx - 0.3).powi(2) + (fy - 0.35).powi(2);
        let d2 = (fx - 0.75).powi(2) + (fy - 0.7).powi(2);
        if d1 < 0.04 {
            Rgb([220, 160, 130])
        } else if d2 < 0.02 {
            Rgb([30, 60, 200])
        } else if fx > 0.85 && fy < 0.5 {
            Rgb([20, 20, 20])
        } else {
            Rgb([(200.0 - 80.0 * fy) as u8, (150.0 + 50.0 * fx) as u8, 110])
        }
    })
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn gif(img: &RgbImage) -> Vec<u8> {
    let rgba = image::DynamicImage::ImageRgb8(img.clone()).to_rgba8();
    let mut out = Vec::new();
    let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
    enc.encode_frame(image::Frame::new(rgba)).unwrap();
    drop(enc);
    out
}

/// An EXIF block (big-endian TIFF) holding only an Orientation tag.
fn exif(orientation: u16) -> Vec<u8> {
    let mut e = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    e.extend([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01]);
    e.extend(orientation.to_be_bytes());
    e.extend([0, 0, 0, 0, 0, 0]);
    e
}

/// A JPEG by libjpeg (mozjpeg's encoder): quality, chroma subsampling, progressive or not.
fn jpeg(
    img: &RgbImage,
    quality: f32,
    subsample: u8,
    progressive: bool,
    orientation: Option<u16>,
) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(img.width() as usize, img.height() as usize);
    c.set_quality(quality);
    c.set_chroma_sampling_pixel_sizes((subsample, subsample), (subsample, subsample));
    // mozjpeg's defaults make a progressive JPEG; libjpeg-turbo's ("fastest") a baseline one.
    if progressive {
        c.set_progressive_mode();
    } else {
        c.set_fastest_defaults();
    }
    let mut started = c.start_compress(Vec::new()).unwrap();
    if let Some(o) = orientation {
        started.write_marker(mozjpeg::Marker::APP(1), &exif(o));
    }
    started.write_scanlines(img.as_raw()).unwrap();
    started.finish().unwrap()
}

fn grey_jpeg(w: usize, h: usize) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_GRAYSCALE);
    c.set_size(w, h);
    c.set_quality(85.0);
    let mut started = c.start_compress(Vec::new()).unwrap();
    let px: Vec<u8> = (0..w * h)
        .map(|i| ((i % w) * 200 / w + (i / w) * 50 / h) as u8)
        .collect();
    started.write_scanlines(&px).unwrap();
    started.finish().unwrap()
}

/// A JPEG with an APP1 EXIF orientation put in right after its SOI.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let e = exif(orientation);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((e.len() + 2) as u16).to_be_bytes());
    out.extend(e);
    out.extend(&jpeg[2..]);
    out
}

fn images(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut made: Vec<(String, Vec<u8>)> = vec![
        ("gradient-300x200.png".into(), png(&gradient(300, 200))),
        ("noise-97x131.png".into(), png(&noise(97, 131, 7))),
        ("shapes-640x480.png".into(), png(&shapes(640, 480))),
        (
            "one-pixel-1x1.png".into(),
            png(&RgbImage::from_pixel(1, 1, Rgb([200, 120, 90]))),
        ),
        ("thin-40x900.png".into(), png(&gradient(40, 900))),
        ("exactly-224.png".into(), png(&shapes(224, 224))),
        ("shapes-320x240.gif".into(), gif(&shapes(320, 240))),
        (
            "noise-224x224.jpg".into(),
            jpeg(&noise(224, 224, 11), 90.0, 1, false, None),
        ),
        (
            "shapes-640x480-q75-420.jpg".into(),
            jpeg(&shapes(640, 480), 75.0, 2, false, None),
        ),
        (
            "gradient-1024x768-q92-444-progressive.jpg".into(),
            jpeg(&gradient(1024, 768), 92.0, 1, true, None),
        ),
        ("grey-500x333.jpg".into(), grey_jpeg(500, 333)),
    ];
    let rgba = RgbaImage::from_fn(150, 100, |x, y| {
        Rgba([x as u8, y as u8 * 2, 90, (x + y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    rgba.write_to(&mut out, image::ImageFormat::Png).unwrap();
    made.push(("alpha-150x100.png".into(), out.into_inner()));
    for o in [3u16, 5, 6, 7, 8] {
        made.push((
            format!("shapes-exif-{o}.jpg"),
            jpeg(&shapes(400, 300), 88.0, 2, false, Some(o)),
        ));
    }
    let art = art::art_dir();
    let real = art::pictures().unwrap_or_else(|e| panic!("{e}"));
    // A real picture turned by EXIF, both ways.
    let joy = std::fs::read(&real[1]).unwrap();
    made.push(("joy-exif-6.jpg".into(), with_orientation(&joy, 6)));
    made.push(("joy-exif-8.jpg".into(), with_orientation(&joy, 8)));
    let mut all: Vec<(String, PathBuf)> = made
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.join(&name);
            std::fs::write(&p, bytes).unwrap();
            (name, p)
        })
        .collect();
    all.extend(real.into_iter().map(|p| {
        let name = p.strip_prefix(&art).unwrap().display().to_string();
        (name, p)
    }));
    all
}

#[test]
fn the_engine_gives_the_reference_implementations_scores_on_every_image() {
    let classifier = Classifier::load(&model_path()).expect("the model (run scripts/install-deps)");
    let dir = tempfile::tempdir().unwrap();
    let images = images(dir.path());
    let out = Command::new("node")
        .arg(repo().join("models/nsfw/reference.mjs"))
        .args(images.iter().map(|(_, p)| p))
        .stderr(std::process::Stdio::null())
        .output()
        .expect("node");
    assert!(out.status.success(), "the reference failed");
    let mut reference = std::collections::HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(file) = v["file"].as_str() {
            assert!(
                v["error"].is_null(),
                "the reference could not read {file}: {}",
                v["error"]
            );
            let scores: Vec<f32> = v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap() as f32)
                .collect();
            reference.insert(PathBuf::from(file), scores);
        }
    }
    let mut worst = 0.0f32;
    let mut report = String::new();
    for (name, path) in &images {
        let want = reference
            .get(path)
            .unwrap_or_else(|| panic!("no reference for {name}"));
        let got = classifier
            .classify(&std::fs::read(path).unwrap(), &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let diff = got
            .0
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        worst = worst.max(diff);
        report += &format!("{name:70} max |diff| {diff:.2e}  rust {:?}\n", got.0);
        assert!(
            diff <= 1e-3,
            "{name}: engine {:?} vs reference {want:?}\n{report}",
            got.0
        );
    }
    eprintln!(
        "{report}{} images, worst difference {worst:.2e}",
        images.len()
    );

    // The EXIF orientation was applied (and the same way on both sides, by the checks above):
    // the turned picture is classified otherwise than the same bytes without the tag.
    let joy = |n: &str| images.iter().find(|(name, _)| name == n).unwrap().1.clone();
    let plain = classifier
        .classify(
            &std::fs::read(joy("desktop-base/joy-theme/login/sddm-preview.jpg")).unwrap(),
            &Limits::default(),
        )
        .unwrap();
    let turned = classifier
        .classify(
            &std::fs::read(joy("joy-exif-6.jpg")).unwrap(),
            &Limits::default(),
        )
        .unwrap();
    assert!(
        (plain.0[0] - turned.0[0]).abs() > 1e-3,
        "orientation 6 changed nothing: {plain:?} {turned:?}"
    );
}

#[test]
fn a_model_file_with_another_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(model_path()).expect("the model (run scripts/install-deps)");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let p = dir.path().join("m.safetensors");
    std::fs::write(&p, bytes).unwrap();
    let e = Classifier::load(&p).unwrap_err().to_string();
    assert!(e.contains("refusing"), "{e}");
}
