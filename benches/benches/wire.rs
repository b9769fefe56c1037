//! wire benches (under construction).
fn main() {}
