//! The one serve path of every route answered by backends: an admitted
//! request's [`Call`] through [`failover::run`], whole or as a stream whose
//! first batch is in hand. It returns what the winning candidate produced,
//! never an HTTP response; front doors write it their own way.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::backend::call::Call;
use crate::backend::{Backends, Model};
use crate::error::ApiError;
use crate::routing::admission::Admitted;
use crate::routing::failover::{self, FirstByte, Opened, Rules, Served};
use crate::routing::state::AppState;

/// `call`'s whole answer from the first admitted candidate that gives one.
pub(crate) async fn whole<C: Call>(
    state: &AppState,
    backends: &Backends,
    admitted: &Admitted,
    call: C,
) -> Result<Served<C::Answer>, ApiError> {
    let model = call.model().to_owned();
    let mut call = Reusable(Some(call));
    let mut ask = |m: Arc<Model>, more: bool| -> BoxFuture<'_, _> {
        let call = call.take(more);
        Box::pin(async move { call?.whole(backends, &m).await })
    };
    failover::run(state.walk(), admitted, &model, Rules::default(), &mut ask).await
}

/// `call`'s stream from the first admitted candidate that sends a first
/// batch within its first-byte deadline.
pub(crate) async fn stream<C: Call>(
    state: &AppState,
    backends: &Backends,
    admitted: &Admitted,
    call: C,
) -> Result<Served<Opened>, ApiError> {
    let model = call.model().to_owned();
    let mut call = Reusable(Some(call));
    let mut open = |m: Arc<Model>, more: bool| -> BoxFuture<'_, _> {
        let call = call.take(more);
        Box::pin(async move { failover::first_batch(call?.stream(backends, &m).await?).await })
    };
    let rules = Rules {
        first_byte: Some(FirstByte::Stream(Duration::from_secs(
            state.config.first_byte_timeout_secs,
        ))),
        ..Rules::default()
    };
    failover::run(state.walk(), admitted, &model, rules, &mut open).await
}

/// A request that is sent whole to one candidate at a time: kept while
/// another may follow, moved into the last attempt.
struct Reusable<C>(Option<C>);

impl<C: Clone> Reusable<C> {
    fn take(&mut self, more: bool) -> Result<C, ApiError> {
        if more { self.0.clone() } else { self.0.take() }
            .ok_or_else(|| ApiError::internal("request already sent"))
    }
}
