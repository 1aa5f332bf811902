//! A budget's period: the UTC calendar day or month a moment is in.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use confab_protocol::budget::BudgetPeriod;

/// The start of the UTC day or month `now` is in.
pub fn period_start(period: BudgetPeriod, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let first = match period {
        BudgetPeriod::Day => today,
        BudgetPeriod::Month => today.with_day(1).unwrap_or(today),
    };
    midnight(first)
}

/// The start of the next UTC day or month: when the period's use resets.
pub fn period_end(period: BudgetPeriod, now: DateTime<Utc>) -> DateTime<Utc> {
    let start = period_start(period, now).date_naive();
    let next = match period {
        BudgetPeriod::Day => start.checked_add_days(Days::new(1)),
        BudgetPeriod::Month => start.checked_add_months(Months::new(1)),
    };
    midnight(next.unwrap_or(start))
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&NaiveDateTime::from(date))
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn periods_are_utc_days_and_months() {
        let now = at("2026-12-31T23:59:30Z");
        assert_eq!(
            period_start(BudgetPeriod::Day, now),
            at("2026-12-31T00:00:00Z")
        );
        assert_eq!(
            period_end(BudgetPeriod::Day, now),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            period_start(BudgetPeriod::Month, now),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            period_end(BudgetPeriod::Month, at("2027-01-31T10:00:00Z")),
            at("2027-02-01T00:00:00Z")
        );
    }
}
