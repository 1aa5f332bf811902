-- A call's row is written when it starts (status `in_flight`) and completed
-- when it ends; `instance` names the llm-proxy-service instance running it,
-- so that when that instance dies another one (or its restart) can mark the
-- call `interrupted` (src/instances.rs).
ALTER TABLE llm_calls ADD COLUMN instance TEXT;
CREATE INDEX llm_calls_in_flight ON llm_calls (instance) WHERE status = 'in_flight';
