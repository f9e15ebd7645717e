//! AFL++ target: see `coffer_fuzz::gateway_json`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::gateway_json(data));
}
