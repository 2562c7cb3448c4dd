//! Admission, the one gate of every route served by candidates: a scoped
//! key's limits (the model and the upstreams it may use), a stored key's
//! address, quota and rate limits (its prompt estimate reserved), and the
//! order to try what remains. It returns the [`Admitted`] ticket that the
//! failover loop requires: a route that skips admission does not compile.

use std::net::IpAddr;
use std::sync::Arc;

use keyauth::KeyId;

use crate::backend::Model;
use crate::error::ApiError;
use crate::keys::Ticket;
use crate::routing::state::AppState;

/// Who asks and for what, as admission needs it: plain values, so any
/// front door can fill it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The client key's id (`None` when authentication is off).
    pub key: Option<&'a KeyId>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The model name the request names.
    pub model: &'a str,
    /// Prompt tokens to reserve against a stored key's quota (0 when
    /// unknown, as for a pass-through body).
    pub estimate: u64,
    /// The conversation's affinity (see [`crate::routing::affinity`]).
    pub affinity: Option<u64>,
}

/// A request admitted: the candidates its key may use, in the order to try
/// them, and a stored key's ticket (settled by the request's outcome).
/// Only [`AppState::admit`] makes one.
#[derive(Debug)]
pub struct Admitted {
    cands: Vec<Arc<Model>>,
    ticket: Option<Arc<Ticket>>,
    /// With an affinity: the candidate it prefers (the first by rendezvous,
    /// healthy or not), to count hits and moves.
    preferred: Option<String>,
    /// What [`Self::served_by`] found: 0 not yet, 1 a hit, 2 a move.
    affinity: std::sync::atomic::AtomicU8,
}

impl Admitted {
    /// Candidates admitted as they are, for the failover loop's tests.
    #[cfg(test)]
    pub(crate) fn for_tests(cands: Vec<Arc<Model>>) -> Self {
        Self {
            cands,
            ticket: None,
            preferred: None,
            affinity: Default::default(),
        }
    }

    /// The candidates, in order.
    pub fn candidates(&self) -> &[Arc<Model>] {
        &self.cands
    }

    /// Counts an affine request's outcome: served by the candidate its
    /// affinity prefers (a hit) or by another (a move).
    pub(crate) fn served_by(&self, model: &Model) {
        if let Some(p) = &self.preferred {
            let hit = *p == model.key();
            self.affinity.store(
                if hit { 1 } else { 2 },
                std::sync::atomic::Ordering::Relaxed,
            );
            crate::observe::metrics::METRICS
                .affinity
                .with_label_values(&[model.cfg.name.as_str(), if hit { "hit" } else { "move" }])
                .inc();
        }
    }

    /// The affinity's result once a candidate served: `hit` or `move`
    /// (`None` without affinity).
    pub(crate) fn affinity(&self) -> Option<&'static str> {
        match self.affinity.load(std::sync::atomic::Ordering::Relaxed) {
            1 => Some("hit"),
            2 => Some("move"),
            _ => None,
        }
    }

    /// A stored key's admission, for the outcome to settle.
    pub fn ticket(&self) -> Option<Arc<Ticket>> {
        self.ticket.clone()
    }
}

impl AppState {
    /// Admits `ask` over `cands` (every candidate that serves its model):
    /// 403 when the key may not use the model or any of its candidates,
    /// 403/429 from a stored key's address, quota or limits.
    pub async fn admit(&self, ask: Ask<'_>, cands: Vec<Arc<Model>>) -> Result<Admitted, ApiError> {
        let allowed = self.access.permit(ask.key, ask.model, cands)?;
        let ticket = self
            .access
            .reserve(ask.key, ask.ip, ask.estimate, || {
                self.config.price_of(ask.model)
            })
            .await?;
        let spreads = self.router.config().strategy != crate::config::Strategy::Priority;
        let preferred = ask
            .affinity
            .filter(|_| spreads)
            .and_then(|a| crate::routing::affinity::preferred(&allowed, a).map(|m| m.key()));
        Ok(Admitted {
            cands: self.router.order_for(allowed, ask.affinity),
            ticket,
            preferred,
            affinity: Default::default(),
        })
    }
}
