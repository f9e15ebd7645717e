//! AFL++ target: see `coffer_fuzz::webhook`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::webhook(data));
}
