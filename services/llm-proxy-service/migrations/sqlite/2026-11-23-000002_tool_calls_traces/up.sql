-- The provider's model name that answered (after alias resolution) and how
-- many upstream attempts the call took.
ALTER TABLE llm_calls ADD COLUMN upstream_model TEXT;
ALTER TABLE llm_calls ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;

CREATE TABLE tool_calls (
    id TEXT PRIMARY KEY NOT NULL,
    call_id TEXT NOT NULL REFERENCES llm_calls (id) ON DELETE CASCADE,
    -- Position among the call's tool calls, and the id the model gave it.
    idx BIGINT NOT NULL,
    tool_call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON text as the model wrote it (not necessarily valid JSON).
    arguments TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX tool_calls_call ON tool_calls (call_id, idx);

CREATE TABLE trace_events (
    -- One sequence over every event of the proxy (see src/trace/hub.rs).
    seq BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    call_id TEXT NOT NULL,
    agent_id TEXT,
    user_id TEXT,
    conversation_id TEXT,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX trace_events_agent_user_seq ON trace_events (agent_id, user_id, seq);
CREATE INDEX trace_events_call ON trace_events (call_id);
