//! The refusals of a turn's start, as every entry point that starts one
//! answers them: the checks run in the one place they share
//! ([`crate::turns::begin`] and the turn budget), so their description is
//! one too.

use confab_protocol::error::ErrorBody;

/// `responses(…, TurnRefusals)` in a turn's `#[utoipa::path]`.
#[derive(utoipa::IntoResponses)]
pub enum TurnRefusals {
    #[response(
        status = 409,
        description = "`turn_in_flight`: a reply is still being written in this conversation."
    )]
    TurnInFlight(ErrorBody),
    #[response(
        status = 413,
        description = "`message_too_long`: the message is over `chat.max_message_chars`; `body_too_large`: the body is over the limit."
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 429,
        description = "`rate_limited`: too many replies being written at once, or too many messages this minute; `budget_exceeded`: the user's or API key's LLM budget is spent (`error.limit`, `error.resets_at`).",
        headers(("retry-after" = u64, description = "Seconds to wait before trying again."))
    )]
    TooMany(ErrorBody),
    #[response(
        status = 503,
        description = "`budget_unavailable`: the LLM budget cannot be checked just now; `bus_unavailable`: the service is cut off from its other instances."
    )]
    Unavailable(ErrorBody),
}
