//! `coffer-scan engine-child`: one file's engines. Reads a [`Request`] line and the compiled
//! rules on stdin, loads the rules, contains itself, tells the worker so ([`SEALED`] on stdout),
//! and only then opens the object; writes its report (or an error) into `out/` and exits with a
//! code of [`exit`].

use std::io::{BufRead as _, Read as _, Write as _};

use super::{ERROR, OBJECT, PROTOCOL, REPORT, Request, SEALED, UNPACK, contain, exit};
use crate::engines::local::Local;
use crate::engines::yara::Ruleset;

/// Largest request line, and largest rules, a child reads.
const MAX_REQUEST: u64 = 64 * 1024;
const MAX_RULES: u64 = 256 << 20;

/// Runs the child; its exit code. Called by `main` before any runtime starts.
pub fn main() -> i32 {
    std::panic::catch_unwind(run).unwrap_or(exit::PANICKED)
}

fn run() -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    if (&mut stdin)
        .take(MAX_REQUEST)
        .read_until(b'\n', &mut line)
        .is_err()
    {
        return exit::BAD_REQUEST;
    }
    let Ok(request) = serde_json::from_slice::<Request>(&line) else {
        return exit::BAD_REQUEST;
    };
    let fail = |code: i32, message: &str| {
        let _ = std::fs::write(request.dir.join(ERROR), message.as_bytes());
        code
    };
    if request.protocol != PROTOCOL {
        return fail(
            exit::BAD_REQUEST,
            &format!(
                "the worker speaks protocol {}, this child {PROTOCOL}: different builds",
                request.protocol
            ),
        );
    }
    if request.rules_len > MAX_RULES {
        return fail(exit::BAD_REQUEST, "the rules are too large");
    }
    let mut rules = Vec::new();
    match (&mut stdin).take(request.rules_len).read_to_end(&mut rules) {
        Ok(n) if n as u64 == request.rules_len => {}
        _ => return fail(exit::BAD_REQUEST, "the rules were cut short"),
    }
    let rules = match Ruleset::deserialize(&rules, request.ruleset.clone()) {
        Ok(rules) => rules,
        Err(error) => return fail(exit::BAD_REQUEST, &format!("the rules: {error}")),
    };
    let local = Local::new(rules, request.archive.clone(), request.model.clone());
    drop(stdin);
    let enforced = match contain::enter(
        &request.dir,
        request.model.model.as_deref(),
        &request.limits,
    )
    .and_then(|enforced| contain::seal().map(|()| enforced))
    {
        Ok(enforced) => enforced,
        Err(error) => return fail(exit::NOT_CONTAINED, &error.to_string()),
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(&[SEALED]).and_then(|()| out.flush()).is_err() {
        return fail(exit::NOT_CONTAINED, "the worker's pipe is closed");
    }
    let object = request.dir.join(OBJECT);
    #[cfg(feature = "engine-probe")]
    if let Some(code) = super::probe::run(&object, &request.dir) {
        return code;
    }
    let unpack = request.dir.join(UNPACK);
    let scanned = local
        .scan(&object, &unpack, &request.declared, request.nsfw)
        .map(|mut report| {
            report.landlock = format!("{enforced:?}");
            report
        })
        .and_then(|report| serde_json::to_vec(&report).map_err(std::io::Error::other))
        .and_then(|bytes| std::fs::write(request.dir.join(REPORT), bytes));
    match scanned {
        Ok(()) => exit::OK,
        Err(error) => fail(exit::SCAN_ERROR, &error.to_string()),
    }
}
