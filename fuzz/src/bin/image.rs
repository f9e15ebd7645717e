//! AFL++ target: see `coffer_fuzz::image`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::image(data));
}
