//! End-to-end: Python (wasmtime-py) hosting the lock component.
