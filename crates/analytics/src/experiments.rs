//! A/B experiments: a buyer's variant is a stable hash of the experiment and the buyer (no
//! table, the same answer on every node and after every restart); storefronts report views,
//! which expose the buyer to its variant; payments of exposed buyers during the experiment count
//! for their variant. Per variant: buyers, conversion, AOV, GMV per buyer; against the control
//! (the first variant): a two-proportion z-test on conversion and Welch's t-test on order value,
//! and a verdict in words. Refunds are not netted here (the experiment measures the purchase).

use rustc_hash::FxHashSet;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// SplitMix64's finaliser: a well-mixed 64-bit hash, written here so assignments never change
/// with a dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The variant (index) of `buyer` in `experiment`, in proportion to `weights`.
pub fn assign(experiment: u64, buyer: u64, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return 0;
    }
    let mut pick = mix(mix(experiment) ^ buyer) % total;
    for (i, &w) in weights.iter().enumerate() {
        if pick < u64::from(w) {
            return i;
        }
        pick -= u64::from(w);
    }
    weights.len() - 1
}

pub(crate) fn assign_in(e: &Experiment, buyer: u64) -> usize {
    assign(e.id, buyer, &e.weights)
}

#[derive(Debug, Default)]
pub(crate) struct VariantStats {
    pub exposed: FxHashSet<u64>,
    pub converted: FxHashSet<u64>,
    pub orders: u64,
    pub sum: u128,
    pub sum_sq: f64,
}

#[derive(Debug)]
pub(crate) struct Experiment {
    pub id: u64,
    pub name: String,
    pub names: Vec<String>,
    pub weights: Vec<u32>,
    pub starts_at: u64,
    pub ends_at: u64,
    pub variants: Vec<VariantStats>,
}

impl Experiment {
    pub fn running(&self, at: u64) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
}

/// A test's outcome against the control.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Test {
    pub statistic: f64,
    pub p_value: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct VariantResult {
    pub name: String,
    /// Buyers exposed (shown the variant during the experiment).
    pub buyers: u64,
    /// Exposed buyers who paid at least once.
    pub converted: u64,
    pub conversion: f64,
    pub orders: u64,
    /// Mean paid order value, minor units.
    pub aov: f64,
    pub gmv: u128,
    pub gmv_per_buyer: f64,
    /// Against the control (absent for the control itself).
    pub conversion_test: Option<Test>,
    pub aov_test: Option<Test>,
    pub verdict: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExperimentResults {
    pub experiment_id: u64,
    pub name: String,
    pub starts_at: u64,
    pub ends_at: u64,
    pub variants: Vec<VariantResult>,
}

/// Two-proportion z-test (pooled), two-sided: `x` successes of `n`, variant against control.
pub fn two_proportion_z(x_control: u64, n_control: u64, x_variant: u64, n_variant: u64) -> Option<Test> {
    if n_control == 0 || n_variant == 0 {
        return None;
    }
    let (n1, n2) = (n_control as f64, n_variant as f64);
    let pooled = (x_control + x_variant) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (x_variant as f64 / n2 - x_control as f64 / n1) / se;
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some(Test { statistic: z, p_value: 2.0 * (1.0 - normal.cdf(z.abs())) })
}

/// Welch's t-test, two-sided, from each sample's count, mean and (unbiased) variance.
pub fn welch_t(control: (f64, f64, f64), variant: (f64, f64, f64)) -> Option<Test> {
    let ((n1, m1, v1), (n2, m2, v2)) = (control, variant);
    if n1 < 2.0 || n2 < 2.0 {
        return None;
    }
    let (a, b) = (v1 / n1, v2 / n2);
    if a + b == 0.0 {
        return None;
    }
    let t = (m2 - m1) / (a + b).sqrt();
    let df = (a + b).powi(2) / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let student = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(Test { statistic: t, p_value: 2.0 * (1.0 - student.cdf(t.abs())) })
}

fn moments(v: &VariantStats) -> (f64, f64, f64) {
    let n = v.orders as f64;
    if v.orders == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = v.sum as f64 / n;
    let variance = if v.orders > 1 { ((v.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
    (n, mean, variance)
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

/// The verdict in words, at the 5% level.
fn verdict(control: &VariantResult, variant: &VariantResult) -> String {
    if control.buyers == 0 || variant.buyers == 0 {
        return format!(
            "{} vs {}: no verdict until buyers have been shown both.",
            variant.name, control.name
        );
    }
    let lift = |a: f64, b: f64| if a > 0.0 { b / a - 1.0 } else { 0.0 };
    let significant = |t: &Option<Test>| t.as_ref().is_some_and(|t| t.p_value < 0.05);
    let p = |t: &Option<Test>| t.as_ref().map_or("n/a".to_owned(), |t| format!("{:.3}", t.p_value));
    let conversion = format!(
        "conversion {} ({}, p = {})",
        pct(lift(control.conversion, variant.conversion)),
        if significant(&variant.conversion_test) { "significant" } else { "not significant" },
        p(&variant.conversion_test)
    );
    let aov = format!(
        "AOV {} ({}, p = {})",
        pct(lift(control.aov, variant.aov)),
        if significant(&variant.aov_test) { "significant" } else { "not significant" },
        p(&variant.aov_test)
    );
    let per_buyer = lift(control.gmv_per_buyer, variant.gmv_per_buyer);
    // A claim only on a significant difference, and in the direction the figures go.
    let net = if !significant(&variant.conversion_test) && !significant(&variant.aov_test) {
        "shows no significant difference yet"
    } else if pct(per_buyer) == pct(0.0) {
        "earns the same per buyer shown"
    } else if per_buyer > 0.0 {
        "earns more per buyer shown"
    } else {
        "earns less per buyer shown"
    };
    format!(
        "{} vs {}: {conversion}; {aov}; GMV per buyer {} — {} {net}.",
        variant.name,
        control.name,
        pct(per_buyer),
        variant.name
    )
}

pub(crate) fn results(id: u64, e: &Experiment) -> ExperimentResults {
    let mut variants: Vec<VariantResult> = e
        .variants
        .iter()
        .zip(&e.names)
        .map(|(v, name)| {
            let buyers = v.exposed.len() as u64;
            let (_, mean, _) = moments(v);
            VariantResult {
                name: name.clone(),
                buyers,
                converted: v.converted.len() as u64,
                conversion: if buyers == 0 { 0.0 } else { v.converted.len() as f64 / buyers as f64 },
                orders: v.orders,
                aov: mean,
                gmv: v.sum,
                gmv_per_buyer: if buyers == 0 { 0.0 } else { v.sum as f64 / buyers as f64 },
                conversion_test: None,
                aov_test: None,
                verdict: None,
            }
        })
        .collect();
    if let Some((control, rest)) = variants.split_first_mut() {
        let c = &e.variants[0];
        for (i, variant) in rest.iter_mut().enumerate() {
            let v = &e.variants[i + 1];
            variant.conversion_test = two_proportion_z(
                c.converted.len() as u64,
                c.exposed.len() as u64,
                v.converted.len() as u64,
                v.exposed.len() as u64,
            );
            variant.aov_test = welch_t(moments(c), moments(v));
            variant.verdict = Some(verdict(control, variant));
        }
    }
    ExperimentResults {
        experiment_id: id,
        name: e.name.clone(),
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        variants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    /// 200 of 1,000 convert under A, 250 of 1,000 under B: z = 2.677, p = 0.0074 (the pooled
    /// two-proportion z-test as statistics packages give it, e.g. statsmodels' `proportions_ztest`).
    #[test]
    fn the_z_test_matches_the_textbook() {
        let t = two_proportion_z(200, 1_000, 250, 1_000).unwrap();
        assert!(close(t.statistic, 2.6774, 1e-3), "{t:?}");
        assert!(close(t.p_value, 0.00742, 1e-4), "{t:?}");
        assert!(two_proportion_z(0, 0, 1, 1).is_none());
    }

    /// Wikipedia's "Welch's t-test", example 1: t = -2.46, ν ≈ 25.0, p = 0.021.
    #[test]
    fn welchs_test_matches_the_textbook() {
        let a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
        let a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
        let describe = |xs: &[f64]| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            (n, mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0))
        };
        let t = welch_t(describe(&a2), describe(&a1)).unwrap();
        assert!(close(t.statistic, -2.46, 0.005), "{t:?}");
        assert!(close(t.p_value, 0.021, 0.0015), "{t:?}");
    }

    #[test]
    fn assignment_is_stable_and_follows_the_weights() {
        let weights = [1, 3];
        let counts = (1..=40_000u64).fold([0u32; 2], |mut c, buyer| {
            c[assign(7, buyer, &weights)] += 1;
            c
        });
        assert!((9_400..=10_600).contains(&counts[0]), "{counts:?}");
        assert_eq!(assign(7, 12_345, &weights), assign(7, 12_345, &weights));
        // Another experiment splits the same buyers differently.
        let same = (1..=1_000u64).filter(|&b| assign(7, b, &[1, 1]) == assign(8, b, &[1, 1])).count();
        assert!((400..=600).contains(&same), "{same}");
    }
}

#[cfg(test)]
mod seeds_example {
    use super::*;

    /// The seeds' question: variant B lifts click-through (conversion) by 10% but lowers the
    /// basket (AOV) by 5% — did it pay? GMV per buyer shown: 1.10 × 0.95 = +4.5%.
    /// `buyers` shown a variant, the first `converted` of them paying one order each, of values
    /// spread ±20% around `order_value` (so the t-test has a variance).
    fn variant(buyers: u64, converted: u64, order_value: u64) -> VariantStats {
        let mut v = VariantStats::default();
        v.exposed.extend(1..=buyers);
        v.converted.extend(1..=converted);
        for i in 0..converted {
            let value = order_value * 8 / 10 + (i % 5) * order_value / 10;
            v.orders += 1;
            v.sum += u128::from(value);
            v.sum_sq += (value as f64).powi(2);
        }
        v
    }

    #[test]
    fn ctr_up_ten_aov_down_five_is_answered() {
        let e = Experiment {
            id: 1,
            name: "bigger product photos".into(),
            names: vec!["A".into(), "B".into()],
            weights: vec![1, 1],
            starts_at: 0,
            ends_at: 1,
            variants: vec![variant(20_000, 2_000, 10_000), variant(20_000, 2_200, 9_500)],
        };
        let r = results(1, &e);
        let b = &r.variants[1];
        assert!((b.conversion / r.variants[0].conversion - 1.10).abs() < 1e-9);
        assert!((b.aov / r.variants[0].aov - 0.95).abs() < 1e-9);
        let verdict = b.verdict.as_deref().unwrap();
        assert!(verdict.contains("conversion +10.0% (significant"), "{verdict}");
        assert!(verdict.contains("AOV -5.0% (significant"), "{verdict}");
        assert!(verdict.contains("GMV per buyer +4.5%") && verdict.contains("earns more"), "{verdict}");
        assert!(r.variants[0].verdict.is_none() && r.variants[0].conversion_test.is_none());
    }

    /// A control and a treatment shown to buyers in equal shares.
    fn control_and_treatment(variants: Vec<VariantStats>) -> Experiment {
        Experiment {
            id: 1,
            name: "bigger photos".into(),
            names: vec!["control".into(), "treatment".into()],
            weights: vec![1, 1],
            starts_at: 0,
            ends_at: 1,
            variants,
        }
    }

    /// Found in the console: an experiment no buyer had seen yet said its treatment "earns more
    /// per buyer shown", at +0.0%; a tie said the same.
    #[test]
    fn regression_an_experiment_nobody_has_seen_says_the_treatment_earns_more() {
        let experiment = control_and_treatment;
        let unseen = results(1, &experiment(vec![variant(0, 0, 10_000), variant(0, 0, 10_000)]));
        let verdict = unseen.variants[1].verdict.as_deref().unwrap();
        assert_eq!(verdict, "treatment vs control: no verdict until buyers have been shown both.");
        let tie = results(1, &experiment(vec![variant(100, 10, 10_000), variant(100, 10, 10_000)]));
        let verdict = tie.variants[1].verdict.as_deref().unwrap();
        assert!(verdict.ends_with("treatment shows no significant difference yet."), "{verdict}");
    }

    /// Found on the big screen: "earns more" at a lift no test could tell from chance.
    #[test]
    fn regression_a_lift_that_is_not_significant_is_not_called_earning_more() {
        let experiment = control_and_treatment(vec![variant(100, 10, 10_000), variant(100, 11, 10_000)]);
        let verdict = results(1, &experiment).variants[1].verdict.clone().unwrap();
        assert!(verdict.contains("GMV per buyer +8.0%"), "{verdict}");
        assert!(verdict.ends_with("treatment shows no significant difference yet."), "{verdict}");
    }
}
