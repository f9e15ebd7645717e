//! Standard output that a closed pipe ends quietly (`coffer ls | head -1`): `println!` would
//! panic on EPIPE, as Rust ignores SIGPIPE. Everything the CLI prints goes through [`say!`].

use std::io::Write as _;

/// Writes one line; a reader that went away ends the process as SIGPIPE would (status 141).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    ended(written);
}

/// Writes bytes as they are (a completion script).
pub fn bytes(b: &[u8]) {
    let mut out = std::io::stdout().lock();
    ended(out.write_all(b).and_then(|()| out.flush()));
}

fn ended(written: std::io::Result<()>) {
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("coffer: writing the output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` for the CLI's output.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
