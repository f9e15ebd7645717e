//! sqlx's `migrate!` embeds `migrations/` when this crate compiles, and cargo tracks the files it
//! read but not the directory: a new migration would not rebuild the crate, and an incremental
//! build would keep a binary without it. Watching the directory fixes that.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
