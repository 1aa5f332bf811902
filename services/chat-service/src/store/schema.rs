// The tables of chat-service, identical on PostgreSQL and SQLite.

diesel::table! {
    conversations (id) {
        id -> Text,
        user_id -> Text,
        title -> Text,
        agent_id -> Text,
        message_count -> BigInt,
        tree -> Text,
        tree_version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cost_nanos -> BigInt,
        messages_without_cost -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        conversation_id -> Text,
        user_id -> Text,
        seq -> BigInt,
        role -> Text,
        content -> Text,
        content_blocks -> Text,
        status -> Text,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        agent_task_id -> Nullable<Text>,
        created_at -> Timestamp,
        in_flight -> Bool,
        cost_nanos -> Nullable<BigInt>,
    }
}

diesel::joinable!(messages -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(conversations, messages);
