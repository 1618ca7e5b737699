//! HTTP benchmark (filled in below).
fn main() {}
