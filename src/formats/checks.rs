//! Argument checks shared by the formats (crate-private): one error for each misuse.

use crate::{Error, Result};

/// A shape with at least one mode and no empty mode.
///
/// # Errors
/// [`Error::Empty`] otherwise.
pub(crate) fn check_shape(context: &'static str, shape: &[usize]) -> Result<()> {
    if shape.is_empty() || shape.contains(&0) {
        return Err(Error::Empty {
            context,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// Two operands of the same shape.
///
/// # Errors
/// [`Error::ShapeMismatch`] otherwise.
pub(crate) fn check_same_shape(
    context: &'static str,
    expected: &[usize],
    got: &[usize],
) -> Result<()> {
    if expected != got {
        return Err(Error::ShapeMismatch {
            context,
            expected: expected.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(())
}

/// A multi-index inside `shape`.
///
/// # Errors
/// [`Error::IndexOutOfBounds`] otherwise.
pub(crate) fn check_index(index: &[usize], shape: &[usize]) -> Result<()> {
    if index.len() != shape.len() || index.iter().zip(shape).any(|(&i, &n)| i >= n) {
        return Err(Error::IndexOutOfBounds {
            index: index.to_vec(),
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// `index` fixes leading modes of `shape`: at most `shape.len()` entries, each in range.
///
/// # Errors
/// [`Error::IndexOutOfBounds`] otherwise.
pub(crate) fn check_leading_index(index: &[usize], shape: &[usize]) -> Result<()> {
    if index.len() > shape.len() || index.iter().zip(shape).any(|(&i, &n)| i >= n) {
        return Err(Error::IndexOutOfBounds {
            index: index.to_vec(),
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// The entries at the rows of `indices` (one column per mode of `shape`), each by `entry`.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `indices` has not one column per mode; the errors of
/// `entry`.
pub(crate) fn entries<T>(
    context: &'static str,
    shape: &[usize],
    indices: ndarray::ArrayView2<'_, usize>,
    entry: impl Fn(&[usize]) -> Result<T>,
) -> Result<Vec<T>> {
    if indices.ncols() != shape.len() {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![indices.nrows(), shape.len()],
            got: indices.shape().to_vec(),
        });
    }
    indices
        .rows()
        .into_iter()
        .map(|row| entry(&row.to_vec()))
        .collect()
}
