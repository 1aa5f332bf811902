//! Ids as types: a `ConversationId` cannot be passed where a `UserId` is
//! expected, so two ids can never be handed over in the wrong order.
//!
//! Each is the id string itself (`conv-…`, `msg-…`, `usr-…`, an agent's
//! name), unchecked: an id that names nothing is not found, as before. On
//! the wire it is that string (serde transparent); with the `db` feature it
//! is a `Text` column on every diesel backend.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(
            feature = "db",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
            diesel(sql_type = diesel::sql_types::Text)
        )]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Hash and order are the string's, so maps keyed by id can be looked up by `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        // Stored as the string it is, on any backend that stores strings.
        #[cfg(feature = "db")]
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.0.to_sql(out)
            }
        }

        #[cfg(feature = "db")]
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                String::from_sql(bytes).map(Self)
            }
        }
    };
}

id_type! {
    /// A conversation's id, `conv-…`.
    ConversationId
}

id_type! {
    /// A message's id, `msg-…`.
    MessageId
}

id_type! {
    /// A user's id, `usr-…` (a token's `sub`).
    UserId
}

id_type! {
    /// An agent's id: the name it is registered under, also the OpenAI `model`.
    AgentId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_string_on_the_wire() {
        let id = ConversationId::from("conv-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""conv-1""#);
        let back: ConversationId = serde_json::from_str(r#""conv-1""#).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn any_string_is_an_id_so_an_unknown_one_is_merely_not_found() {
        let odd: UserId = serde_json::from_str(r#""not a usr id""#).unwrap();
        assert_eq!(odd, "not a usr id");
    }
}
