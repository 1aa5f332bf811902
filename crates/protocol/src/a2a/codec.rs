//! Reading and writing the internal model in a given protocol version: the
//! one place that knows which wire shape each version uses, for agents
//! (params in, results out) and for clients (params out, results in).

use serde_json::Value;

use super::{ProtocolVersion, SendMessageRequest, SendMessageResponse, StreamResponse, Task, v03};

impl ProtocolVersion {
    /// The params of a send call, as this version writes them.
    pub fn encode_send_params(self, request: SendMessageRequest) -> serde_json::Result<Value> {
        match self {
            ProtocolVersion::V1_0 => serde_json::to_value(request),
            ProtocolVersion::V0_3 => serde_json::to_value(v03::MessageSendParams::from(request)),
        }
    }

    pub fn decode_send_params(self, params: Value) -> serde_json::Result<SendMessageRequest> {
        match self {
            ProtocolVersion::V1_0 => serde_json::from_value(params),
            ProtocolVersion::V0_3 => {
                serde_json::from_value::<v03::MessageSendParams>(params).map(Into::into)
            }
        }
    }

    /// A streamed result as JSON text, written straight from `result` in
    /// 1.0 (a 0.3 result is converted from a copy first): an agent writes
    /// one per streamed token (issue 20).
    pub fn encode_stream_result(self, result: &StreamResponse) -> serde_json::Result<String> {
        match self {
            ProtocolVersion::V1_0 => serde_json::to_string(result),
            ProtocolVersion::V0_3 => {
                serde_json::to_string(&v03::StreamResult::from(result.clone()))
            }
        }
    }

    /// A streamed result, read straight from its JSON text (the `result`
    /// of a JSON-RPC response taken as a `&RawValue`): one pass over each
    /// event of an agent's stream, where going through a `Value` made and
    /// dropped a tree of maps per streamed token (issue 20).
    pub fn decode_stream_result(self, result: &str) -> serde_json::Result<StreamResponse> {
        match self {
            ProtocolVersion::V1_0 => serde_json::from_str(result),
            ProtocolVersion::V0_3 => {
                serde_json::from_str::<v03::StreamResult>(result).map(Into::into)
            }
        }
    }

    pub fn encode_send_result(self, result: SendMessageResponse) -> serde_json::Result<Value> {
        match self {
            ProtocolVersion::V1_0 => serde_json::to_value(result),
            ProtocolVersion::V0_3 => serde_json::to_value(v03::SendResult::from(result)),
        }
    }

    pub fn decode_send_result(self, result: Value) -> serde_json::Result<SendMessageResponse> {
        match self {
            ProtocolVersion::V1_0 => serde_json::from_value(result),
            ProtocolVersion::V0_3 => {
                serde_json::from_value::<v03::SendResult>(result).map(Into::into)
            }
        }
    }

    /// A task, as `GetTask`/`CancelTask` (or `tasks/get`/`tasks/cancel`) answer it.
    pub fn encode_task(self, task: Task) -> serde_json::Result<Value> {
        match self {
            ProtocolVersion::V1_0 => serde_json::to_value(task),
            ProtocolVersion::V0_3 => serde_json::to_value(v03::Task::from(task)),
        }
    }

    pub fn decode_task(self, task: Value) -> serde_json::Result<Task> {
        match self {
            ProtocolVersion::V1_0 => serde_json::from_value(task),
            ProtocolVersion::V0_3 => serde_json::from_value::<v03::Task>(task).map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::{Message, Part, Role, TaskState, TaskStatus, TaskStatusUpdateEvent};
    use serde_json::json;

    #[test]
    fn each_version_reads_what_it_writes() {
        let request = SendMessageRequest {
            message: Message {
                message_id: "m1".into(),
                context_id: Some("conv-1".into()),
                task_id: None,
                role: Role::User,
                parts: vec![Part::text("2+2?"), Part::data(json!({"k": 1}))],
                metadata: None,
            },
            configuration: None,
            metadata: Some(serde_json::Map::from_iter([(
                "confab".to_owned(),
                json!({"user_id": "usr-1"}),
            )])),
        };
        let done = StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
            task_id: "t".into(),
            context_id: "conv-1".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: None,
            },
            metadata: None,
        });
        for version in ProtocolVersion::ALL {
            let params = version.encode_send_params(request.clone()).unwrap();
            assert_eq!(version.decode_send_params(params).unwrap(), request);
            let result = version.encode_stream_result(&done).unwrap();
            assert_eq!(version.decode_stream_result(&result).unwrap(), done);
        }
        let v03 = ProtocolVersion::V0_3.encode_send_params(request).unwrap();
        assert_eq!(
            v03["message"]["parts"][0],
            json!({"kind": "text", "text": "2+2?"})
        );
        assert_eq!(v03["message"]["role"], "user");
    }
}
