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
        upstream_model -> Nullable<Text>,
        attempts -> BigInt,
        instance -> Nullable<Text>,
        api_key_id -> Nullable<Text>,
        cached_input_tokens -> BigInt,
        cost_nanos -> Nullable<BigInt>,
    }
}

diesel::table! {
    budgets (subject, subject_id, period) {
        subject -> Text,
        subject_id -> Text,
        user_id -> Text,
        period -> Text,
        tokens -> Nullable<BigInt>,
        cost_nanos -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    tool_calls (id) {
        id -> Text,
        call_id -> Text,
        idx -> BigInt,
        tool_call_id -> Text,
        name -> Text,
        arguments -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    trace_events (seq) {
        seq -> BigInt,
        kind -> Text,
        call_id -> Text,
        agent_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(tool_calls -> llm_calls (call_id));
diesel::table! {
    usage_counters (subject, subject_id, period, period_start) {
        subject -> Text,
        subject_id -> Text,
        period -> Text,
        period_start -> Timestamp,
        user_id -> Text,
        tokens -> BigInt,
        cost_nanos -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    budgets,
    llm_calls,
    tool_calls,
    trace_events,
    usage_counters
);
