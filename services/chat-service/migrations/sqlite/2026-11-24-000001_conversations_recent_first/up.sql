-- The conversation list (GET /chat/conversations): one user's conversations,
-- most recently updated first, paged by (updated_at, id).
CREATE INDEX conversations_recent_first ON conversations (user_id, updated_at DESC, id DESC);
