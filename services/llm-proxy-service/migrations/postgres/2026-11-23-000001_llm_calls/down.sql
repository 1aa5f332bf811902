DROP TABLE llm_calls;
