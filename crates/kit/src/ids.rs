//! Prefixed, time-ordered ids: `conv-…`, `msg-…`, `call-…`, `usr-…` (DESIGN §4).

/// A new id such as `conv-0192f4c1-…`: UUIDv7, so ids sort by creation time.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_sort_by_creation() {
        let a = new_id("msg");
        let b = new_id("msg");
        assert!(a.starts_with("msg-"));
        assert!(a < b);
    }
}
