//! AFL++ target: see `coffer_fuzz::gateway_query`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::gateway_query(data));
}
