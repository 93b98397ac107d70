//! wasilock's lock-safety checker: clients take, hold and release leases with random
//! timings against hosts and stores that are killed and restarted, every call is recorded,
//! and the history is checked for two holders of one lock, unlocks by non-owners and locks
//! lost in a crash.
//!
//! - [`history`]: the recorded calls and faults;
//! - [`checker`]: the rules, over a history (pure);
//! - [`workload`]: the client threads;
//! - [`setups`]: the hosts, stores and faults of each setup;
//! - [`redis_admin`]: direct commands to Redis and Sentinel, and the Sentinel's events;
//! - [`report`]: a run's figures and findings as text.

#![warn(missing_docs)]

pub mod checker;
pub mod history;
pub mod redis_admin;
pub mod report;
pub mod setups;
pub mod workload;
