ALTER TABLE conversations DROP COLUMN messages_without_cost;
ALTER TABLE conversations DROP COLUMN cost_nanos;
ALTER TABLE conversations DROP COLUMN output_tokens;
ALTER TABLE conversations DROP COLUMN input_tokens;
ALTER TABLE messages DROP COLUMN cost_nanos;
