//! Random tamperings of an export (feature `testing`): each returns a changed export that a sound
//! verifier must refuse, and says what it did.

use base64::Engine as _;
use rand::seq::IndexedRandom as _;

use crate::format::{Line, event_hash, hex, unhex};
use crate::sign::Signer;

/// The kinds of tampering applied.
pub const KINDS: [&str; 10] = [
    "delete an event",
    "alter a field",
    "reorder two lines",
    "truncate",
    "insert an event",
    "duplicate a line",
    "replace a checkpoint signature",
    "sign with another key",
    "drop a checkpoint",
    "alter and rehash the rest",
];

fn lines(export: &str) -> Vec<String> {
    export.lines().map(str::to_owned).collect()
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn indices_of(lines: &[String], kind: &str) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(&format!("\"type\":\"{kind}\"")))
        .map(|(i, _)| i)
        .collect()
}

/// Applies one random tampering of a random kind; `None` if the export lacks what that kind needs
/// (no checkpoint, say). The export must have at least two events.
pub fn tamper(export: &str, rng: &mut impl rand::Rng) -> Option<(String, &'static str)> {
    let kind = *KINDS.choose(rng)?;
    let mut ls = lines(export);
    let events = indices_of(&ls, "event");
    let checkpoints = indices_of(&ls, "checkpoint");
    match kind {
        "delete an event" => {
            let i = *events.choose(rng)?;
            ls.remove(i);
        }
        "alter a field" => {
            let i = rng.random_range(0..ls.len());
            let mut v: serde_json::Value = serde_json::from_str(&ls[i]).ok()?;
            let obj = v.as_object_mut()?;
            let keys: Vec<String> = obj.keys().filter(|k| *k != "type").cloned().collect();
            let key = keys.choose(rng)?.clone();
            let field = obj.get_mut(&key)?;
            *field = match field {
                serde_json::Value::String(s) => {
                    let mut s = s.clone();
                    if s.is_empty() {
                        s.push('x');
                    } else {
                        let pos = rng.random_range(0..s.len());
                        let c = s.as_bytes()[pos];
                        let new = if c == b'0' { '1' } else { '0' };
                        if !s.is_char_boundary(pos) || !s.is_char_boundary(pos + 1) {
                            return None;
                        }
                        s.replace_range(pos..=pos, &new.to_string());
                    }
                    serde_json::Value::String(s)
                }
                serde_json::Value::Number(n) => {
                    serde_json::Value::from(n.as_i64().unwrap_or(0).wrapping_add(1))
                }
                _ => return None,
            };
            let changed = serde_json::to_string(&v).ok()?;
            if changed == ls[i] {
                return None;
            }
            ls[i] = changed;
        }
        "reorder two lines" => {
            let a = rng.random_range(0..ls.len());
            let b = rng.random_range(0..ls.len());
            if ls[a] == ls[b] {
                return None;
            }
            ls.swap(a, b);
        }
        "truncate" => {
            let keep = rng.random_range(0..ls.len());
            ls.truncate(keep);
        }
        "insert an event" => {
            // A well-formed event with a correct hash over the previous one, spliced in.
            let i = *events.choose(rng)?;
            let Line::Event(mut e) = serde_json::from_str(&ls[i]).ok()? else {
                return None;
            };
            e.event.action = "file.download".into();
            e.event.target = format!("file:{}", uuid::Uuid::new_v4());
            e.event.seq += 1;
            e.prev_hash = e.hash.clone();
            e.hash = hex(&event_hash(&unhex(&e.prev_hash)?, &e.event));
            ls.insert(i + 1, serde_json::to_string(&Line::Event(e)).ok()?);
        }
        "duplicate a line" => {
            let i = rng.random_range(0..ls.len());
            let line = ls[i].clone();
            ls.insert(i, line);
        }
        "replace a checkpoint signature" => {
            let i = *checkpoints.choose(rng)?;
            let Line::Checkpoint(mut c) = serde_json::from_str(&ls[i]).ok()? else {
                return None;
            };
            let mut sig = [0u8; 64];
            rng.fill(&mut sig[..]);
            c.signature = base64::engine::general_purpose::STANDARD.encode(sig);
            ls[i] = serde_json::to_string(&Line::Checkpoint(c)).ok()?;
        }
        "sign with another key" => {
            let mut seed = [0u8; 32];
            rng.fill(&mut seed);
            let other = Signer::from_seed("k1", &seed).ok()?;
            let mut signed = checkpoints.clone();
            signed.extend(indices_of(&ls, "export"));
            let i = *signed.choose(rng)?;
            ls[i] = match serde_json::from_str(&ls[i]).ok()? {
                Line::Checkpoint(c) => serde_json::to_string(&Line::Checkpoint(other.checkpoint(
                    c.org_id,
                    c.seq,
                    &unhex(&c.hash)?,
                    c.at_us,
                    c.prev_checkpoint_seq,
                )))
                .ok()?,
                Line::Export(t) => serde_json::to_string(&Line::Export(other.trailer(
                    t.org_id,
                    t.events,
                    &unhex(&t.head_hash)?,
                    t.checkpoints,
                    t.last_checkpoint_seq,
                    t.at_us,
                )))
                .ok()?,
                Line::Event(_) => return None,
            };
        }
        "drop a checkpoint" => {
            let i = *checkpoints.choose(rng)?;
            ls.remove(i);
        }
        "alter and rehash the rest" => {
            // Change one event and recompute every hash after it: only signatures can catch it.
            let start = *events.choose(rng)?;
            let mut prev: Option<[u8; 32]> = None;
            for (n, idx) in events.iter().enumerate() {
                let Line::Event(mut e) = serde_json::from_str(&ls[*idx]).ok()? else {
                    return None;
                };
                if *idx == start {
                    e.event.outcome = if e.event.outcome == "success" {
                        "failure".into()
                    } else {
                        "success".into()
                    };
                }
                if *idx >= start {
                    let p = match prev {
                        Some(p) => p,
                        None if n == 0 => crate::genesis(e.event.org_id),
                        None => unhex(&e.prev_hash)?,
                    };
                    e.prev_hash = hex(&p);
                    let h = event_hash(&p, &e.event);
                    e.hash = hex(&h);
                    prev = Some(h);
                    ls[*idx] = serde_json::to_string(&Line::Event(e)).ok()?;
                } else {
                    prev = unhex(&e.hash);
                }
            }
        }
        _ => return None,
    }
    let out = join(&ls);
    (out != export).then_some((out, kind))
}
