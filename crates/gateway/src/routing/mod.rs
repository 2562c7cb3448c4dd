//! Who may call, which candidates serve a model, in which order, and how
//! failures move a request on: the registry and state, client access, the
//! breakers.

pub mod access;
pub mod admission;
pub mod breaker;
pub mod failover;
pub mod serve;
pub mod state;
