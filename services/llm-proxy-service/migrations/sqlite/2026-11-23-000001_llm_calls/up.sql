CREATE TABLE llm_calls (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    conversation_id TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    stream BOOLEAN NOT NULL,
    request TEXT NOT NULL,
    response TEXT,
    status TEXT NOT NULL,
    error TEXT,
    latency_ms BIGINT NOT NULL,
    first_chunk_ms BIGINT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX llm_calls_user_created ON llm_calls (user_id, created_at);
CREATE INDEX llm_calls_agent_created ON llm_calls (agent_id, created_at);
