//! Who may call, which candidates serve a model, in which order, and how
//! failures move a request on: the registry and state, client access, the
//! breakers.

pub(crate) mod access;
pub(crate) mod admission;
pub(crate) mod affinity;
pub(crate) mod breaker;
pub(crate) mod failover;
pub(crate) mod fallback;
pub(crate) mod serve;
pub(crate) mod state;
