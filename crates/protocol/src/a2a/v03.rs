//! A2A v0.3 wire types, and their conversion to and from the internal model
//! (the v1.0 types of [`super::model`]).
//!
//! v0.3 differs from v1.0 in shape, not in meaning: parts and results are
//! tagged by a `kind` field (`"text"`, `"status-update"`, …), enum values are
//! lower-case (`"agent"`, `"input-required"`), files are a nested object,
//! and a status update says whether it is the last one (`final`). Every
//! conversion here is total: whatever one version can say, the other can.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model;

/// `kind` markers. A message, task or event carries its kind as a field so
/// that it is tagged wherever it appears (a task's history holds messages,
/// a stream carries any of them).
macro_rules! kind_marker {
    ($name:ident, $value:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub enum $name {
            #[default]
            #[serde(rename = $value)]
            Kind,
        }
    };
}

kind_marker!(MessageKind, "message");
kind_marker!(TaskKind, "task");
kind_marker!(StatusUpdateKind, "status-update");
kind_marker!(ArtifactUpdateKind, "artifact-update");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Agent,
}

/// A file's content: inline base64 `bytes`, or a `uri` to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FileContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Part {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    File {
        file: FileContent,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    Data {
        data: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Required by the v0.3 schema, yet often left out by clients (the
    /// specification's own examples do); read as `"message"` when missing.
    #[serde(default)]
    pub kind: MessageKind,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub role: Role,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    Submitted,
    Working,
    InputRequired,
    Completed,
    Canceled,
    Failed,
    Rejected,
    AuthRequired,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub kind: TaskKind,
    pub id: String,
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusUpdateEvent {
    pub kind: StatusUpdateKind,
    pub task_id: String,
    pub context_id: String,
    pub status: TaskStatus,
    /// The last event of the stream.
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskArtifactUpdateEvent {
    pub kind: ArtifactUpdateKind,
    pub task_id: String,
    pub context_id: String,
    pub artifact: Artifact,
    #[serde(default)]
    pub append: bool,
    #[serde(default)]
    pub last_chunk: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// One result of `message/stream` or `tasks/resubscribe`, told apart by its
/// `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamResult {
    StatusUpdate(TaskStatusUpdateEvent),
    ArtifactUpdate(TaskArtifactUpdateEvent),
    Task(Task),
    Message(Message),
}

/// The result of `message/send`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SendResult {
    Task(Task),
    Message(Message),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MessageSendConfiguration {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_output_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_length: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
}

/// Params of `message/send` and `message/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSendParams {
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<MessageSendConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

// --- v0.3 → internal ---------------------------------------------------------

impl From<Part> for model::Part {
    fn from(part: Part) -> Self {
        match part {
            Part::Text { text, metadata } => model::Part {
                metadata,
                ..model::Part::text(text)
            },
            Part::Data { data, metadata } => model::Part {
                metadata,
                ..model::Part::data(Value::Object(data))
            },
            Part::File { file, metadata } => model::Part {
                raw: file.bytes,
                url: file.uri,
                filename: file.name,
                media_type: file.mime_type,
                metadata,
                ..model::Part::default()
            },
        }
    }
}

impl From<Role> for model::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => model::Role::User,
            Role::Agent => model::Role::Agent,
        }
    }
}

impl From<Message> for model::Message {
    fn from(m: Message) -> Self {
        model::Message {
            message_id: m.message_id,
            context_id: m.context_id,
            task_id: m.task_id,
            role: m.role.into(),
            parts: m.parts.into_iter().map(Into::into).collect(),
            metadata: m.metadata,
        }
    }
}

impl From<TaskState> for model::TaskState {
    fn from(state: TaskState) -> Self {
        match state {
            TaskState::Submitted => model::TaskState::Submitted,
            TaskState::Working => model::TaskState::Working,
            TaskState::InputRequired => model::TaskState::InputRequired,
            TaskState::Completed => model::TaskState::Completed,
            TaskState::Canceled => model::TaskState::Canceled,
            TaskState::Failed => model::TaskState::Failed,
            TaskState::Rejected => model::TaskState::Rejected,
            TaskState::AuthRequired => model::TaskState::AuthRequired,
            TaskState::Unknown => model::TaskState::Unspecified,
        }
    }
}

impl From<TaskStatus> for model::TaskStatus {
    fn from(s: TaskStatus) -> Self {
        model::TaskStatus {
            state: s.state.into(),
            message: s.message.map(Into::into),
            timestamp: s.timestamp,
        }
    }
}

impl From<Artifact> for model::Artifact {
    fn from(a: Artifact) -> Self {
        model::Artifact {
            artifact_id: a.artifact_id,
            name: a.name,
            description: a.description,
            parts: a.parts.into_iter().map(Into::into).collect(),
            metadata: a.metadata,
        }
    }
}

impl From<Task> for model::Task {
    fn from(t: Task) -> Self {
        model::Task {
            id: t.id,
            context_id: t.context_id,
            status: t.status.into(),
            artifacts: t.artifacts.into_iter().map(Into::into).collect(),
            history: t.history.into_iter().map(Into::into).collect(),
            metadata: t.metadata,
        }
    }
}

impl From<StreamResult> for model::StreamResponse {
    fn from(result: StreamResult) -> Self {
        match result {
            StreamResult::Task(task) => model::StreamResponse::Task(task.into()),
            StreamResult::Message(message) => model::StreamResponse::Message(message.into()),
            StreamResult::StatusUpdate(u) => {
                model::StreamResponse::StatusUpdate(model::TaskStatusUpdateEvent {
                    task_id: u.task_id,
                    context_id: u.context_id,
                    status: u.status.into(),
                    metadata: u.metadata,
                })
            }
            StreamResult::ArtifactUpdate(u) => {
                model::StreamResponse::ArtifactUpdate(model::TaskArtifactUpdateEvent {
                    task_id: u.task_id,
                    context_id: u.context_id,
                    artifact: u.artifact.into(),
                    append: u.append,
                    last_chunk: u.last_chunk,
                    metadata: u.metadata,
                })
            }
        }
    }
}

impl From<SendResult> for model::SendMessageResponse {
    fn from(result: SendResult) -> Self {
        match result {
            SendResult::Task(task) => model::SendMessageResponse::Task(task.into()),
            SendResult::Message(message) => model::SendMessageResponse::Message(message.into()),
        }
    }
}

impl From<MessageSendParams> for model::SendMessageRequest {
    fn from(p: MessageSendParams) -> Self {
        model::SendMessageRequest {
            message: p.message.into(),
            configuration: p.configuration.map(|c| model::SendMessageConfiguration {
                accepted_output_modes: c.accepted_output_modes,
                history_length: c.history_length,
                blocking: c.blocking,
            }),
            metadata: p.metadata,
        }
    }
}

// --- internal → v0.3 ---------------------------------------------------------

impl From<model::Part> for Part {
    fn from(part: model::Part) -> Self {
        let metadata = part.metadata;
        if let Some(text) = part.text {
            return Part::Text { text, metadata };
        }
        if let Some(data) = part.data {
            // v0.3 data is always an object; other JSON values are wrapped.
            let data = match data {
                Value::Object(map) => map,
                other => Map::from_iter([("value".to_owned(), other)]),
            };
            return Part::Data { data, metadata };
        }
        if part.raw.is_some() || part.url.is_some() {
            return Part::File {
                file: FileContent {
                    name: part.filename,
                    mime_type: part.media_type,
                    bytes: part.raw,
                    uri: part.url,
                },
                metadata,
            };
        }
        // A part with no content says nothing; as text it says it the same.
        Part::Text {
            text: String::new(),
            metadata,
        }
    }
}

impl From<model::Role> for Role {
    fn from(role: model::Role) -> Self {
        match role {
            model::Role::Agent => Role::Agent,
            // v0.3 has no "unspecified": a message of unknown origin is
            // treated as the client's.
            model::Role::User | model::Role::Unspecified => Role::User,
        }
    }
}

impl From<model::Message> for Message {
    fn from(m: model::Message) -> Self {
        Message {
            kind: MessageKind::Kind,
            message_id: m.message_id,
            context_id: m.context_id,
            task_id: m.task_id,
            role: m.role.into(),
            parts: m.parts.into_iter().map(Into::into).collect(),
            metadata: m.metadata,
        }
    }
}

impl From<model::TaskState> for TaskState {
    fn from(state: model::TaskState) -> Self {
        match state {
            model::TaskState::Submitted => TaskState::Submitted,
            model::TaskState::Working => TaskState::Working,
            model::TaskState::InputRequired => TaskState::InputRequired,
            model::TaskState::Completed => TaskState::Completed,
            model::TaskState::Canceled => TaskState::Canceled,
            model::TaskState::Failed => TaskState::Failed,
            model::TaskState::Rejected => TaskState::Rejected,
            model::TaskState::AuthRequired => TaskState::AuthRequired,
            model::TaskState::Unspecified => TaskState::Unknown,
        }
    }
}

impl From<model::TaskStatus> for TaskStatus {
    fn from(s: model::TaskStatus) -> Self {
        TaskStatus {
            state: s.state.into(),
            message: s.message.map(Into::into),
            timestamp: s.timestamp,
        }
    }
}

impl From<model::Artifact> for Artifact {
    fn from(a: model::Artifact) -> Self {
        Artifact {
            artifact_id: a.artifact_id,
            name: a.name,
            description: a.description,
            parts: a.parts.into_iter().map(Into::into).collect(),
            metadata: a.metadata,
        }
    }
}

impl From<model::Task> for Task {
    fn from(t: model::Task) -> Self {
        Task {
            kind: TaskKind::Kind,
            id: t.id,
            context_id: t.context_id,
            status: t.status.into(),
            history: t.history.into_iter().map(Into::into).collect(),
            artifacts: t.artifacts.into_iter().map(Into::into).collect(),
            metadata: t.metadata,
        }
    }
}

impl From<model::StreamResponse> for StreamResult {
    fn from(response: model::StreamResponse) -> Self {
        match response {
            model::StreamResponse::Task(task) => StreamResult::Task(task.into()),
            model::StreamResponse::Message(message) => StreamResult::Message(message.into()),
            model::StreamResponse::StatusUpdate(u) => {
                StreamResult::StatusUpdate(TaskStatusUpdateEvent {
                    kind: StatusUpdateKind::Kind,
                    is_final: u.status.state.ends_stream(),
                    task_id: u.task_id,
                    context_id: u.context_id,
                    status: u.status.into(),
                    metadata: u.metadata,
                })
            }
            model::StreamResponse::ArtifactUpdate(u) => {
                StreamResult::ArtifactUpdate(TaskArtifactUpdateEvent {
                    kind: ArtifactUpdateKind::Kind,
                    task_id: u.task_id,
                    context_id: u.context_id,
                    artifact: u.artifact.into(),
                    append: u.append,
                    last_chunk: u.last_chunk,
                    metadata: u.metadata,
                })
            }
        }
    }
}

impl From<model::SendMessageResponse> for SendResult {
    fn from(response: model::SendMessageResponse) -> Self {
        match response {
            model::SendMessageResponse::Task(task) => SendResult::Task(task.into()),
            model::SendMessageResponse::Message(message) => SendResult::Message(message.into()),
        }
    }
}

impl From<model::SendMessageRequest> for MessageSendParams {
    fn from(r: model::SendMessageRequest) -> Self {
        MessageSendParams {
            message: r.message.into(),
            configuration: r.configuration.map(|c| MessageSendConfiguration {
                accepted_output_modes: c.accepted_output_modes,
                history_length: c.history_length,
                blocking: c.blocking,
            }),
            metadata: r.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The events of the v0.3 specification's streaming example (section
    /// 9.3), with two corrections the v0.3 schema asks for: the history
    /// message has its `"kind": "message"`, and the file's content is
    /// `bytes` (the example says `data`).
    fn specification_stream() -> Vec<Value> {
        vec![
            json!({
                "id": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1",
                "status": {"state": "submitted", "timestamp": "2025-04-02T16:59:25.331844"},
                "history": [{
                    "kind": "message",
                    "role": "user",
                    "parts": [
                        {"kind": "text", "text": "write a long paper describing the attached pictures"},
                        {"kind": "file", "file": {"mimeType": "image/png", "bytes": "aGk="}}
                    ],
                    "messageId": "bbb7dee1-cf5c-4683-8a6f-4114529da5eb",
                    "taskId": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                    "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1"
                }],
                "kind": "task",
                "metadata": {}
            }),
            json!({
                "taskId": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1",
                "artifact": {"artifactId": "9b6934dd-37e3-4eb1-8766-962efaab63a1", "parts": [{"kind": "text", "text": "<section 1...>"}]},
                "append": false,
                "lastChunk": false,
                "kind": "artifact-update"
            }),
            json!({
                "taskId": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1",
                "artifact": {"artifactId": "9b6934dd-37e3-4eb1-8766-962efaab63a1", "parts": [{"kind": "text", "text": "<section 3...>"}]},
                "append": true,
                "lastChunk": true,
                "kind": "artifact-update"
            }),
            json!({
                "taskId": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1",
                "status": {"state": "completed", "timestamp": "2025-04-02T16:59:35.331844"},
                "final": true,
                "kind": "status-update"
            }),
        ]
    }

    #[test]
    fn specification_stream_survives_the_trip_through_the_internal_model() {
        for sample in specification_stream() {
            let wire: StreamResult = serde_json::from_value(sample.clone()).unwrap();
            let internal: model::StreamResponse = wire.into();
            let back: StreamResult = internal.into();
            assert_eq!(serde_json::to_value(&back).unwrap(), sample);
        }
    }

    #[test]
    fn results_convert_to_their_v1_equivalents() {
        let mut results = specification_stream().into_iter().map(|s| {
            model::StreamResponse::from(serde_json::from_value::<StreamResult>(s).unwrap())
        });
        let Some(model::StreamResponse::Task(task)) = results.next() else {
            panic!("the first result is the task");
        };
        assert_eq!(task.status.state, model::TaskState::Submitted);
        let file = &task.history[0].parts[1];
        assert_eq!(file.media_type.as_deref(), Some("image/png"));
        assert_eq!(file.raw.as_deref(), Some("aGk="));
        assert_eq!(task.history[0].role, model::Role::User);
        let v1 = serde_json::to_value(results.next_back().unwrap()).unwrap();
        assert_eq!(
            v1,
            json!({"statusUpdate": {
                "taskId": "225d6247-06ba-4cda-a08b-33ae35c8dcfa",
                "contextId": "05217e44-7e9f-473e-ab4f-2c2dde50a2b1",
                "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "2025-04-02T16:59:35.331844"}
            }})
        );
    }

    #[test]
    fn v1_results_get_their_kind_and_final_in_v03() {
        let working = model::StreamResponse::StatusUpdate(model::TaskStatusUpdateEvent {
            task_id: "t".into(),
            context_id: "c".into(),
            status: model::TaskStatus {
                state: model::TaskState::Working,
                message: Some(model::Message {
                    message_id: "m".into(),
                    context_id: None,
                    task_id: None,
                    role: model::Role::Agent,
                    parts: vec![model::Part::data(json!([1, 2]))],
                    metadata: None,
                }),
                timestamp: None,
            },
            metadata: None,
        });
        assert_eq!(
            serde_json::to_value(StreamResult::from(working)).unwrap(),
            json!({"kind": "status-update", "taskId": "t", "contextId": "c", "final": false,
                   "status": {"state": "working", "message": {"kind": "message", "messageId": "m", "role": "agent",
                   "parts": [{"kind": "data", "data": {"value": [1, 2]}}]}}})
        );
    }

    #[test]
    fn a_message_without_kind_is_read_as_the_specification_examples_send_it() {
        let params: MessageSendParams = serde_json::from_value(json!({
            "message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m1"},
            "metadata": {}
        }))
        .unwrap();
        let request: model::SendMessageRequest = params.into();
        assert_eq!(request.message.text(), "hi");
        assert_eq!(request.message.role, model::Role::User);
    }

    #[test]
    fn a_part_of_unknown_kind_is_refused() {
        let part = serde_json::from_value::<Part>(json!({"kind": "video", "text": "x"}));
        assert!(part.is_err());
    }
}
