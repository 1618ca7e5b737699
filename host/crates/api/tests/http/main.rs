//! assay's HTTP API over real HTTP: a server on a loopback port, a reqwest
//! client, a temp SQLite database per test.

mod browser_access;
mod cache;
mod common;
mod crud;
mod errors;
mod events;
mod fairness;
mod metrics;
mod network;
mod openapi;
mod overload;
mod plugins;
mod runs;
mod secrets;
mod strict;
mod tenancy;
