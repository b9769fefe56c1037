//! cipher benches (under construction).
fn main() {}
