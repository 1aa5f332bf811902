//! Turns whose instance died: taken over by another (DESIGN §15).
//!
//! A running turn's claim names its instance ([`super::claims`]), alive
//! while it renews its lease. When the instance dies, its lease lapses and
//! its replies stay in flight in the database. Every instance looks for
//! such replies when it starts and then once per lease: for each one whose
//! claim's instance is dead (or that nobody claims), it writes its own claim
//! over that one at its revision (one instance wins), reads the events the turn had
//! published from the bus, and goes on with the same reply and the same
//! event numbers: it subscribes to the agent's task again (or reads it with
//! `GetTask` when it has ended) and finishes the reply. Only a turn whose
//! agent task cannot be found any more ends `interrupted`.
//!
//! A turn running on a live instance is never touched: its claim names it.

use std::sync::Arc;

use serde_json::json;

use super::Turn;
use super::log::{STREAM, TurnLog};
use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::store::models::MessageRow;
use crate::store::{conversations, messages};

/// Takes over what needs it now, then again every lease, for as long as
/// the service runs.
pub async fn watch(state: Arc<AppState>) {
    let every = state.in_flight.lease();
    loop {
        tokio::time::sleep(every).await;
        if let Err(err) = sweep(&state).await {
            tracing::warn!(error = %err, "looking for turns to take over failed");
        }
    }
}

/// Takes over every reply in flight whose instance is dead; how many.
pub async fn sweep(state: &AppState) -> Result<usize, ChatError> {
    let mut taken = 0;
    for reply in messages::in_flight_replies(&state.db).await? {
        if take_over(state, reply).await? {
            taken += 1;
        }
    }
    if taken > 0 {
        tracing::warn!(taken, "turns of an instance that stopped taken over");
    }
    Ok(taken)
}

/// Takes the turn of `reply` over if its instance is dead; whether it did.
async fn take_over(state: &AppState, reply: MessageRow) -> Result<bool, ChatError> {
    let conversation_id = reply.conversation_id.clone();
    if state.in_flight.runs(&conversation_id) {
        return Ok(false);
    }
    // A claim of a live instance is another turn's or this one's, running
    // (a newer turn's claim on a stale reply: that one is taken over when
    // it ends). None: the instance died before its claim's first write
    // reached the bus, or the bus lived in the process that died.
    let stale = match state.in_flight.claimed(&conversation_id).await? {
        Some((_, _, true)) => return Ok(false),
        Some((_, revision, false)) => Some(revision),
        None => None,
    };
    // Where its events start, if the bus still knows: its own record, or
    // else (the bus lived in the process that died) from now on.
    let record = state.in_flight.record(&reply.id).await?;
    let (start, earlier) = match record {
        Some(record) => {
            let earlier = TurnLog::written(
                state.events.bus(),
                &conversation_id,
                &reply.id,
                record.start,
            )
            .await?;
            (record.start, earlier)
        }
        None => (state.events.bus().last_seq(STREAM).await?, Vec::new()),
    };
    // A turn saves its reply before its `done`: one in flight has none.
    let logged = earlier.last().map_or(0, |(seq, _)| *seq);
    let log = TurnLog::resume(&state.events, &conversation_id, &reply.id, start, logged);
    let Some(claim) = state
        .in_flight
        .take_over(&conversation_id, &reply.id, &reply.user_id, log, stale)
        .await?
    else {
        return Ok(false);
    };
    // The replies were listed before their claims were read, one by one:
    // a turn that ended meanwhile saved its reply, then let its claim go.
    // Read again now that the claim is this instance's, so such a turn is
    // never taken for one whose instance died.
    if !messages::is_in_flight(&state.db, &reply.id).await? {
        claim.release().await;
        return Ok(false);
    }
    let user_id = reply.user_id.clone();
    let Some(conversation) = conversations::get(&state.db, &user_id, &conversation_id).await?
    else {
        // Deleted meanwhile (its messages with it): nothing to finish.
        claim.release().await;
        return Ok(false);
    };
    let question = messages::at_seq(&state.db, &user_id, &conversation_id, reply.seq - 1).await?;
    let Some(question) = question else {
        claim.release().await;
        return Ok(false);
    };
    let text = MessageText::parse(question.content.clone(), usize::MAX)?;
    tracing::info!(reply_id = %reply.id, %conversation_id, "taking over a turn whose instance stopped");
    let turn = Turn {
        db: state.db.clone(),
        client: state.a2a.clone(),
        user_id,
        api_key_id: None,
        conversation_id,
        agent_id: conversation.agent_id.clone(),
        agents: state.agents.clone(),
        claim,
        user_message: question,
        reply,
        text,
        history: Vec::new(),
        trace: Trace::default(),
        tree: serde_json::from_str(&conversation.tree).unwrap_or_else(|_| json!({})),
        tree_limits: state.chat.tree_limits(),
        retry: state.retry,
    };
    tokio::spawn(turn.resume(earlier.into_iter().map(|(_, event)| event).collect()));
    Ok(true)
}
