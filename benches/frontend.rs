//! Front-end benchmark (being written).
fn main() {}
