//! AFL++ target: see `coffer_fuzz::audit_export`.
fn main() {
    afl::fuzz!(|data: &[u8]| coffer_fuzz::audit_export(data));
}
