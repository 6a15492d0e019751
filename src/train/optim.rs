//! Optimisers: Adam (with decoupled weight decay) and SGD with momentum; gradient
//! clipping by global norm; learning-rate schedules.
//!
//! One step at step count `t` (starting at 0), with `lr_t = lr * schedule(t)` (times
//! `min(1, (t + 1) / warmup)` under a linear [warm-up](OptimizerConfig::warmup)):
//!
//! ```text
//! clip:  g <- g * min(1, c / ||g||)          (||g|| over all parameter tensors)
//! Adam:  m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2
//!        p <- p - lr_t ( m/(1-b1^{t+1}) / (sqrt(v/(1-b2^{t+1})) + eps) + wd p )   (AdamW)
//! SGD:   g' = g + wd p,  u <- mu u + g',  p <- p - lr_t (nesterov ? g' + mu u : u)
//! ```
//!
//! With [`OptimizerConfig::core_lr`] `= Some(eta)`, every core of a tensorized map (a
//! [`ParamSpec`] with `core`) steps at `eta * schedule(t) * rms(p)` instead of `lr_t`,
//! `rms(p)` its root-mean-square entry before the step: a step that changes each core by
//! the same *fraction* `eta` of its scale, whatever the rank (layer-wise adaptive rates,
//! as LARS/LAMB, You et al. 2017/2020). With Adam, whose step is about `lr` per entry, a
//! core of entry scale `σ` otherwise changes by `lr / σ` of itself, and `σ` shrinks as the
//! rank grows (`σ ∝ terms^{-1/(2c)}`, see [`Init`](crate::matrices::Init)): at rank 16
//! the cores of TT-, TR- and FDHT-LSTM move 1.7-2x as fast, relative to their size, as at
//! rank 4.
//!
//! Weight decay skips biases unless [`OptimizerConfig::decay_biases`] is set. Updates are
//! elementwise (spread over rayon's threads for large tensors; each entry is updated by
//! one thread, so the result does not depend on scheduling); the global norm is summed
//! in `f64` in a fixed order.

use ndarray::{ArrayD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use crate::models::{Gradients, ParamSpec};
use crate::{Error, Result, Scalar};

/// Entries from which an update runs on rayon's threads.
const PAR_UPDATE: usize = 1 << 15;

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015) with bias correction; weight decay is decoupled (AdamW,
    /// Loshchilov & Hutter 2019).
    Adam {
        /// First-moment decay (0.9).
        beta1: f64,
        /// Second-moment decay (0.999).
        beta2: f64,
        /// Denominator guard (1e-8).
        eps: f64,
    },
    /// Stochastic gradient descent with (optionally Nesterov) momentum; weight decay is
    /// an L2 term added to the gradient.
    Sgd {
        /// Momentum `mu` in `[0, 1)` (0: plain SGD).
        momentum: f64,
        /// Nesterov's look-ahead form.
        nesterov: bool,
    },
}

/// How the learning rate changes with the step count `t` (out of `total` steps).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// `lr`.
    Constant,
    /// `lr * gamma^floor(t / every)`.
    Step {
        /// Steps between decays (at least 1).
        every: u64,
        /// Decay factor in `(0, 1]`.
        gamma: f64,
    },
    /// Cosine annealing from `lr` to `lr * min_factor` over the run:
    /// `lr * (m + (1 - m) (1 + cos(pi t / total)) / 2)`.
    Cosine {
        /// Final fraction `m` of the learning rate, in `[0, 1]`.
        min_factor: f64,
    },
}

impl LrSchedule {
    /// The factor applied to the base learning rate at step `t` of `total`.
    pub fn factor(&self, t: u64, total: u64) -> f64 {
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Step { every, gamma } => gamma.powf((t / every.max(1)) as f64),
            LrSchedule::Cosine { min_factor } => {
                let frac = if total == 0 {
                    1.0
                } else {
                    (t.min(total) as f64) / total as f64
                };
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
            }
        }
    }
}

/// Optimiser settings.
///
/// # Example
/// ```
/// use tnet::train::{LrSchedule, OptimizerConfig};
/// let c = OptimizerConfig::adam(1e-3)
///     .with_weight_decay(1e-4)
///     .with_clip_norm(5.0)
///     .with_schedule(LrSchedule::Cosine { min_factor: 0.1 });
/// c.check().unwrap();
/// assert!(OptimizerConfig::sgd(0.1, 1.5).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// Weight decay coefficient (0: none).
    pub weight_decay: f64,
    /// Whether biases are decayed too.
    pub decay_biases: bool,
    /// Clip the gradients' global norm to this value.
    pub clip_norm: Option<f64>,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// After every step, rebalance the cores of the model's tensorized maps
    /// ([`Lstm::balance_maps`](crate::models::Lstm::balance_maps): same function, every
    /// core of a product at the same entry scale). Off by default; configurations saved
    /// before the field existed read as off.
    #[serde(default)]
    pub balance_cores: bool,
    /// The relative step `eta` of the cores of tensorized maps: each core `p` (a
    /// [`ParamSpec`] with `core`) steps at `eta * schedule(t) * rms(p)`, `rms(p)` its
    /// root-mean-square entry before the step, so that every core changes by the same
    /// fraction of its scale whatever the rank (layer-wise relative steps, as LARS/LAMB).
    /// Plain Adam moves each entry by about `lr`, i.e. a core of entry scale `σ` by
    /// `lr / σ` of itself, and `σ` falls as the rank grows. `None` steps the cores at
    /// `lr` like every other tensor. Configurations saved before the field existed read
    /// as `None`. Measured in `docs/lstm.md` (it rescues TR-LSTM at rank 12, not at 16).
    #[serde(default)]
    pub core_lr: Option<f64>,
    /// Linear warm-up: the rate is multiplied by `min(1, (t + 1) / warmup)` at step `t`
    /// (0: none). Configurations saved before the field existed read as 0. Measured in
    /// `docs/lstm.md` (it does not rescue TR-LSTM at rank 16).
    #[serde(default)]
    pub warmup: u64,
}

impl OptimizerConfig {
    /// Adam with `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`, no decay, no clipping,
    /// constant rate.
    pub fn adam(lr: f64) -> Self {
        Self {
            kind: OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            lr,
            weight_decay: 0.0,
            decay_biases: false,
            clip_norm: None,
            schedule: LrSchedule::Constant,
            balance_cores: false,
            core_lr: None,
            warmup: 0,
        }
    }

    /// SGD with classical momentum, no decay, no clipping, constant rate.
    pub fn sgd(lr: f64, momentum: f64) -> Self {
        Self {
            kind: OptimizerKind::Sgd {
                momentum,
                nesterov: false,
            },
            ..Self::adam(lr)
        }
    }

    /// Sets the weight decay.
    pub fn with_weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Decays biases too.
    pub fn with_decay_biases(mut self, yes: bool) -> Self {
        self.decay_biases = yes;
        self
    }

    /// Rebalances the tensorized maps' cores after every step (see
    /// [`balance_cores`](Self::balance_cores)).
    pub fn with_balance_cores(mut self, yes: bool) -> Self {
        self.balance_cores = yes;
        self
    }

    /// Steps the cores of tensorized maps by the fraction `eta` of their scale (see
    /// [`core_lr`](Self::core_lr)).
    pub fn with_core_lr(mut self, eta: f64) -> Self {
        self.core_lr = Some(eta);
        self
    }

    /// Raises the rate linearly from `lr / warmup` to `lr` over the first `warmup` steps
    /// (see [`warmup`](Self::warmup)).
    pub fn with_warmup(mut self, warmup: u64) -> Self {
        self.warmup = warmup;
        self
    }

    /// Clips the gradients' global norm.
    pub fn with_clip_norm(mut self, c: f64) -> Self {
        self.clip_norm = Some(c);
        self
    }

    /// Sets the schedule.
    pub fn with_schedule(mut self, s: LrSchedule) -> Self {
        self.schedule = s;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the offending setting.
    pub fn check(&self) -> Result<()> {
        let positive = |name, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("must be positive and finite, got {v}"),
                ))
            }
        };
        let unit = |name, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::param(name, format!("must lie in [0, 1), got {v}")))
            }
        };
        positive("lr", self.lr)?;
        if let Some(eta) = self.core_lr {
            positive("core_lr", eta)?;
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::param(
                "weight_decay",
                format!("must be non-negative and finite, got {}", self.weight_decay),
            ));
        }
        if let Some(c) = self.clip_norm {
            positive("clip_norm", c)?;
        }
        match self.kind {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)?;
            }
            OptimizerKind::Sgd { momentum, .. } => unit("momentum", momentum)?,
        }
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { every, gamma } => {
                if every == 0 {
                    return Err(Error::param("schedule.every", "must be at least 1"));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(Error::param(
                        "schedule.gamma",
                        format!("must lie in (0, 1], got {gamma}"),
                    ));
                }
            }
            LrSchedule::Cosine { min_factor } => {
                if !(0.0..=1.0).contains(&min_factor) {
                    return Err(Error::param(
                        "schedule.min_factor",
                        format!("must lie in [0, 1], got {min_factor}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What one optimiser step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The learning rate used.
    pub lr: f64,
    /// The gradients' global norm before clipping.
    pub grad_norm: f64,
    /// Whether the gradients were clipped.
    pub clipped: bool,
}

/// An optimiser with its state (moments or momentum buffers and the step count).
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<T> {
    config: OptimizerConfig,
    step: u64,
    decay: Vec<bool>,
    /// Whether each parameter is a core of a tensorized map.
    core: Vec<bool>,
    /// Adam: `m_k, v_k` for each parameter `k` (interleaved); SGD: `u_k`.
    slots: Vec<ArrayD<T>>,
    /// Factor on the scheduled rate (a [`PlateauDecay`](super::PlateauDecay) lowers it).
    lr_scale: f64,
}

impl<T: Scalar> Optimizer<T> {
    /// A fresh optimiser for parameters of the given specs (zero state, step 0).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for invalid settings.
    pub fn new(config: &OptimizerConfig, specs: &[ParamSpec]) -> Result<Self> {
        config.check()?;
        let per = match config.kind {
            OptimizerKind::Adam { .. } => 2,
            OptimizerKind::Sgd { .. } => 1,
        };
        let slots = specs
            .iter()
            .flat_map(|s| (0..per).map(move |_| ArrayD::zeros(s.shape.as_slice())))
            .collect();
        Ok(Self {
            config: config.clone(),
            step: 0,
            decay: specs
                .iter()
                .map(|s| config.decay_biases || !s.part.is_bias())
                .collect(),
            core: specs.iter().map(|s| s.core).collect(),
            slots,
            lr_scale: 1.0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The learning rate of the next step, in a run of `total_steps`:
    /// `lr * schedule(t) * scale * min(1, (t + 1) / warmup)`.
    pub fn next_lr(&self, total_steps: u64) -> f64 {
        let warmup = match self.config.warmup {
            0 => 1.0,
            w => ((self.step + 1) as f64 / w as f64).min(1.0),
        };
        self.config.lr
            * self.config.schedule.factor(self.step, total_steps)
            * self.lr_scale
            * warmup
    }

    /// Sets the factor on the scheduled rate (1 for a fresh optimiser; a
    /// [`PlateauDecay`](super::PlateauDecay) lowers it).
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    /// The state tensors (Adam: `m_k, v_k` per parameter; SGD: momentum buffers).
    pub fn slots(&self) -> &[ArrayD<T>] {
        &self.slots
    }

    /// Restores a saved state (step count and slots).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the slots do not fit this optimiser's parameters.
    pub fn restore(&mut self, step: u64, slots: Vec<ArrayD<T>>) -> Result<()> {
        if slots.len() != self.slots.len()
            || slots
                .iter()
                .zip(&self.slots)
                .any(|(a, b)| a.shape() != b.shape())
        {
            return Err(Error::ShapeMismatch {
                context: "Optimizer::restore state tensors (all shapes, concatenated)",
                expected: self.slots.iter().flat_map(|s| s.shape().to_vec()).collect(),
                got: slots.iter().flat_map(|s| s.shape().to_vec()).collect(),
            });
        }
        self.step = step;
        self.slots = slots;
        Ok(())
    }

    /// One update of `params` with `grads` (clipped in place if asked), in a run of
    /// `total_steps` (for the schedule).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the parameters or gradients do not match the
    /// optimiser's; [`Error::NonFinite`] if a gradient is NaN or infinite (the
    /// parameters are unchanged).
    pub fn step(
        &mut self,
        mut params: Vec<ArrayViewMutD<'_, T>>,
        grads: &mut Gradients<T>,
        total_steps: u64,
    ) -> Result<StepStats> {
        let per = self.slots.len() / self.decay.len().max(1);
        let fits = params.len() == self.decay.len()
            && grads.tensors.len() == self.decay.len()
            && params
                .iter()
                .zip(&grads.tensors)
                .enumerate()
                .all(|(k, (p, g))| {
                    p.shape() == g.shape() && p.shape() == self.slots[k * per].shape()
                });
        if !fits {
            return Err(Error::ShapeMismatch {
                context: "Optimizer::step parameters and gradients (all shapes, concatenated)",
                expected: self
                    .slots
                    .iter()
                    .step_by(per.max(1))
                    .flat_map(|s| s.shape().to_vec())
                    .collect(),
                got: grads
                    .tensors
                    .iter()
                    .flat_map(|s| s.shape().to_vec())
                    .collect(),
            });
        }
        let grad_norm = grads.global_norm();
        if !grad_norm.is_finite() {
            let index = grads
                .tensors
                .iter()
                .flat_map(|t| t.iter())
                .position(|v| !v.is_finite())
                .unwrap_or(0);
            return Err(Error::NonFinite {
                context: "gradients (flat index over all parameter tensors)",
                index,
            });
        }
        let mut clipped = false;
        if let Some(c) = self.config.clip_norm {
            if grad_norm > c {
                grads.scale(T::cast(c / grad_norm));
                clipped = true;
            }
        }
        let lr = self.next_lr(total_steps);
        // Each tensor's rate: `lr`, or for a core under `core_lr` its relative step times
        // its current scale (the same schedule and plateau factor).
        let rates: Vec<f64> = params
            .iter()
            .zip(&self.core)
            .map(|(p, &core)| match self.config.core_lr {
                Some(eta) if core => {
                    let rms =
                        (crate::dense::sum_of_squares(p.view()) / p.len().max(1) as f64).sqrt();
                    if rms > 0.0 && rms.is_finite() {
                        lr / self.config.lr * eta * rms
                    } else {
                        lr
                    }
                }
                _ => lr,
            })
            .collect();
        let wd = self.config.weight_decay;
        let t = self.step + 1;
        match self.config.kind {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let (b1, b2) = (T::cast(beta1), T::cast(beta2));
                let (c1, c2) = (T::cast(1.0 - beta1), T::cast(1.0 - beta2));
                let bc1 = T::cast(1.0 / (1.0 - beta1.powf(t as f64)));
                let bc2 = T::cast(1.0 / (1.0 - beta2.powf(t as f64)));
                let eps = T::cast(eps);
                let (m_v, _) = self.slots.as_mut_slice().split_at_mut(2 * params.len());
                for (k, (p, g)) in params.iter_mut().zip(&grads.tensors).enumerate() {
                    let lr_t = T::cast(rates[k]);
                    let wd = T::cast(if self.decay[k] { wd } else { 0.0 });
                    let (m, v) = m_v[2 * k..2 * k + 2].split_at_mut(1);
                    let zip = Zip::from(p).and(g).and(&mut m[0]).and(&mut v[0]);
                    let f = |p: &mut T, &g: &T, m: &mut T, v: &mut T| {
                        *m = b1 * *m + c1 * g;
                        *v = b2 * *v + c2 * g * g;
                        let upd = (*m * bc1) / ((*v * bc2).sqrt() + eps) + wd * *p;
                        *p -= lr_t * upd;
                    };
                    if g.len() >= PAR_UPDATE {
                        zip.par_for_each(f);
                    } else {
                        zip.for_each(f);
                    }
                }
            }
            OptimizerKind::Sgd { momentum, nesterov } => {
                let mu = T::cast(momentum);
                for (k, (p, g)) in params.iter_mut().zip(&grads.tensors).enumerate() {
                    let lr_t = T::cast(rates[k]);
                    let wd = T::cast(if self.decay[k] { wd } else { 0.0 });
                    let zip = Zip::from(p).and(g).and(&mut self.slots[k]);
                    let f = |p: &mut T, &g: &T, u: &mut T| {
                        let g = g + wd * *p;
                        *u = mu * *u + g;
                        let upd = if nesterov { g + mu * *u } else { *u };
                        *p -= lr_t * upd;
                    };
                    if g.len() >= PAR_UPDATE {
                        zip.par_for_each(f);
                    } else {
                        zip.for_each(f);
                    }
                }
            }
        }
        self.step = t;
        Ok(StepStats {
            lr,
            grad_norm,
            clipped,
        })
    }
}
