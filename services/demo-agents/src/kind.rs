//! The three demo agents, by what they do. Each is served on its own port
//! with its own card, tools and system prompt.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    Math,
    Text,
    Tree,
}

impl AgentKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "math" => Some(AgentKind::Math),
            "text" => Some(AgentKind::Text),
            "tree" => Some(AgentKind::Tree),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Math => "math",
            AgentKind::Text => "text",
            AgentKind::Tree => "tree",
        }
    }

    /// What the agent's model is told it is and how to use its tools.
    pub fn system_prompt(self) -> &'static str {
        match self {
            AgentKind::Math => {
                "You are Confab's math agent. Use the calculator tool for any arithmetic and answer exactly and briefly."
            }
            AgentKind::Text => {
                "You are Confab's text agent. Use your tools to count words and change case or order of a text."
            }
            AgentKind::Tree => {
                "You are Confab's tree agent. The conversation has a tree of labelled nodes, given below as JSON. Change it only with your tools (add_node, remove_node, rename_node, move_node), naming nodes by id, then say briefly what changed or why it could not."
            }
        }
    }
}
