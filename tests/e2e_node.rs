//! End-to-end: Node.js (jco) hosting the lock component.
