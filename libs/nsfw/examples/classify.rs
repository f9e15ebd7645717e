//! Classifies image files and prints one JSON line per file, like `models/nsfw/reference.mjs`:
//! `cargo run --release -p coffer-nsfw --example classify -- MODEL FILE...`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use coffer_nsfw::{Classifier, Limits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: classify MODEL FILE...")?;
    let started = Instant::now();
    let classifier = Classifier::load(model.as_ref())?;
    println!("{{\"load_ms\":{}}}", started.elapsed().as_secs_f64() * 1e3);
    for file in args {
        let bytes = std::fs::read(&file)?;
        let t = Instant::now();
        match classifier.classify(&bytes, &Limits::default()) {
            Ok(s) => println!(
                "{{\"file\":{:?},\"scores\":{:?},\"ms\":{}}}",
                file,
                s.0,
                t.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => println!("{{\"file\":{:?},\"error\":\"{}\"}}", file, e.as_str()),
        }
    }
    Ok(())
}
