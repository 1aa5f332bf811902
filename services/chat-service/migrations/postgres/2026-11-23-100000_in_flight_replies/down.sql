DROP INDEX messages_in_flight;
ALTER TABLE messages DROP COLUMN in_flight;
