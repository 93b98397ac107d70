//! The child processes tests start: their pipes copied into memory, and their end.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{Arc, Mutex};

/// Copies a pipe into `sink` line by line, so that the child never blocks on a full pipe.
pub(crate) fn drain(pipe: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
}

/// Kills `child` (SIGKILL) and reaps it; one that has already exited is only reaped.
pub(crate) fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Ends the child in `slot`, if any, and empties the slot.
pub(crate) fn end_taken(slot: &mut Option<Child>) {
    if let Some(mut child) = slot.take() {
        end(&mut child);
    }
}
