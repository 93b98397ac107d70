//! Fuzz target: one HTTP request, routed and answered by the component's pure rules
//! (`wasilock-rules`) over each of the fake store's scenarios; every answer must be one daprd
//! could give.
//!
//! Input: `METHOD PATH` on the first line (bytes that are not UTF-8 read as U+FFFD), the body
//! after the newline. Without a newline the whole input is the first line and the body is
//! empty.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasilock_rules::fake_store::FakeStore;
use wasilock_rules::http::{check_dapr_shape, respond, route};

fuzz_target!(|input: &[u8]| {
    let (head, body) = match input.iter().position(|&b| b == b'\n') {
        Some(end) => (&input[..end], &input[end + 1..]),
        None => (input, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let (method, path) = head.split_once(' ').unwrap_or((&head, ""));
    let route = route(method, path);
    for store in FakeStore::scenarios() {
        let response = respond(&&store, &route, body);
        if let Err(why) = check_dapr_shape(&route, &response) {
            panic!("{method} {path}: {why}");
        }
    }
});
