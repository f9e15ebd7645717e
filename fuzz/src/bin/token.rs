//! AFL++ target: see `coffer_fuzz::token`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::token(data));
}
