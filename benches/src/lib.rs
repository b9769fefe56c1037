//! Shared helpers for the netmesh criterion benchmarks.
