//! Randomized fault runs against the chat system, and the history checker that proves it
//! never loses, duplicates or reorders a message (issue 5; see `docs/RELIABILITY.md`).
//!
//! Layers: [`procs`] (a private `redis-server`, chat-server nodes as processes) and [`proxy`]
//! (the node↔Redis links the harness cuts) → [`client`] (scripted protocol clients) and
//! [`desktop`] (the desktop backend's real connection manager and outbox) → [`run`] (one seeded
//! run: plan, faults, healing, settling) → [`checker`] (client observations against the
//! server's canonical history) → [`campaign`] (many runs, the results table). [`rolling`] restarts
//! every node in turn behind nginx (the upgrade procedure).

pub mod aof;
pub mod campaign;
pub mod checker;
pub mod client;
pub mod desktop;
pub mod files;
pub mod procs;
pub mod proxy;
pub mod rest;
pub mod rolling;
pub mod run;
