//! Rebuilds the gateway when anything under `console/` changes, including a
//! file added or removed there: rust-embed's derive alone tracks only the
//! files that existed when it last ran.
fn main() {
    println!("cargo:rerun-if-changed=console");
}
