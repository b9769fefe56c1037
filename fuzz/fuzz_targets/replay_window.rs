#![no_main]
//! The replay window never admits a counter twice and a failed commit changes nothing.

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use netmesh_cipher::ReplayWindow;

fuzz_target!(|counters: Vec<u64>| {
    let window = ReplayWindow::new();
    let mut accepted = HashSet::new();
    for counter in counters {
        let checked = window.check(counter);
        let before = window.highest();
        match window.commit(counter) {
            Ok(()) => {
                assert!(checked.is_ok());
                assert!(accepted.insert(counter), "counter {counter} admitted twice");
            }
            Err(_) => assert_eq!(window.highest(), before),
        }
    }
});
