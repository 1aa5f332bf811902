DROP TABLE usage_counters;
DROP TABLE budgets;
DROP INDEX llm_calls_api_key_created;
ALTER TABLE llm_calls DROP COLUMN cost_nanos;
ALTER TABLE llm_calls DROP COLUMN cached_input_tokens;
ALTER TABLE llm_calls DROP COLUMN api_key_id;
