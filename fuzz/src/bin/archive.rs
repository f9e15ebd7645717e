//! AFL++ target: see `coffer_fuzz::archive`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::archive(data));
}
