//! Runs real net-mesh 0.23 nodes as peers of netmesh.
//!
//!     refnode kat
//!
//! `kat`: the handshake known-answer check against a NetAdapter and a MeshNode, both
//! directions (exit status 1 on any failure).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("kat") => kat(),
        _ => {
            eprintln!("usage: refnode kat");
            ExitCode::from(2)
        }
    }
}

fn kat() -> ExitCode {
    let outcomes = match netmesh_differential::kat::run() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for o in &outcomes {
        let verdict = if o.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!("{verdict}: {}", o.name);
        for n in &o.notes {
            println!("    {n}");
        }
        for f in &o.failures {
            println!("    FAILURE: {f}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
