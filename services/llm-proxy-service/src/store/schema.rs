// The tables of llm-proxy-service, identical on PostgreSQL and SQLite.

diesel::table! {
    llm_calls (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        provider -> Text,
        model -> Text,
        stream -> Bool,
        request -> Text,
        response -> Nullable<Text>,
        status -> Text,
        error -> Nullable<Text>,
        latency_ms -> BigInt,
        first_chunk_ms -> Nullable<BigInt>,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        created_at -> Timestamp,
    }
}
