//! The scalar types tnet computes in: exactly `f32` and `f64`.
//!
//! [`Scalar`] is sealed (it cannot be implemented outside this crate), in the manner of
//! faer and linfa: every algorithm is written once, generically, and is tested in both
//! precisions. Constants that depend on the precision (machine epsilon, default
//! tolerances of the tests) come from here.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A real floating-point scalar: `f32` or `f64`.
///
/// The trait bundles what the algorithms need (ndarray arithmetic, the dense linear-algebra
/// backend, serde) so that user code only ever writes `T: Scalar`.
pub trait Scalar:
    sealed::Sealed
    + num_traits::Float
    + num_traits::FromPrimitive
    + faer::traits::RealField
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + Sum
    + for<'a> Sum<&'a Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + Default
    + Debug
    + Display
    + std::fmt::LowerExp
    + Send
    + Sync
    + Serialize
    + DeserializeOwned
    + 'static
{
    /// Short name of the type, used in file headers and messages (`"f32"` or `"f64"`).
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest representable value.
    fn cast(v: f64) -> Self;

    /// Widens (or keeps) the value as `f64`.
    fn as_f64(self) -> f64;
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn cast(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn cast(v: f64) -> Self {
        v
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
}
