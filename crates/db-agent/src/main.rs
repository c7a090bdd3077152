//! The `db-agent` binary (the command line comes in a later commit).

fn main() {}
