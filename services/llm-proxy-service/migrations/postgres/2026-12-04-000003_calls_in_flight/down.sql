DROP INDEX llm_calls_in_flight;
ALTER TABLE llm_calls DROP COLUMN instance;
