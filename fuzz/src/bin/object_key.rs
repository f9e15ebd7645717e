//! AFL++ target: see `coffer_fuzz::object_key`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::object_key(data));
}
