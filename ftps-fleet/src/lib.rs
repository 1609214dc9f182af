//! # ftps-fleet
//!
//! What the nodes of a fleet behind a load balancer share: [`RedisLockout`], the login
//! lockout kept in Redis, so that one address's failed logins count together on every
//! node and an address locked out through one node is locked out on all of them
//! (`ServerBuilder::lockout`). Everything else a session needs stays on its node (see
//! `ARCHITECTURE.md`, "Behind a balancer").

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod redis_lockout;

pub use redis_lockout::RedisLockout;
