//! AFL++ target: see `coffer_fuzz::sensitive`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::sensitive(data));
}
