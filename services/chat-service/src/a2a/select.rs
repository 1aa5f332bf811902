//! Choosing an agent for a message from what the agents' cards say they do
//! (DESIGN §7, `POST /chat/unified` without a conversation or `agent_id`).
//!
//! Each word of the message scores against each skill of a card: a word
//! that is one of the skill's tags counts 2 (an agent naming the topic), a
//! word of one of its examples counts 1 (a message phrased like a request it
//! was built for). Case-insensitive; a word is a run of letters and digits.
//! The best total wins; no match or a tie leaves the choice to the default.

use std::collections::HashSet;

use confab_protocol::a2a::AgentCard;
use confab_protocol::ids::AgentId;

use crate::a2a::registry::Registry;
use crate::error::ChatError;

/// The agent a new conversation is bound to (DESIGN §7): the one
/// `requested`, else the one whose skills best match its first `message`,
/// else `default`. Whichever it is must be registered.
pub async fn choose(
    registry: &Registry,
    requested: Option<String>,
    message: Option<&str>,
    default: &str,
) -> Result<AgentId, ChatError> {
    let chosen = match requested.filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => match message {
            Some(text) => by_skills(registry, text).await,
            None => None,
        }
        .unwrap_or_else(|| default.to_owned()),
    };
    if registry.contains(&chosen) {
        Ok(chosen.into())
    } else {
        Err(ChatError::UnknownAgent(chosen))
    }
}

/// The registered agent whose skills best match `text`, if one matches
/// better than all others. An agent whose card cannot be fetched is not a
/// candidate.
pub async fn by_skills(registry: &Registry, text: &str) -> Option<String> {
    let mut scored = Vec::new();
    for (id, _) in registry.ids() {
        if let Ok(card) = registry.card(id).await {
            scored.push((id.clone(), score(&card, text)));
        }
    }
    best(scored)
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// How well `card`'s skills match `text`.
pub fn score(card: &AgentCard, text: &str) -> u32 {
    let message: HashSet<String> = words(text).collect();
    let mut tags = HashSet::new();
    let mut examples = HashSet::new();
    for skill in &card.skills {
        tags.extend(skill.tags.iter().flat_map(|t| words(t)));
        examples.extend(skill.examples.iter().flat_map(|e| words(e)));
    }
    message
        .iter()
        .map(|w| 2 * u32::from(tags.contains(w)) + u32::from(examples.contains(w)))
        .sum()
}

/// The single highest positive score's agent.
fn best(scored: Vec<(String, u32)>) -> Option<String> {
    let top = scored.iter().map(|(_, s)| *s).max().filter(|s| *s > 0)?;
    let mut winners = scored.into_iter().filter(|(_, s)| *s == top);
    let (winner, _) = winners.next()?;
    winners.next().is_none().then_some(winner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::a2a::AgentSkill;
    use serde_json::json;

    fn card(tags: &[&str], examples: &[&str]) -> AgentCard {
        let mut card: AgentCard = serde_json::from_value(json!({
            "name": "a", "description": "", "version": "1",
            "capabilities": {}, "defaultInputModes": [], "defaultOutputModes": [], "skills": []
        }))
        .unwrap();
        card.skills = vec![AgentSkill {
            id: "s".into(),
            name: "s".into(),
            description: String::new(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            examples: examples.iter().map(|e| (*e).to_owned()).collect(),
        }];
        card
    }

    #[test]
    fn tags_count_more_than_example_words_and_case_is_ignored() {
        let text = card(&["words"], &["Count the words in: the quick brown fox"]);
        assert_eq!(score(&text, "COUNT the Words in: a b c"), 4 + 2);
        let math = card(&["math"], &["What is 12 * (3 + 4)?"]);
        assert_eq!(score(&math, "Count the words in: a b c"), 0);
        assert_eq!(score(&math, "what is 6 * 7?"), 2);
    }

    #[test]
    fn a_tie_or_no_match_chooses_nobody() {
        assert_eq!(best(vec![("a".into(), 0), ("b".into(), 0)]), None);
        assert_eq!(best(vec![("a".into(), 3), ("b".into(), 3)]), None);
        assert_eq!(
            best(vec![("a".into(), 1), ("b".into(), 3)]),
            Some("b".into())
        );
    }
}
