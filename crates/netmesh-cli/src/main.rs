//! `netmesh`: keys, a listener, a sender and a benchmark for encrypted events over UDP.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    netmesh_cli::main()
}
