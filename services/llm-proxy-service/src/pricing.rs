//! What a call costs: prices per model from the settings, applied to the
//! tokens the provider reported.
//!
//! ```toml
//! [pricing]
//! currency = "USD"
//! [pricing."openai/gpt-4o-mini"]
//! input_per_mtok = 0.15
//! output_per_mtok = 0.60
//! cached_input_per_mtok = 0.075   # defaults to input_per_mtok
//! ```
//!
//! Prices are per million tokens, in `currency`, and are read as decimals
//! (`rust_decimal`): 0.075 is not a binary fraction, and a cost computed in
//! floating point would be off by a little on every call and by more on
//! their sums. A call's cost is kept as an integer number of nano-units
//! (1e-9 of the currency), so sums of costs are exact too:
//!
//! `cost_nanos = round((uncached_input × input + cached_input × cached_input_price
//!  + output × output) × 1000)`: tokens × price-per-million × 1e9 / 1e6.
//!
//! The price is that of the provider and model that answered (after alias
//! resolution and fallback), `provider/model` as the call's row names them.
//! The `builtin` provider costs nothing. A model with no price costs
//! "unknown": its calls have no cost, `llm_proxy_cost_unknown_total{model}`
//! counts them, and a warning is logged the first time each model is seen.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

/// Nano-units per unit of currency.
pub const NANOS_PER_UNIT: i64 = 1_000_000_000;

/// `[pricing]`: the currency, named once, and a table per priced model.
#[derive(Debug, Clone, Deserialize)]
pub struct PricingSettings {
    /// ISO 4217 code of every price, cost and cost budget (shown by
    /// `GET /usage` and the budget endpoints).
    pub currency: String,
    /// `"provider/model"` → its prices.
    #[serde(flatten)]
    pub models: BTreeMap<String, ModelPrice>,
}

impl Default for PricingSettings {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
            models: BTreeMap::new(),
        }
    }
}

/// One model's prices per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_mtok: Decimal,
    pub output_per_mtok: Decimal,
    /// Input tokens served from the provider's prompt cache; the input
    /// price when not given.
    #[serde(default)]
    pub cached_input_per_mtok: Option<Decimal>,
}

/// The tokens of one call, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Every input token, cached ones included (the provider's
    /// `prompt_tokens`).
    pub input: u64,
    /// The part of `input` served from the prompt cache
    /// (`prompt_tokens_details.cached_tokens`).
    pub cached_input: u64,
    pub output: u64,
}

#[derive(Debug)]
struct Price {
    input: Decimal,
    cached_input: Decimal,
    output: Decimal,
}

/// The prices in force, checked at start.
#[derive(Debug)]
pub struct Pricing {
    currency: String,
    prices: BTreeMap<String, Price>,
    /// Models already warned about, so an unpriced model logs once.
    warned: Mutex<HashSet<String>>,
}

impl Pricing {
    pub fn new(settings: &PricingSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.currency.trim().is_empty(),
            "[pricing] currency must be named"
        );
        let mut prices = BTreeMap::new();
        for (model, price) in &settings.models {
            let cached = price.cached_input_per_mtok.unwrap_or(price.input_per_mtok);
            for (what, value) in [
                ("input_per_mtok", price.input_per_mtok),
                ("output_per_mtok", price.output_per_mtok),
                ("cached_input_per_mtok", cached),
            ] {
                anyhow::ensure!(
                    !value.is_sign_negative(),
                    "[pricing.\"{model}\"] {what} must not be negative"
                );
            }
            prices.insert(
                model.clone(),
                Price {
                    input: price.input_per_mtok,
                    cached_input: cached,
                    output: price.output_per_mtok,
                },
            );
        }
        Ok(Self {
            currency: settings.currency.clone(),
            prices,
            warned: Mutex::new(HashSet::new()),
        })
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The cost of a call answered by `model` (`provider/model`) in
    /// nano-units, `None` when the model has no price. A builtin provider's
    /// calls and calls without tokens (refused, failed before an answer)
    /// cost zero.
    pub fn cost_nanos(&self, model: &str, builtin: bool, tokens: Tokens) -> Option<i64> {
        if builtin || (tokens.input == 0 && tokens.output == 0) {
            return Some(0);
        }
        let Some(price) = self.prices.get(model) else {
            metrics::counter!("llm_proxy_cost_unknown_total", "model" => model.to_owned())
                .increment(1);
            self.warn_once(model);
            return None;
        };
        Some(price.nanos(tokens))
    }

    fn warn_once(&self, model: &str) {
        let first = match self.warned.lock() {
            Ok(mut warned) => warned.insert(model.to_owned()),
            Err(_) => false,
        };
        if first {
            tracing::warn!(
                model,
                "no price for this model in [pricing]: its calls are recorded without a cost"
            );
        }
    }
}

impl Price {
    /// Exact in decimal; a cost beyond what a 64-bit count of nano-units
    /// holds (some 9 billion units) is held at its largest value.
    fn nanos(&self, tokens: Tokens) -> i64 {
        let cached = tokens.cached_input.min(tokens.input);
        let uncached = tokens.input - cached;
        let sum = [
            (uncached, self.input),
            (cached, self.cached_input),
            (tokens.output, self.output),
        ]
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, (count, price)| {
            Decimal::from(count)
                .checked_mul(price)
                .and_then(|part| sum.checked_add(part))
        });
        sum.and_then(|sum| sum.checked_mul(Decimal::from(1000)))
            .map(|nanos| nanos.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
            .and_then(|nanos| nanos.to_i64())
            .unwrap_or(i64::MAX)
    }
}

/// Nano-units as a number of currency units, for JSON (`0.000123`).
pub fn units(nanos: i64) -> f64 {
    // Both exact as f64 below 2^53 nano-units (9 million units); the
    // quotient is then the double nearest the decimal value.
    nanos as f64 / NANOS_PER_UNIT as f64
}

/// An amount of currency as nano-units, rounded to the nearest; `None`
/// when it is negative, not finite or beyond what the count holds.
pub fn nanos_of(units: Decimal) -> Option<i64> {
    if units.is_sign_negative() && !units.is_zero() {
        return None;
    }
    units
        .checked_mul(Decimal::from(NANOS_PER_UNIT))?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn pricing(toml: &str) -> Pricing {
        let settings: PricingSettings = toml::from_str(toml).unwrap();
        Pricing::new(&settings).unwrap()
    }

    #[test]
    fn a_cost_is_exact_in_nano_units() {
        let pricing = pricing(
            r#"
            currency = "USD"
            ["p/m"]
            input_per_mtok = 0.15
            output_per_mtok = 0.6
            cached_input_per_mtok = 0.075
            "#,
        );
        let tokens = Tokens {
            input: 1000,
            cached_input: 400,
            output: 333,
        };
        // 600 × 0.15 + 400 × 0.075 + 333 × 0.6 = 90 + 30 + 199.8 = 319.8 → ×1000
        assert_eq!(pricing.cost_nanos("p/m", false, tokens), Some(319_800));
    }

    #[test]
    fn cached_input_costs_the_input_price_when_not_priced_apart() {
        let pricing =
            pricing("currency = \"EUR\"\n[\"p/m\"]\ninput_per_mtok = 3\noutput_per_mtok = 15\n");
        let tokens = Tokens {
            input: 10,
            cached_input: 5,
            output: 1,
        };
        assert_eq!(pricing.cost_nanos("p/m", false, tokens), Some(45_000));
        assert_eq!(pricing.currency(), "EUR");
    }

    #[test]
    fn a_fraction_of_a_nano_unit_rounds_to_the_nearest() {
        let pricing = pricing(
            "currency = \"USD\"\n[\"p/m\"]\ninput_per_mtok = 0.0001\noutput_per_mtok = 0\n",
        );
        let one = Tokens {
            input: 5,
            ..Tokens::default()
        };
        // 5 × 0.0001 × 1000 = 0.5 → 1
        assert_eq!(pricing.cost_nanos("p/m", false, one), Some(1));
    }

    #[test]
    fn builtin_and_tokenless_calls_cost_nothing_and_unpriced_ones_are_unknown() {
        let pricing = pricing("currency = \"USD\"\n");
        let tokens = Tokens {
            input: 3,
            cached_input: 0,
            output: 4,
        };
        assert_eq!(pricing.cost_nanos("builtin/builtin", true, tokens), Some(0));
        assert_eq!(
            pricing.cost_nanos("p/unpriced", false, Tokens::default()),
            Some(0)
        );
        assert_eq!(pricing.cost_nanos("p/unpriced", false, tokens), None);
    }

    #[test]
    fn a_negative_price_is_refused_at_start() {
        let settings: PricingSettings = toml::from_str(
            "currency = \"USD\"\n[\"p/m\"]\ninput_per_mtok = -1\noutput_per_mtok = 0\n",
        )
        .unwrap();
        assert!(Pricing::new(&settings).is_err());
    }

    #[test]
    fn a_huge_cost_is_held_at_the_largest_count() {
        let pricing = pricing(
            "currency = \"USD\"\n[\"p/m\"]\ninput_per_mtok = 1000000000\noutput_per_mtok = 0\n",
        );
        let tokens = Tokens {
            input: u64::MAX,
            ..Tokens::default()
        };
        assert_eq!(pricing.cost_nanos("p/m", false, tokens), Some(i64::MAX));
    }

    #[test]
    fn settings_name_models_with_dots_and_prices_from_the_environment() {
        use confab_kit::settings::{ServiceSettings, load_from};
        let defaults = format!(
            "{}\n[pricing.\"openai/gpt-4.1\"]\ninput_per_mtok = 2.00\noutput_per_mtok = 8\n",
            crate::Settings::DEFAULTS
        );
        let env = [
            ("CONFAB__ENV".to_owned(), "development".to_owned()),
            ("CONFAB__PRICING__CURRENCY".to_owned(), "EUR".to_owned()),
        ];
        let settings: crate::Settings = load_from(&defaults, None, env).unwrap();
        let pricing = Pricing::new(&settings.pricing).unwrap();
        assert_eq!(pricing.currency(), "EUR");
        let tokens = Tokens {
            input: 1_000_000,
            cached_input: 0,
            output: 1,
        };
        assert_eq!(
            pricing.cost_nanos("openai/gpt-4.1", false, tokens),
            Some(2_000_008_000)
        );
        assert_eq!(settings.budgets.user.day_tokens, Some(10_000_000));
        assert_eq!(settings.budgets.api_key.day_tokens, None);
    }

    #[test]
    fn nano_units_convert_both_ways() {
        assert_eq!(units(1_234), 0.000001234);
        assert_eq!(
            nanos_of(Decimal::from_str("0.1").unwrap()),
            Some(100_000_000)
        );
        assert_eq!(nanos_of(Decimal::from_str("-0.1").unwrap()), None);
    }
}
