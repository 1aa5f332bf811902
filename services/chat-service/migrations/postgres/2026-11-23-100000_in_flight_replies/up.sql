-- An assistant reply is written when its turn starts and finished when the
-- turn ends; until then it is in flight (not listed). A reply still in
-- flight when chat-service starts was cut off by a crash: it becomes
-- `interrupted`.
ALTER TABLE messages ADD COLUMN in_flight BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX messages_in_flight ON messages (in_flight) WHERE in_flight;
