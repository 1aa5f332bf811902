//! `/budgets/{subject}/{id}` and `/budget-status`: budgets on LLM use
//! (`crate::budget`), for the services only (the service token).

pub mod delete;
pub mod get;
pub mod put;
pub mod status;

pub use self::put::BODY_LIMIT;
