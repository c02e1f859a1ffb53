//! L2-regularised, class-weighted logistic regression over one example's dense features followed by
//! its hashed sparse buckets, and Platt scaling of raw logits. Both are fitted by argmin's L-BFGS with
//! a More-Thuente line search on `Vec<f64>`.
//!
//! The loss is the weighted mean log-loss plus `l2 / 2 · ‖w‖²` (the bias is not penalised), so `l2`
//! does not depend on the number of rows. With class weighting each class carries half of the total
//! weight, so a rare label still moves the fit.
//!
//! An optional [`DensePrior`] adds `strength / 2 · ‖w_dense − centre‖²`: a Gaussian prior on the
//! dense weights centred on known-sensible values (triage's hand-set weights), so a feature the data
//! never exercises keeps its prior instead of an arbitrary value. Together with the plain L2 the dense
//! weights are pulled toward `centre · strength / (strength + l2)` with precision `strength + l2`;
//! the sparse weights and the bias are untouched by it. Strength 0 is exactly no prior.
//!
//! An optional anchor ([`FitOptions::anchor`]) moves the plain L2's centre from 0 to a fitted
//! model's weights, `l2 / 2 · ‖w − anchor‖²`, and starts the optimiser there: a warm start that
//! adapts a model to new rows while every weight they do not speak to stays where it was
//! ([`crate::adapt`]). Without one the penalty is the plain L2's, bit for bit.

use std::sync::Mutex;

use argmin::core::{CostFunction, Error, Executor, Gradient, State, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

/// One training example: the hand-made features, the hashed n-gram buckets (sorted, merged) and the
/// label (1 = the cheapest tier fails where the dearest succeeds).
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub dense: Vec<f64>,
    pub sparse: Vec<(u32, f64)>,
    pub label: bool,
}

/// A fitted linear model: `logit = bias + dense · x + sparse · counts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub bias: f64,
    pub dense: Vec<f64>,
    pub sparse: Vec<f64>,
}

impl Weights {
    pub fn logit(&self, example: &Example) -> f64 {
        let dense: f64 = self
            .dense
            .iter()
            .zip(&example.dense)
            .map(|(w, x)| w * x)
            .sum();
        let sparse: f64 = example
            .sparse
            .iter()
            .map(|&(bucket, x)| self.sparse.get(bucket as usize).map_or(0.0, |w| w * x))
            .sum();
        self.bias + dense + sparse
    }

    /// Bias, dense, sparse: the optimiser's parameter vector.
    fn to_param(&self) -> Vec<f64> {
        std::iter::once(self.bias)
            .chain(self.dense.iter().copied())
            .chain(self.sparse.iter().copied())
            .collect()
    }

    fn from_param(param: &[f64], dense_len: usize) -> Weights {
        Weights {
            bias: param.first().copied().unwrap_or(0.0),
            dense: param.get(1..1 + dense_len).unwrap_or(&[]).to_vec(),
            sparse: param.get(1 + dense_len..).unwrap_or(&[]).to_vec(),
        }
    }
}

/// A Gaussian prior on the dense weights: the penalty `strength / 2 · ‖w_dense − centre‖²`.
#[derive(Clone, Debug, PartialEq)]
pub struct DensePrior {
    /// One value per dense weight.
    pub centre: Vec<f64>,
    pub strength: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Width of every example's `dense`.
    pub dense_len: usize,
    /// Number of sparse weights; every bucket index must be below it.
    pub buckets: usize,
    pub l2: f64,
    /// A prior on the dense weights, on top of `l2`; None is plain L2 toward 0.
    pub prior: Option<DensePrior>,
    /// Where `l2` pulls the dense and sparse weights (its bias only starts the optimiser); None is 0.
    pub anchor: Option<Weights>,
    /// Give each class half of the total weight (else every row weighs the same).
    pub class_weighted: bool,
    pub max_iters: u64,
    /// Stop when the gradient's L2 norm falls below this.
    pub tolerance_grad: f64,
}

impl FitOptions {
    pub fn new(dense_len: usize, buckets: usize, l2: f64) -> FitOptions {
        FitOptions {
            dense_len,
            buckets,
            l2,
            prior: None,
            anchor: None,
            class_weighted: true,
            max_iters: 400,
            tolerance_grad: 1e-6,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fit {
    pub weights: Weights,
    pub loss: f64,
    pub gradient_norm: f64,
    pub iterations: u64,
    /// Why the optimiser stopped (argmin's termination reason).
    pub stopped: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FitError(pub String);

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FitError {}

/// The weight of a negative and of a positive example: equal, or each class summing to half.
pub fn class_weights(examples: &[&Example], class_weighted: bool) -> [f64; 2] {
    let positives = examples.iter().filter(|e| e.label).count() as f64;
    let negatives = examples.len() as f64 - positives;
    if !class_weighted || positives == 0.0 || negatives == 0.0 {
        return [1.0, 1.0];
    }
    let total = examples.len() as f64;
    [total / (2.0 * negatives), total / (2.0 * positives)]
}

/// `ln(1 + e^t)` without overflow.
fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// A point and the loss and gradient there.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The regularised loss and its gradient, both computed in one pass over the rows; the line search
/// asks for the cost and then the gradient at the same point, so the last gradient is kept.
struct Objective<'a> {
    examples: &'a [&'a Example],
    class_weight: [f64; 2],
    total_weight: f64,
    options: &'a FitOptions,
    last: Mutex<Option<Evaluated>>,
}

impl<'a> Objective<'a> {
    fn new(examples: &'a [&'a Example], options: &'a FitOptions) -> Objective<'a> {
        let class_weight = class_weights(examples, options.class_weighted);
        let total_weight = examples
            .iter()
            .map(|e| class_weight[usize::from(e.label)])
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        Objective {
            examples,
            class_weight,
            total_weight,
            options,
            last: Mutex::new(None),
        }
    }

    fn evaluate(&self, param: &[f64]) -> (f64, Vec<f64>) {
        let dense_len = self.options.dense_len;
        let mut grad = vec![0.0; param.len()];
        let mut loss = 0.0;
        for example in self.examples {
            let mut z = param[0];
            for (j, x) in example.dense.iter().enumerate().take(dense_len) {
                z += param[1 + j] * x;
            }
            for &(bucket, x) in &example.sparse {
                z += param[1 + dense_len + bucket as usize] * x;
            }
            let sign = if example.label { 1.0 } else { -1.0 };
            let weight = self.class_weight[usize::from(example.label)] / self.total_weight;
            loss += weight * softplus(-sign * z);
            let dz = -sign * sigmoid(-sign * z) * weight;
            grad[0] += dz;
            for (j, x) in example.dense.iter().enumerate().take(dense_len) {
                grad[1 + j] += dz * x;
            }
            for &(bucket, x) in &example.sparse {
                grad[1 + dense_len + bucket as usize] += dz * x;
            }
        }
        add_penalty(param, self.options, &mut loss, &mut grad);
        (loss, grad)
    }

    fn cached(&self, param: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(last) = self.last.lock() {
            if let Some((at, loss, grad)) = last.as_ref() {
                if at.as_slice() == param {
                    return (*loss, grad.clone());
                }
            }
        }
        let (loss, grad) = self.evaluate(param);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((param.to_vec(), loss, grad.clone()));
        }
        (loss, grad)
    }
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, param: &Vec<f64>) -> Result<f64, Error> {
        Ok(self.cached(param).0)
    }
}

impl Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, param: &Vec<f64>) -> Result<Vec<f64>, Error> {
        Ok(self.cached(param).1)
    }
}

/// The regulariser at `param` (bias, dense, sparse): `l2 / 2 · ‖w − anchor‖²` over every weight but
/// the bias, plus the dense prior's `strength / 2 · ‖w_dense − centre‖²`, added to `loss` and its
/// gradient to `grad`. A prior of strength 0 changes nothing, bit for bit; nor does a missing
/// anchor, whose centre is 0 (`w − 0.0` is `w` exactly).
fn add_penalty(param: &[f64], options: &FitOptions, loss: &mut f64, grad: &mut [f64]) {
    let l2 = options.l2;
    let anchor = options
        .anchor
        .iter()
        .flat_map(|anchor| anchor.dense.iter().chain(&anchor.sparse))
        .copied()
        .chain(std::iter::repeat(0.0));
    for ((g, w), centre) in grad.iter_mut().zip(param).skip(1).zip(anchor) {
        let offset = w - centre;
        *loss += 0.5 * l2 * offset * offset;
        *g += l2 * offset;
    }
    if let Some(prior) = options.prior.as_ref().filter(|p| p.strength != 0.0) {
        let dense = grad.iter_mut().zip(param).skip(1).take(options.dense_len);
        for ((g, w), centre) in dense.zip(&prior.centre) {
            let offset = w - centre;
            *loss += 0.5 * prior.strength * offset * offset;
            *g += prior.strength * offset;
        }
    }
}

fn check(examples: &[&Example], options: &FitOptions) -> Result<(), FitError> {
    if examples.is_empty() {
        return Err(FitError("no rows to fit".into()));
    }
    if !(options.l2.is_finite() && options.l2 >= 0.0) {
        return Err(FitError(format!(
            "l2 must be finite and >= 0, got {}",
            options.l2
        )));
    }
    if let Some(prior) = &options.prior {
        if !(prior.strength.is_finite() && prior.strength >= 0.0) {
            return Err(FitError(format!(
                "prior strength must be finite and >= 0, got {}",
                prior.strength
            )));
        }
        if prior.centre.len() != options.dense_len || prior.centre.iter().any(|c| !c.is_finite()) {
            return Err(FitError(format!(
                "the prior needs {} finite dense values, got {:?}",
                options.dense_len, prior.centre
            )));
        }
    }
    if let Some(anchor) = &options.anchor {
        if anchor.dense.len() != options.dense_len
            || anchor.sparse.len() != options.buckets
            || anchor.to_param().iter().any(|w| !w.is_finite())
        {
            return Err(FitError(format!(
                "the anchor needs {} dense and {} sparse finite weights, got {} and {}",
                options.dense_len,
                options.buckets,
                anchor.dense.len(),
                anchor.sparse.len()
            )));
        }
    }
    for (index, example) in examples.iter().enumerate() {
        if example.dense.len() != options.dense_len {
            return Err(FitError(format!(
                "row {index}: {} dense values, expected {}",
                example.dense.len(),
                options.dense_len
            )));
        }
        if let Some(&(bucket, _)) = example
            .sparse
            .iter()
            .find(|(bucket, _)| *bucket as usize >= options.buckets)
        {
            return Err(FitError(format!(
                "row {index}: bucket {bucket} outside {} buckets",
                options.buckets
            )));
        }
        let finite = example.dense.iter().all(|x| x.is_finite())
            && example.sparse.iter().all(|(_, x)| x.is_finite());
        if !finite {
            return Err(FitError(format!("row {index}: a feature is not finite")));
        }
    }
    Ok(())
}

/// Fits the model from all-zero weights (the anchor's when there is one), the dense ones at the
/// prior's centre when there is a prior (the loss is convex, so the start only saves iterations);
/// deterministic (one thread, fixed summation order).
pub fn fit(examples: &[&Example], options: &FitOptions) -> Result<Fit, FitError> {
    check(examples, options)?;
    let mut init = match &options.anchor {
        Some(anchor) => anchor.to_param(),
        None => vec![0.0; 1 + options.dense_len + options.buckets],
    };
    if let Some(prior) = options.prior.as_ref().filter(|p| p.strength != 0.0) {
        init[1..1 + options.dense_len].copy_from_slice(&prior.centre);
    }
    let (param, loss, iterations, stopped) =
        minimise(Objective::new(examples, options), init, options)?;
    let gradient_norm = norm(&Objective::new(examples, options).evaluate(&param).1);
    Ok(Fit {
        weights: Weights::from_param(&param, options.dense_len),
        loss,
        gradient_norm,
        iterations,
        stopped,
    })
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn minimise<O>(
    problem: O,
    init: Vec<f64>,
    options: &FitOptions,
) -> Result<(Vec<f64>, f64, u64, String), FitError>
where
    O: CostFunction<Param = Vec<f64>, Output = f64>
        + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(options.tolerance_grad)
        .and_then(|s| s.with_tolerance_cost(1e-12))
        .map_err(|e| FitError(format!("L-BFGS set-up: {e}")))?;
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(init).max_iters(options.max_iters))
        .timer(false)
        .run()
        .map_err(|e| FitError(format!("L-BFGS: {e}")))?;
    let state = result.state();
    let stopped = match state.get_termination_status() {
        TerminationStatus::Terminated(reason) => reason.to_string(),
        TerminationStatus::NotTerminated => "not terminated".to_string(),
    };
    let param = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| FitError("L-BFGS returned no parameters".into()))?;
    Ok((param, state.get_best_cost(), state.get_iter(), stopped))
}

/// Platt scaling: `p = sigmoid(a · logit + b)` fitted by unweighted maximum likelihood, so the
/// probabilities match the observed rate of label 1 whatever the class weights of the fit were.
pub fn platt(logits: &[f64], labels: &[bool]) -> Result<(f64, f64), FitError> {
    if logits.len() != labels.len() || logits.is_empty() {
        return Err(FitError(format!(
            "platt: {} logits for {} labels",
            logits.len(),
            labels.len()
        )));
    }
    if logits.iter().any(|z| !z.is_finite()) {
        return Err(FitError("platt: a logit is not finite".into()));
    }
    let examples: Vec<Example> = logits
        .iter()
        .zip(labels)
        .map(|(&z, &label)| Example {
            dense: vec![z],
            sparse: Vec::new(),
            label,
        })
        .collect();
    let refs: Vec<&Example> = examples.iter().collect();
    let options = FitOptions {
        dense_len: 1,
        buckets: 0,
        l2: 0.0,
        prior: None,
        anchor: None,
        class_weighted: false,
        max_iters: 200,
        tolerance_grad: 1e-10,
    };
    let fit = fit(&refs, &options)?;
    let a = fit.weights.dense.first().copied().unwrap_or(0.0);
    Ok((a, fit.weights.bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rng::SplitMix;

    /// Uniform in [0, 1) from the crate's generator (its top 53 bits), for synthetic data.
    fn uniform(state: &mut SplitMix) -> f64 {
        (state.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn noisy_set(n: usize, seed: u64) -> Vec<Example> {
        let mut state = SplitMix::new(seed);
        (0..n)
            .map(|_| {
                let x0 = uniform(&mut state);
                let x1 = uniform(&mut state);
                let bucket = (uniform(&mut state) * 4.0) as u32;
                let true_logit = -1.0 + 3.0 * x0 - 2.0 * x1 + if bucket == 2 { 1.5 } else { 0.0 };
                Example {
                    dense: vec![x0, x1],
                    sparse: vec![(bucket, 1.0)],
                    label: uniform(&mut state) < sigmoid(true_logit),
                }
            })
            .collect()
    }

    #[test]
    fn converges_to_a_stationary_point_on_noisy_data() {
        let examples = noisy_set(2000, 7);
        let refs: Vec<&Example> = examples.iter().collect();
        let options = FitOptions::new(2, 4, 1e-3);
        let fit = fit(&refs, &options).unwrap();
        assert!(fit.gradient_norm < 1e-5, "gradient {}", fit.gradient_norm);
        // Recomputing the gradient independently: the optimum has zero gradient everywhere.
        let objective = Objective::new(&refs, &options);
        let param = fit.weights.to_param();
        let (loss, grad) = objective.evaluate(&param);
        assert!(grad.iter().all(|g| g.abs() < 1e-5), "{grad:?}");
        // Any small step away from the optimum raises the loss.
        for k in 0..param.len() {
            for step in [-1e-3, 1e-3] {
                let mut moved = param.clone();
                moved[k] += step;
                assert!(objective.evaluate(&moved).0 > loss);
            }
        }
        // The signs of the generating model come back.
        assert!(fit.weights.dense[0] > 1.0 && fit.weights.dense[1] < -1.0);
        assert!(fit.weights.sparse[2] > fit.weights.sparse[0]);
    }

    /// Central differences of the loss agree with the analytic gradient in every coordinate.
    fn assert_gradient_matches_finite_differences(
        objective: &Objective,
        param: &[f64],
        grad: &[f64],
    ) {
        let h = 1e-6;
        for k in 0..param.len() {
            let (mut up, mut down) = (param.to_vec(), param.to_vec());
            up[k] += h;
            down[k] -= h;
            let numeric = (objective.evaluate(&up).0 - objective.evaluate(&down).0) / (2.0 * h);
            assert!(
                (numeric - grad[k]).abs() < 1e-7,
                "{k}: {numeric} vs {}",
                grad[k]
            );
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let examples = noisy_set(50, 3);
        let refs: Vec<&Example> = examples.iter().collect();
        let options = FitOptions::new(2, 4, 0.1);
        let objective = Objective::new(&refs, &options);
        let param = vec![0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.05];
        let (_, grad) = objective.evaluate(&param);
        assert_gradient_matches_finite_differences(&objective, &param, &grad);
    }

    fn with_prior(mut options: FitOptions, centre: Vec<f64>, strength: f64) -> FitOptions {
        options.prior = Some(DensePrior { centre, strength });
        options
    }

    #[test]
    fn the_gradient_matches_finite_differences_with_a_prior() {
        let examples = noisy_set(50, 3);
        let refs: Vec<&Example> = examples.iter().collect();
        let options = with_prior(FitOptions::new(2, 4, 0.1), vec![1.5, -0.7], 0.8);
        let objective = Objective::new(&refs, &options);
        let param = vec![0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.05];
        let (loss, grad) = objective.evaluate(&param);
        // The prior is in the loss: the same point without it costs less by exactly its penalty.
        let plain = Objective::new(&refs, &FitOptions::new(2, 4, 0.1)).evaluate(&param);
        let expected = 0.5 * 0.8 * ((-0.2f64 - 1.5).powi(2) + (0.5f64 + 0.7).powi(2));
        assert!((loss - plain.0 - expected).abs() < 1e-12);
        // ...and only the dense weights' gradient moves, by strength · (w − centre).
        assert!((grad[1] - plain.1[1] - 0.8 * (-0.2 - 1.5)).abs() < 1e-12);
        assert!((grad[2] - plain.1[2] - 0.8 * (0.5 + 0.7)).abs() < 1e-12);
        for k in [0, 3, 4, 5, 6] {
            assert_eq!(grad[k], plain.1[k], "{k}");
        }
        assert_gradient_matches_finite_differences(&objective, &param, &grad);
    }

    /// The loss, its gradient and the fit with `other` are those with plain L2, bit for bit.
    fn assert_same_as_plain_bit_for_bit(plain: &FitOptions, other: &FitOptions) {
        let examples = noisy_set(500, 13);
        let refs: Vec<&Example> = examples.iter().collect();
        let param = vec![0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.05];
        assert_eq!(
            Objective::new(&refs, plain).evaluate(&param),
            Objective::new(&refs, other).evaluate(&param)
        );
        let (a, b) = (fit(&refs, plain).unwrap(), fit(&refs, other).unwrap());
        assert_eq!(a.weights, b.weights);
        assert_eq!((a.loss, a.iterations), (b.loss, b.iterations));
    }

    #[test]
    fn a_prior_of_strength_zero_changes_nothing_bit_for_bit() {
        let plain = FitOptions::new(2, 4, 1e-3);
        let zero = with_prior(plain.clone(), vec![4.0, 4.0], 0.0);
        assert_same_as_plain_bit_for_bit(&plain, &zero);
    }

    #[test]
    fn a_strong_prior_holds_the_dense_weights_and_a_weak_one_lets_the_data_speak() {
        // The data says dense ≈ (3, -2); the prior says (-1, 1).
        let examples = noisy_set(2000, 7);
        let refs: Vec<&Example> = examples.iter().collect();
        let centre = vec![-1.0, 1.0];
        let free = fit(&refs, &FitOptions::new(2, 4, 1e-3)).unwrap().weights;
        assert!(free.dense[0] > 1.0 && free.dense[1] < -1.0, "{free:?}");
        let strong = with_prior(FitOptions::new(2, 4, 1e-3), centre.clone(), 1e6);
        let held = fit(&refs, &strong).unwrap().weights;
        for (w, c) in held.dense.iter().zip(&centre) {
            assert!((w - c).abs() < 1e-6, "{:?}", held.dense);
        }
        // The bias and the sparse weights still fit the data around the held dense weights (their
        // gradient vanishes), and the buckets' own effect (bucket 2 adds 1.5) comes back.
        let param = held.to_param();
        let (_, grad) = Objective::new(&refs, &strong).evaluate(&param);
        for k in [0, 3, 4, 5, 6] {
            assert!(grad[k].abs() < 1e-5, "{k}: {grad:?}");
        }
        assert!(held.sparse[2] - held.sparse[0] > 1.0, "{held:?}");
        // In between, each dense weight lies between the data's answer and the prior's.
        let mid = fit(
            &refs,
            &with_prior(FitOptions::new(2, 4, 1e-3), centre.clone(), 0.02),
        )
        .unwrap()
        .weights;
        for (j, ((&free, &centre), &mid)) in
            free.dense.iter().zip(&centre).zip(&mid.dense).enumerate()
        {
            let (low, high) = if free < centre {
                (free, centre)
            } else {
                (centre, free)
            };
            assert!(low + 0.1 < mid && mid < high - 0.1, "{j}: {mid}");
        }
        // A prior of the wrong width, or a negative or infinite strength, is refused.
        let bad = with_prior(FitOptions::new(2, 4, 1e-3), vec![1.0], 1.0);
        assert!(fit(&refs, &bad).unwrap_err().0.contains("prior"));
        for strength in [-1.0, f64::INFINITY, f64::NAN] {
            let bad = with_prior(FitOptions::new(2, 4, 1e-3), centre.clone(), strength);
            assert!(
                fit(&refs, &bad).unwrap_err().0.contains("prior"),
                "{strength}"
            );
        }
    }

    fn anchored(mut options: FitOptions, anchor: Weights) -> FitOptions {
        options.anchor = Some(anchor);
        options
    }

    #[test]
    fn an_anchor_of_zeros_is_no_anchor_bit_for_bit() {
        let plain = FitOptions::new(2, 4, 1e-3);
        let zeros = Weights {
            bias: 0.0,
            dense: vec![0.0; 2],
            sparse: vec![0.0; 4],
        };
        assert_same_as_plain_bit_for_bit(&plain, &anchored(plain.clone(), zeros));
    }

    #[test]
    fn a_strong_pull_to_the_anchor_keeps_every_weight_there_and_a_weak_one_lets_the_data_speak() {
        // The data says dense ≈ (3, -2) and bucket 2 adds 1.5; the anchor says otherwise everywhere.
        let examples = noisy_set(2000, 7);
        let refs: Vec<&Example> = examples.iter().collect();
        let anchor = Weights {
            bias: 0.4,
            dense: vec![-1.0, 1.0],
            sparse: vec![0.5, -0.5, -2.0, 0.25],
        };
        let strong = anchored(FitOptions::new(2, 4, 1e6), anchor.clone());
        let held = fit(&refs, &strong).unwrap().weights;
        for (w, a) in held
            .dense
            .iter()
            .chain(&held.sparse)
            .zip(anchor.dense.iter().chain(&anchor.sparse))
        {
            assert!((w - a).abs() < 1e-5, "{held:?}");
        }
        // The bias is never pulled: it still fits the data around the held weights.
        let param = held.to_param();
        let (_, grad) = Objective::new(&refs, &strong).evaluate(&param);
        assert!(grad[0].abs() < 1e-5, "{grad:?}");
        // A weak pull predicts what the unanchored fit does (the bias and the buckets, one per row,
        // trade off freely, so the weights themselves may differ).
        let free = fit(&refs, &FitOptions::new(2, 4, 1e-6)).unwrap().weights;
        let weak = fit(
            &refs,
            &anchored(FitOptions::new(2, 4, 1e-6), anchor.clone()),
        )
        .unwrap()
        .weights;
        for example in &refs {
            let (w, f) = (weak.logit(example), free.logit(example));
            assert!((w - f).abs() < 0.01, "{w} vs {f}");
        }
        // The gradient with an anchor is the loss's own.
        let options = anchored(FitOptions::new(2, 4, 0.1), anchor.clone());
        let objective = Objective::new(&refs[..50], &options);
        let param = vec![0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.05];
        let (_, grad) = objective.evaluate(&param);
        assert_gradient_matches_finite_differences(&objective, &param, &grad);
        // An anchor of the wrong shape, or with a weight that is not finite, is refused.
        let short = Weights {
            sparse: vec![0.0; 3],
            ..anchor.clone()
        };
        let infinite = Weights {
            bias: f64::INFINITY,
            ..anchor
        };
        for bad in [short, infinite] {
            let error = fit(&refs, &anchored(FitOptions::new(2, 4, 1e-3), bad)).unwrap_err();
            assert!(error.0.contains("anchor"), "{error}");
        }
    }

    #[test]
    fn separable_data_stays_finite_with_l2_and_matches_the_closed_form() {
        // One feature x = ±1 with label = (x > 0), no bias signal, equal classes: by symmetry the
        // bias is 0 and the weight solves sigmoid(-w) = l2 · w (the stationarity condition).
        let examples: Vec<Example> = [(-1.0, false), (1.0, true)]
            .iter()
            .cycle()
            .take(20)
            .map(|&(x, label)| Example {
                dense: vec![x],
                sparse: Vec::new(),
                label,
            })
            .collect();
        let refs: Vec<&Example> = examples.iter().collect();
        let l2 = 0.05;
        let mut options = FitOptions::new(1, 0, l2);
        options.tolerance_grad = 1e-10;
        let fit = fit(&refs, &options).unwrap();
        let w = fit.weights.dense[0];
        assert!(fit.weights.bias.abs() < 1e-6);
        assert!(
            (sigmoid(-w) - l2 * w).abs() < 1e-9,
            "w = {w}, {} after {} iterations, gradient {}",
            fit.stopped,
            fit.iterations,
            fit.gradient_norm
        );
        assert!(w > 2.0 && w.is_finite());
    }

    #[test]
    fn class_weights_shift_the_decision_towards_the_rare_class() {
        // 10% positives, a feature that only partly predicts them.
        let mut state = SplitMix::new(11);
        let examples: Vec<Example> = (0..3000)
            .map(|_| {
                let label = uniform(&mut state) < 0.1;
                let x = uniform(&mut state) + if label { 0.5 } else { 0.0 };
                Example {
                    dense: vec![x],
                    sparse: Vec::new(),
                    label,
                }
            })
            .collect();
        let refs: Vec<&Example> = examples.iter().collect();
        let mut options = FitOptions::new(1, 0, 1e-4);
        let weighted = fit(&refs, &options).unwrap().weights;
        options.class_weighted = false;
        let plain = fit(&refs, &options).unwrap().weights;
        let predicted = |w: &Weights| refs.iter().filter(|e| w.logit(e) > 0.0).count();
        assert!(weighted.bias > plain.bias + 1.0);
        // Unweighted, almost nothing is called positive; weighted, a large share is.
        assert!(predicted(&plain) < 200, "{}", predicted(&plain));
        assert!(predicted(&weighted) > 800, "{}", predicted(&weighted));
        assert_eq!(class_weights(&refs, true).map(|w| w > 1.0), [false, true]);
    }

    #[test]
    fn platt_recovers_known_parameters() {
        let (a, b) = (0.6, -0.8);
        let mut state = SplitMix::new(5);
        let logits: Vec<f64> = (0..20000)
            .map(|_| uniform(&mut state) * 10.0 - 5.0)
            .collect();
        let labels: Vec<bool> = logits
            .iter()
            .map(|z| uniform(&mut state) < sigmoid(a * z + b))
            .collect();
        let (fa, fb) = platt(&logits, &labels).unwrap();
        assert!((fa - a).abs() < 0.05, "a = {fa}");
        assert!((fb - b).abs() < 0.08, "b = {fb}");
        assert!(platt(&logits[..3], &labels).is_err());
    }

    #[test]
    fn bad_input_is_refused_with_the_row() {
        let good = Example {
            dense: vec![0.5],
            sparse: vec![(3, 1.0)],
            label: true,
        };
        let refs = vec![&good];
        let error = fit(&refs, &FitOptions::new(1, 2, 0.1)).unwrap_err();
        assert!(error.0.contains("bucket 3"), "{error}");
        let error = fit(&refs, &FitOptions::new(2, 4, 0.1)).unwrap_err();
        assert!(error.0.contains("dense"), "{error}");
        assert!(fit(&[], &FitOptions::new(1, 4, 0.1)).is_err());
    }
}
