//! Compressing real weights: dense arrays and whole model files in, factorized weights out.
//!
//! This is the library side of the `tnet` command-line tool, usable on its own:
//!
//! - [`decompose`] turns one dense array into a [`CompressedTensor`]: either a plain tensor
//!   decomposed as it is, or a weight matrix `W` (`M x N`) **tensorized** by
//!   [`MatrixModes`] first: `M` is factored into output modes `m_1..m_d`, `N` into input
//!   modes `n_1..n_d` (zero padding when the products exceed `M` or `N`), and mode `k` of
//!   the tensor is the pair `(m_k, n_k)`:
//!
//!   ```text
//!   X[(i_1 j_1), .., (i_d j_d)] = W[(i_1..i_d), (j_1..j_d)]     (row-major multi-indices)
//!   ```
//!
//!   so that a low-rank structure *across* the pairs is what the format captures (the
//!   layout of TT-/HT-matrices, Novikov et al. 2015; Yin et al. 2021).
//! - [`compress_model`] does this for every matching 2-D weight of a safetensors file,
//!   choosing balanced modes automatically, and keeps everything else unchanged.
//! - [`CompressedFile`] is the container both write: a `.safetensors` file holding the
//!   cores as named tensors plus a JSON description under the `__metadata__` key `"tnet"`
//!   (format, tree, block count, ranks, modes, original dtype), so that
//!   [`CompressedFile::to_dense`] can rebuild the dense weights. On reading, every tensor
//!   is rebuilt through its format's checked constructor and checked against the
//!   description; anything inconsistent is [`Error::Corrupt`](crate::Error::Corrupt).
//!
//! Formats are chosen by [`FormatKind`](crate::FormatKind); [`Decomposition`](crate::formats::Decomposition) is the enum over the formats,
//! one match arm per format:
//!
//! | format | algorithm | cores, for an entry `{name}` | ranks in the description |
//! |---|---|---|---|
//! | `ht` | HT-SVD ([`HtTensor::from_dense`](crate::HtTensor::from_dense), on a dimension tree) | `{name}/ht/{node}` (pre-order) | one per node |
//! | `tt` | TT-SVD ([`TtTensor::from_dense`](crate::TtTensor::from_dense)) | `{name}/tt/{k}`, `(r_k, n_k, r_{k+1})` | `[1, r_1, .., 1]` |
//! | `tr` | TR-SVD ([`TrTensor::from_dense`](crate::TrTensor::from_dense)) | `{name}/tr/{k}`, `(r_k, n_k, r_{k+1})` | `[r_0, .., r_{d-1}]` |
//! | `tucker` | ST-HOSVD ([`TuckerTensor::from_dense`](crate::TuckerTensor::from_dense)) | `{name}/tucker/core`, `{name}/tucker/factor/{k}` | `[R_1, .., R_d]` |
//! | `bt` | BT-ALS ([`bt_als`](crate::formats::bt)), see [`BtOptions`](crate::formats::bt::BtOptions) | `{name}/bt/{b}/core`, `{name}/bt/{b}/factor/{k}` | every block's `R_k`, block after block |
//!
//! # Error guarantee
//! With a relative tolerance `ε` and no binding rank cap, every HT, TT, TR and Tucker
//! weight satisfies `‖W − Ŵ‖_F ≤ ε ‖W‖_F` a priori (the zero padding changes neither
//! norm). BT-ALS has no a-priori bound: its block rank is searched until the fit meets
//! `ε` (always possible up to rounding without a cap, see [`BtOptions`](crate::formats::bt::BtOptions)). For every
//! format the error is measured on the reconstruction and reported as
//! [`TensorReport::rel_error`].
//!
//! # Example
//! ```
//! use tnet::compress::{decompose, DecomposeOptions, MatrixModes};
//! use tnet::formats::FormatKind;
//! use tnet::Truncation;
//! // A rank-2 weight 12 x 20, tensorized as (3·4) x (4·5).
//! let a = tnet::dense::random_normal::<f64>(&[12, 2], 1);
//! let b = tnet::dense::random_normal::<f64>(&[2, 20], 2);
//! let a = a.into_dimensionality::<ndarray::Ix2>().unwrap();
//! let b = b.into_dimensionality::<ndarray::Ix2>().unwrap();
//! let w = a.dot(&b).into_dyn();
//! for format in FormatKind::ALL {
//!     let opts = DecomposeOptions {
//!         matrix: Some(MatrixModes::new(12, 20, vec![3, 4], vec![4, 5]).unwrap()),
//!         ..DecomposeOptions::new(format, Truncation::rel(1e-8))
//!     };
//!     let (c, report) = decompose(w.view(), &opts).unwrap();
//!     assert!(report.rel_error <= 1e-8, "{format}");
//!     assert_eq!(c.to_dense().unwrap().shape(), &[12, 20]);
//! }
//! ```

mod container;
mod decompose;
mod model;
mod tensorize;

pub use container::*;
pub use decompose::*;
pub use model::*;
pub use tensorize::*;

#[cfg(test)]
mod tests {
    use super::model::pattern_matches;
    use super::tensorize::balanced_factors;
    use super::*;
    use crate::DimTree;
    use crate::formats::bt::BtOptions;
    use crate::weights::{DenseArray, Entry, SafetensorsFile};
    use crate::{BtTensor, Error, Factorized, FormatKind, Scalar, Truncation};
    use ndarray::ArrayD;
    use ndarray::IxDyn;

    /// Balanced factors multiply to the padded length, and that length is the input
    /// when it factors well; 57,856 = 2^9 * 113 gets padded.
    #[test]
    fn balanced_factors_pad_only_when_needed() {
        for (len, d) in [
            (1024, 4),
            (768, 3),
            (3072, 4),
            (57_600, 4),
            (7, 2),
            (1, 3),
            (57_856, 4),
        ] {
            let (f, padded) = balanced_factors(len, d);
            assert_eq!(f.len(), d);
            assert_eq!(f.iter().product::<usize>(), padded, "{len} {d}: {f:?}");
            assert!(padded >= len);
            assert!(f.windows(2).all(|w| w[0] <= w[1]));
        }
        assert_eq!(balanced_factors(1024, 4), (vec![4, 4, 8, 8], 1024));
        assert_eq!(balanced_factors(57_600, 4).1, 57_600);
        let (f, padded) = balanced_factors(57_856, 4);
        assert!(padded > 57_856 && padded - 57_856 < 1000, "{f:?} {padded}");
        assert!(*f.last().unwrap() as f64 <= 2.0 * (padded as f64).powf(0.25));
    }

    /// Globs match whole names, other patterns substrings.
    #[test]
    fn patterns() {
        assert!(pattern_matches("*.weight", "layers.0.fc.weight"));
        assert!(!pattern_matches("*.weight", "layers.0.fc.bias"));
        assert!(pattern_matches("layers.?.fc*", "layers.3.fc.weight"));
        assert!(!pattern_matches("layers.?.fc", "layers.3.fc.weight"));
        assert!(pattern_matches("fc", "layers.3.fc.weight"));
        assert!(pattern_matches("*", ""));
    }

    /// Tensorize and matricize are inverse, also with padding.
    #[test]
    fn tensorize_roundtrip() {
        let w = crate::dense::random_normal::<f64>(&[5, 7], 3);
        let m = MatrixModes::new(5, 7, vec![2, 3], vec![4, 2]).unwrap();
        let x = m.tensorize(w.view()).unwrap();
        assert_eq!(x.shape(), &[8, 6]);
        assert_eq!(m.matricize(x.view()).unwrap(), w);
        // Mode k pairs (m_k, n_k): X[(i1 j1), (i2 j2)] = W[i1*3 + i2, j1*2 + j2], here
        // (i1, j1, i2, j2) = (1, 2, 1, 1).
        assert_eq!(x[[4 + 2, 2 + 1]], w[[3 + 1, 2 * 2 + 1]]);
    }

    /// A file holding `x` decomposed into `format` under `rule`, as safetensors.
    fn container<T: Scalar>(
        x: &ArrayD<T>,
        format: FormatKind,
        rule: Truncation,
        matrix: Option<MatrixModes>,
    ) -> (CompressedTensor<T>, TensorReport, SafetensorsFile) {
        let opts = DecomposeOptions {
            matrix,
            ..DecomposeOptions::new(format, rule)
        };
        let (c, report) = decompose(x.view(), &opts).unwrap();
        let file = CompressedFile {
            tensors: vec![("w".into(), c.clone().into())],
            ..CompressedFile::default()
        };
        (c, report, file.to_safetensors().unwrap())
    }

    /// Every format, plain and tensorized, in `T`: the reported error is the measured
    /// one (to round-off) and meets the tolerance, and the container gives back the same decomposition.
    fn every_format_round_trips<T: Scalar>(eps: f64) {
        let x = crate::dense::random_normal::<T>(&[4, 5, 3], 1).mapv(|v| v * v);
        let w = crate::dense::random_normal::<T>(&[6, 10], 2);
        let modes = MatrixModes::new(6, 10, vec![2, 4], vec![3, 4]).unwrap();
        for format in FormatKind::ALL {
            for (input, matrix) in [(&x, None), (&w, Some(modes.clone()))] {
                let (c, report, file) = container(input, format, Truncation::rel(eps), matrix);
                let measured = crate::dense::rel_error(input.view(), c.to_dense().unwrap().view())
                    .unwrap()
                    .as_f64();
                // The report sums slab by slab in f64 (`distance`); the dense check
                // forms the difference in T: they agree to T's round-off.
                let eps_t = <T as num_traits::Float>::epsilon().as_f64();
                assert!(
                    (report.rel_error - measured).abs() <= 1e-3 * measured + 100.0 * eps_t,
                    "{format}: reported {} against measured {measured}",
                    report.rel_error
                );
                assert!(measured <= eps, "{format}: {measured}");
                assert_eq!(report.format, Some(format));
                assert_eq!(report.sweeps.is_some(), format == FormatKind::Bt);
                let back = CompressedFile::from_safetensors(file).unwrap();
                assert_eq!(back.tensors.len(), 1);
                assert_eq!(back.tensors[0].1, AnyCompressed::from(c.clone()));
                let meta = back.tensors[0].1.meta("w");
                assert_eq!(meta.ranks, report.ranks);
                assert_eq!(meta.blocks.is_some(), format == FormatKind::Bt);
            }
        }
    }

    /// Every format round-trips through the container within the tolerance, f64.
    #[test]
    fn every_format_round_trips_f64() {
        every_format_round_trips::<f64>(1e-6);
        every_format_round_trips::<f64>(0.3);
    }

    /// Every format round-trips through the container within the tolerance, f32.
    #[test]
    fn every_format_round_trips_f32() {
        every_format_round_trips::<f32>(1e-3);
        every_format_round_trips::<f32>(0.3);
    }

    /// The core names follow the documented scheme.
    #[test]
    fn core_names() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 3);
        let names = |format| {
            let (_, _, file) = container(&x, format, Truncation::rank(2), None);
            let mut n: Vec<String> = file.entries.iter().map(|e| e.name().to_string()).collect();
            n.sort();
            n
        };
        assert_eq!(names(FormatKind::Tt), ["w/tt/0", "w/tt/1", "w/tt/2"]);
        assert_eq!(names(FormatKind::Tr), ["w/tr/0", "w/tr/1", "w/tr/2"]);
        assert_eq!(
            names(FormatKind::Tucker),
            [
                "w/tucker/core",
                "w/tucker/factor/0",
                "w/tucker/factor/1",
                "w/tucker/factor/2"
            ]
        );
        let bt = names(FormatKind::Bt);
        assert_eq!(bt.len(), 2 * 4);
        assert!(bt.contains(&"w/bt/1/factor/2".to_string()), "{bt:?}");
        assert!(bt.contains(&"w/bt/0/core".to_string()), "{bt:?}");
    }

    /// `file` with its description replaced by the edited `desc` is refused: by the
    /// checksum; without a checksum; and with the checksum recomputed over the edit, by
    /// the validation of the description.
    fn refused_three_ways(file: &SafetensorsFile, mut desc: serde_json::Value, what: &str) {
        let reason = |desc: String| {
            let mut f = file.clone();
            f.metadata.insert(METADATA_KEY.into(), desc);
            match CompressedFile::from_safetensors(f) {
                Err(Error::Corrupt { reason, .. }) => reason,
                other => panic!("{what}: expected Error::Corrupt, got {other:?}"),
            }
        };
        let r = reason(desc.to_string());
        assert!(r.contains("checksum mismatch"), "{what}: {r}");
        desc.as_object_mut().unwrap().remove("checksum");
        let r = reason(desc.to_string());
        assert!(r.contains("no checksum"), "{what}: {r}");
        let sealed = container::resealed(&desc.to_string(), &file.metadata, &file.entries)
            .expect("a container description");
        let r = reason(sealed);
        assert!(
            !r.contains("checksum"),
            "{what}: the validation should answer: {r}"
        );
    }

    /// A tensorized weight whose output and input modes are swapped in the description
    /// (a different matrix from the same cores) is refused.
    #[test]
    fn swapped_matrix_modes_are_refused() {
        let w = crate::dense::random_normal::<f64>(&[6, 10], 2);
        let modes = MatrixModes::new(6, 10, vec![2, 3], vec![2, 5]).unwrap();
        for format in FormatKind::ALL {
            let (_, _, file) = container(&w, format, Truncation::rank(2), Some(modes.clone()));
            let mut desc: serde_json::Value =
                serde_json::from_str(&file.metadata[METADATA_KEY]).unwrap();
            let m = &mut desc["tensors"][0]["matrix"];
            let (o, i) = (m["out_modes"].clone(), m["in_modes"].clone());
            m["out_modes"] = i;
            m["in_modes"] = o;
            refused_three_ways(&file, desc, &format!("{format}, swapped modes"));
        }
    }

    /// Edited descriptions and damaged cores are `Error::Corrupt` for every format,
    /// never a panic.
    #[test]
    fn tampered_files_are_corrupt() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 4);
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 11] = [
            ("precision", |m| m["precision"] = "f32".into()),
            ("blocks zero", |m| m["blocks"] = 0.into()),
            ("core renamed", |m| m["cores"][0] = "w/zz/9".into()),
            ("ranks", |m| m["ranks"][0] = 7.into()),
            ("ranks dropped", |m| {
                m["ranks"].as_array_mut().unwrap().pop();
            }),
            ("blocks", |m| m["blocks"] = 3.into()),
            ("tree permuted", |m| m["tree"] = "((1,0),2)".into()),
            ("tensor shape", |m| m["tensor_shape"] = vec![3, 4].into()),
            ("format", |m| {
                let f = if m["format"] == "tucker" {
                    "bt"
                } else {
                    "tucker"
                };
                m["format"] = f.into();
            }),
            ("cores reversed", |m| {
                m["cores"].as_array_mut().unwrap().reverse();
            }),
            ("a core dropped", |m| {
                m["cores"].as_array_mut().unwrap().remove(0);
            }),
        ];
        for format in FormatKind::ALL {
            for (what, edit) in edits {
                let (_, _, file) = container(&x, format, Truncation::rank(2), None);
                let mut desc: serde_json::Value =
                    serde_json::from_str(&file.metadata[METADATA_KEY]).unwrap();
                let before = desc.clone();
                edit(&mut desc["tensors"][0]);
                if desc == before {
                    continue; // e.g. a tree already absent
                }
                // The checksum refuses the edit; a description without its checksum is
                // refused as such; and with the checksum recomputed (an editor who knows
                // the scheme) the description's own validation refuses it.
                refused_three_ways(&file, desc, &format!("{format}, {what}"));
            }
            // A core of another shape, or with a NaN.
            for damage in 0..2 {
                let (_, _, mut file) = container(&x, format, Truncation::rank(2), None);
                let Entry::Weight(w) = &mut file.entries[0] else {
                    unreachable!("cores are float weights")
                };
                let mut a = w.data.clone().into_array::<f64>();
                if damage == 0 {
                    a = a.insert_axis(ndarray::Axis(0));
                } else {
                    a.iter_mut().for_each(|v| *v = f64::NAN);
                }
                w.data = DenseArray::from_array(a);
                let r = CompressedFile::from_safetensors(file);
                assert!(
                    matches!(r, Err(Error::Corrupt { .. })),
                    "{format}, damage {damage}: {r:?}"
                );
            }
        }
    }

    /// A zero array and a one-entry array decompose exactly in every format and survive
    /// the container.
    #[test]
    fn degenerate_arrays() {
        let zero = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 2]));
        let one = ArrayD::<f64>::from_elem(IxDyn(&[1]), 2.5);
        for format in FormatKind::ALL {
            for x in [&zero, &one] {
                let (c, report, file) = container(x, format, Truncation::rel(1e-6), None);
                assert_eq!(report.rel_error, 0.0, "{format}");
                assert_eq!(&c.to_dense().unwrap(), x);
                let back = CompressedFile::from_safetensors(file).unwrap();
                assert_eq!(
                    &back.tensors[0].1.to_dense().unwrap().into_array::<f64>(),
                    x
                );
            }
        }
    }

    /// A tree is an error for every format but HT; zero blocks is an error for BT.
    #[test]
    fn format_specific_options_are_checked() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 5);
        for format in FormatKind::ALL {
            let opts = DecomposeOptions {
                tree: Some(DimTree::balanced(3).unwrap()),
                ..DecomposeOptions::new(format, Truncation::rank(2))
            };
            let r = decompose(x.view(), &opts);
            assert_eq!(r.is_ok(), format == FormatKind::Ht, "{format}");
        }
        let opts = DecomposeOptions {
            bt: BtOptions {
                blocks: 0,
                ..BtOptions::default()
            },
            ..DecomposeOptions::new(FormatKind::Bt, Truncation::rank(2))
        };
        assert!(matches!(
            decompose(x.view(), &opts),
            Err(Error::InvalidParameter { .. })
        ));
    }

    /// The block-rank search meets a tight tolerance on a block-term tensor, with the
    /// block count asked for; under a rank cap it reports the error it reached.
    #[test]
    fn bt_rank_search() {
        let x = BtTensor::<f64>::random(&[6, 6, 6], &[2, 2, 2], 2, 7)
            .unwrap()
            .to_dense();
        let opts = DecomposeOptions {
            bt: BtOptions {
                blocks: 2,
                ..BtOptions::default()
            },
            ..DecomposeOptions::new(FormatKind::Bt, Truncation::rel(1e-6))
        };
        let (c, report) = decompose(x.view(), &opts).unwrap();
        assert!(report.rel_error <= 1e-6, "{report:?}");
        assert_eq!(c.decomposition.blocks(), Some(2));
        assert!(report.trials.unwrap() >= 1);
        let capped = DecomposeOptions {
            rule: Truncation::rel(1e-6).with_max_rank(1),
            ..opts
        };
        let (c, report) = decompose(x.view(), &capped).unwrap();
        assert_eq!(c.decomposition.ranks(), vec![1; 6]);
        assert!(report.rel_error > 1e-6, "a rank-1 fit of rank-2 blocks");
        assert!((report.rel_error - report.rel_error_bound).abs() < 1e-9);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// For random shapes, formats and tolerances, the measured error of the
        /// reconstruction read back from the container is at most the tolerance.
        #[test]
        fn container_meets_tolerance(
            shape in proptest::collection::vec(1usize..5, 1..4),
            format in proptest::sample::select(FormatKind::ALL.to_vec()),
            eps in proptest::sample::select(vec![1e-8, 1e-3, 0.1, 0.5]),
            seed in 0u64..1000,
        ) {
            let x = crate::dense::random_normal::<f64>(&shape, seed);
            let (_, _, file) = container(&x, format, Truncation::rel(eps), None);
            let back = CompressedFile::from_safetensors(file).unwrap();
            let y = back.tensors[0].1.to_dense().unwrap().into_array::<f64>();
            let err = crate::dense::rel_error(x.view(), y.view()).unwrap();
            proptest::prop_assert!(err <= eps + 1e-12, "{} {:?}: {}", format, shape, err);
        }
    }
}
