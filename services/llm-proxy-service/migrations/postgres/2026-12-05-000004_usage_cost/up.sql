-- Usage and cost (issue 21). `api_key_id`: the personal API key a user
-- called with, when it was one (usage and budgets are kept per key too);
-- `cached_input_tokens`: the part of `input_tokens` the provider served from
-- its prompt cache (priced apart); `cost_nanos`: the call's cost in 1e-9
-- units of `[pricing] currency`, NULL when the model has no price.
ALTER TABLE llm_calls ADD COLUMN api_key_id TEXT;
ALTER TABLE llm_calls ADD COLUMN cached_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE llm_calls ADD COLUMN cost_nanos BIGINT;
CREATE INDEX llm_calls_api_key_created ON llm_calls (api_key_id, created_at);

-- A budget stored for one user or API key and one period, in place of the
-- configured default for that period ([budgets] in the settings). NULL
-- limits: no limit of that kind. `user_id` is the owner (the user itself,
-- or the key's user), so that deleting a user deletes their budgets.
CREATE TABLE budgets (
    subject TEXT NOT NULL, -- 'user' | 'api_key'
    subject_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    period TEXT NOT NULL, -- 'day' | 'month'
    tokens BIGINT,
    cost_nanos BIGINT,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, subject_id, period)
);
CREATE INDEX budgets_user ON budgets (user_id);

-- What each user and API key used in each UTC day and month, added to by
-- the recorder in the transaction that writes a call's end (src/store/
-- counters.rs), so that a budget check reads a row instead of summing the
-- period's calls: its cost stays the same however many calls a user makes.
-- `user_id` is the owner, as in budgets.
CREATE TABLE usage_counters (
    subject TEXT NOT NULL, -- 'user' | 'api_key'
    subject_id TEXT NOT NULL,
    period TEXT NOT NULL, -- 'day' | 'month'
    period_start TIMESTAMP NOT NULL,
    user_id TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    PRIMARY KEY (subject, subject_id, period, period_start)
);
CREATE INDEX usage_counters_user ON usage_counters (user_id);

-- This month's calls from before the counters, counted (calls then had no
-- API key and no cost).
INSERT INTO usage_counters (subject, subject_id, period, period_start, user_id, tokens, cost_nanos)
SELECT 'user', user_id, 'day', date_trunc('day', created_at), user_id,
       SUM(input_tokens + output_tokens), 0
FROM llm_calls
WHERE user_id IS NOT NULL AND status <> 'in_flight'
  AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC')
GROUP BY user_id, date_trunc('day', created_at);
INSERT INTO usage_counters (subject, subject_id, period, period_start, user_id, tokens, cost_nanos)
SELECT 'user', user_id, 'month', date_trunc('month', created_at), user_id,
       SUM(input_tokens + output_tokens), 0
FROM llm_calls
WHERE user_id IS NOT NULL AND status <> 'in_flight'
  AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC')
GROUP BY user_id, date_trunc('month', created_at);
