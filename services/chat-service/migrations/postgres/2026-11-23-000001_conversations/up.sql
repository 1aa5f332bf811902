CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    message_count BIGINT NOT NULL DEFAULT 0,
    tree TEXT NOT NULL DEFAULT '{}',
    tree_version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX conversations_user_id ON conversations (user_id, id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    content_blocks TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    agent_task_id TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (conversation_id, seq)
);
