//! AFL++ target: see `coffer_fuzz::truetype`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::truetype(data));
}
