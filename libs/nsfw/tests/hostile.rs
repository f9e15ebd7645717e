//! Hostile images end in an answer within the limits: a decompression bomb (huge declared
//! dimensions, tiny file), truncated files, polyglots, a 1×1 image, a JPEG of endless scans,
//! garbage behind a magic number. Never a panic, never an allocation the limits do not allow.

use std::time::{Duration, Instant};

use coffer_nsfw::{Classifier, ImageError, Limits};

#[path = "common/art.rs"]
mod art;
use image::{Rgb, RgbImage};

fn classifier() -> Classifier {
    Classifier::load(&art::model_path()).expect("the model (run scripts/install-deps)")
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(data);
    let mut crc = kind.to_vec();
    crc.extend(data);
    out.extend(crc32(&crc).to_be_bytes());
    out
}

/// A PNG that declares `w × h` RGB pixels and holds a few bytes of zlib data.
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(img: &RgbImage, progressive: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(img.width() as usize, img.height() as usize);
    c.set_quality(85.0);
    // mozjpeg's defaults make a progressive JPEG; libjpeg-turbo's ("fastest") a baseline one.
    if progressive {
        c.set_progressive_mode();
    } else {
        c.set_fastest_defaults();
    }
    let mut s = c.start_compress(Vec::new()).unwrap();
    s.write_scanlines(img.as_raw()).unwrap();
    s.finish().unwrap()
}

fn picture() -> RgbImage {
    RgbImage::from_fn(320, 240, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    })
}

/// Runs one classification, which must end within a few seconds either way.
fn run(c: &Classifier, bytes: &[u8]) -> Result<coffer_nsfw::Scores, ImageError> {
    let started = Instant::now();
    let got = c.classify(bytes, &Limits::default());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    got
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    let c = classifier();
    // 100 000 × 100 000 RGB: 30 GB declared in 60 bytes.
    assert_eq!(
        run(&c, &png_bomb(100_000, 100_000)),
        Err(ImageError::TooLarge)
    );
    // Within each side's limit but 268 megapixels in all.
    assert_eq!(
        run(&c, &png_bomb(16_384, 16_384)),
        Err(ImageError::TooLarge)
    );
    // A JPEG whose frame header declares 65 000 × 65 000.
    let mut j = jpeg(&picture(), false);
    let sof = j
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG");
    j[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    assert_eq!(run(&c, &j), Err(ImageError::TooLarge));
    // A JPEG of endless scans (each one a walk over the whole image).
    let mut many = jpeg(&picture(), true);
    let end = many.len() - 2;
    let sos = many.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let last_scan = many[sos..end].to_vec();
    let mut tail = Vec::new();
    for _ in 0..200 {
        tail.extend(&last_scan);
    }
    many.splice(end..end, tail);
    assert_eq!(run(&c, &many), Err(ImageError::TooLarge));
}

#[test]
fn truncated_and_broken_images_end_in_an_answer() {
    let c = classifier();
    let whole_png = png(&picture());
    let whole_jpeg = jpeg(&picture(), false);
    let whole_progressive = jpeg(&picture(), true);
    for bytes in [&whole_png, &whole_jpeg, &whole_progressive] {
        assert!(run(&c, bytes).is_ok());
        for cut in [bytes.len() / 10, bytes.len() / 2, bytes.len() - 3] {
            // A cut JPEG shows as far as it goes (grey below), as in a browser; a cut PNG is
            // undecodable. Either way: an answer.
            let got = run(&c, &bytes[..cut]);
            if let Ok(s) = got {
                assert!((s.0.iter().sum::<f32>() - 1.0).abs() < 1e-3);
            }
        }
    }
    assert_eq!(run(&c, &whole_png[..20]), Err(ImageError::Undecodable));
    assert_eq!(run(&c, &[0xFF, 0xD8, 0xFF]), Err(ImageError::Undecodable));
    let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
    garbage.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert!(matches!(
        run(&c, &garbage),
        Err(ImageError::Undecodable) | Ok(_)
    ));
    assert_eq!(run(&c, b"GIF89a\x01"), Err(ImageError::Undecodable));
    assert_eq!(
        run(&c, b"%PDF-1.7 not an image"),
        Err(ImageError::Unsupported)
    );
    assert_eq!(run(&c, b""), Err(ImageError::Unsupported));
}

#[test]
fn polyglots_and_tiny_images_are_classified_as_the_image_they_start_with() {
    let c = classifier();
    let img = png(&picture());
    let plain = run(&c, &img).unwrap();
    // A PNG followed by a ZIP (or an HTML page): the image is what the decoder reads.
    let mut poly = img;
    poly.extend(b"PK\x03\x04\x14\0\0\0\0\0<html><script>alert(1)</script></html>");
    assert_eq!(run(&c, &poly).unwrap(), plain);
    let mut j = jpeg(&picture(), false);
    let jp = run(&c, &j).unwrap();
    j.extend(b"<?php system($_GET['c']); ?>");
    assert_eq!(run(&c, &j).unwrap(), jp);
    // 1 × 1 in every format.
    let one = RgbImage::from_pixel(1, 1, Rgb([250, 200, 180]));
    for bytes in [png(&one), jpeg(&one, false)] {
        let s = run(&c, &bytes).unwrap();
        assert!((s.0.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    }
}

#[test]
fn marker_lookalikes_in_a_comment_do_not_count_and_camera_sized_photos_are_read() {
    let c = classifier();
    // 150 start-of-scan lookalikes in a COM segment: not scans, the picture is classified.
    let plain = jpeg(&picture(), false);
    let mut comment = vec![0xFF, 0xFE];
    let body: Vec<u8> = std::iter::repeat_n([0xFF, 0xDA], 150).flatten().collect();
    comment.extend(((body.len() + 2) as u16).to_be_bytes());
    comment.extend(body);
    let mut padded = plain[..2].to_vec();
    padded.extend(comment);
    padded.extend(&plain[2..]);
    assert_eq!(run(&c, &padded).unwrap(), run(&c, &plain).unwrap());
    // A 24-megapixel photograph (6000 × 4000), baseline and progressive: within the limits.
    let big = RgbImage::from_fn(6000, 4000, |x, y| {
        Rgb([(x / 24) as u8, (y / 16) as u8, 128])
    });
    for progressive in [false, true] {
        let s = run(&c, &jpeg(&big, progressive)).unwrap();
        assert!((s.0.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    }
}
