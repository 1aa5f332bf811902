-- Usage and cost (issue 21). A reply's cost as the agent reported it, in
-- nano-units of the currency (1e-9; integers, so sums are exact); NULL when
-- the agent reported none.
ALTER TABLE messages ADD COLUMN cost_nanos BIGINT;
-- A conversation's running totals over its finished replies, written in
-- the transaction that finishes each reply. `cost_nanos` sums the known
-- costs; `messages_without_cost` counts the replies whose cost is unknown.
ALTER TABLE conversations ADD COLUMN input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN cost_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN messages_without_cost BIGINT NOT NULL DEFAULT 0;
-- The replies finished before this migration: their tokens count, and none
-- has a known cost.
UPDATE conversations SET
    input_tokens = COALESCE((SELECT SUM(m.input_tokens) FROM messages m
        WHERE m.conversation_id = conversations.id AND m.role = 'assistant' AND NOT m.in_flight), 0),
    output_tokens = COALESCE((SELECT SUM(m.output_tokens) FROM messages m
        WHERE m.conversation_id = conversations.id AND m.role = 'assistant' AND NOT m.in_flight), 0),
    messages_without_cost = (SELECT COUNT(*) FROM messages m
        WHERE m.conversation_id = conversations.id AND m.role = 'assistant' AND NOT m.in_flight);
