DROP TABLE trace_events;
DROP TABLE tool_calls;
ALTER TABLE llm_calls DROP COLUMN attempts;
ALTER TABLE llm_calls DROP COLUMN upstream_model;
