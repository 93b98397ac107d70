//! End-to-end: a lock component written in Python (componentize-py) running in our host.
