//! The task cache, as the command layer answers it: an execution's
//! lookups and stores, asked by its agent over the link (a stream per
//! question) or, from a pod, over the API with the execution's key.

use baton_proto::v1::CacheAnswer;
use baton_proto::v1::link::CacheRequest;

use crate::store::{Asker, Store};

/// The answer to `request` from `asker`, or `None` when the database
/// failed (no answer: the asker asks again).
pub async fn answer(store: &Store, asker: Asker<'_>, request: CacheRequest) -> Option<CacheAnswer> {
    let CacheRequest { run_id, attempt, op } = request;
    match store.answer_task_cache(asker, &run_id, attempt, op).await {
        Ok(answer) => Some(answer),
        Err(error) => error.refusal(&run_id).map(|reason| CacheAnswer::Refused { reason }),
    }
}
