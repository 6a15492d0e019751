//! `run.json`: what a run directory of `tnet train` records about itself — the data source,
//! the split, the model and the schedule — sealed by a checksum.
//!
//! `eval`, `info`, `predict` and `--resume` rebuild the model and the split from it, so an
//! edited file would silently describe another run: [`RunSpec::read`] refuses a file whose
//! checksum is missing or does not match its fields, and the model it names is checked
//! ([`ModelSpec::check`](crate::models::zoo::ModelSpec::check)) and built under the
//! [memory limit](crate::limits) before anything is allocated.
//!
//! # Example
//! ```
//! use tnet::train::run::RunSpec;
//! let spec = RunSpec::example();
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("run.json");
//! spec.write(&path).unwrap();
//! assert_eq!(RunSpec::read(&path).unwrap(), spec);
//! let text = std::fs::read_to_string(&path).unwrap().replace("\"rank\": 4", "\"rank\": 5");
//! std::fs::write(&path, text).unwrap();
//! assert!(RunSpec::read(&path).unwrap_err().to_string().contains("checksum mismatch"));
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::models::zoo::{HtLayout, ModelKind, ModelSpec, build};
use crate::models::{Lstm, LstmConfig};
use crate::{Error, Result, Scalar};

/// What `run.json` records: enough to rebuild the data, the split and the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The data source: `synthetic`, `synthetic-hard`, `synthetic-full` or a folder.
    pub data: String,
    /// `--frames`: frames per clip taken from a folder (None: the source's own).
    pub frames: Option<usize>,
    /// `--size HxW` of folder frames (None: the source's own).
    pub size: Option<(usize, usize)>,
    /// The model kind's name (`fdht`, `tt`, `dense`, ...).
    pub model: String,
    /// The rank of the tensorized maps.
    pub rank: usize,
    /// The number of modes of the tensorized maps.
    pub order: usize,
    /// The number of blocks (BT).
    pub blocks: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// Batch size.
    pub batch: usize,
    /// The seed of the model, the split and the batches.
    pub seed: u64,
    /// The held-out fraction of the data (without a separate test folder).
    pub test_fraction: f64,
    /// The recurrent gain. Runs written before the option existed were trained with 1.
    #[serde(default = "unit_gain")]
    pub recurrent_gain: f64,
    /// The gate normalisation. Runs written before the option existed had none.
    #[serde(default)]
    pub gate_norm: bool,
    /// The HT tree layout. Runs written before the option existed used `paired`.
    #[serde(default)]
    pub ht_layout: HtLayout,
    /// Dropout probability on the input and the recurrent path while training
    /// ([`LstmConfig::with_dropout`]). Runs written before the option existed had none.
    #[serde(default)]
    pub dropout: f64,
    /// Values per frame sequence step (`N`): the model's input length.
    pub n_input: usize,
    /// Classes of the data the run was trained on.
    pub n_classes: usize,
    /// Frames per clip (`T`).
    pub clip_frames: usize,
    /// The class names, in label order: evaluation on other data matches classes by
    /// name. Runs written before the field existed have none (matched by position).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// The test folder of `--test-data` (none: the test clips are held out of `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<String>,
}

fn unit_gain() -> f64 {
    1.0
}

impl RunSpec {
    /// The model kind named by [`model`](Self::model).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for an unknown name.
    pub fn kind(&self) -> Result<ModelKind> {
        self.model.parse().map_err(|e| Error::Corrupt {
            path: None,
            reason: format!("run.json: model {:?}: {e}", self.model),
        })
    }

    /// The model's specification (kind, rank, order, blocks, HT layout), checked.
    ///
    /// # Errors
    /// As [`kind`](Self::kind); [`Error::InvalidParameter`] for a rank, order (at most
    /// 64) or block count the zoo refuses.
    pub fn model_spec(&self) -> Result<ModelSpec> {
        let spec = ModelSpec::new(self.kind()?, self.rank)
            .with_order(self.order)
            .with_blocks(self.blocks)
            .with_ht_layout(self.ht_layout);
        spec.check()?;
        Ok(spec)
    }

    /// The run's model, freshly initialised (load its parameters from `model.bin`).
    ///
    /// # Errors
    /// As [`model_spec`](Self::model_spec); [`Error::TooLarge`] if its parameters exceed
    /// the memory limit.
    pub fn model<T: Scalar>(&self) -> Result<Lstm<T>> {
        let config = LstmConfig::new(self.n_input, self.hidden)
            .with_recurrent_gain(self.recurrent_gain)
            .with_gate_norm(self.gate_norm)
            .with_dropout(self.dropout, self.dropout);
        build::<T>(&self.model_spec()?, &config, self.n_classes, self.seed)
    }

    /// Reads `run.json` (see [`from_json`](Self::from_json)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; as [`from_json`](Self::from_json), with
    /// the path.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&bytes).map_err(|e| crate::io::with_path(e, path))
    }

    /// Parses the text of a `run.json`, refusing one edited after it was written: its
    /// `checksum` (written by [`write`](Self::write)) must be there and match the other
    /// fields.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for invalid JSON or fields, a missing checksum, or a checksum
    /// mismatch.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(e.to_string()))?;
        let Some(stored) = value.as_object_mut().and_then(|m| m.remove("checksum")) else {
            return Err(Error::corrupt(
                "no checksum: it was removed after training (or the run predates checksums), \
                 so the settings cannot be trusted to describe the run's model and split",
            ));
        };
        let computed = checksum(&value);
        if stored.as_str() != Some(computed.as_str()) {
            let stored = stored
                .as_str()
                .map_or_else(|| stored.to_string(), str::to_string);
            return Err(Error::corrupt(format!(
                "checksum mismatch (stored {stored}, computed {computed}): the run's settings \
                 were edited after training, so they no longer describe its model and split"
            )));
        }
        serde_json::from_value(value).map_err(|e| Error::corrupt(e.to_string()))
    }

    /// The JSON text of `run.json`, with a checksum over its fields (pretty-printed).
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("plain data serialises");
        seal(&mut value);
        serde_json::to_string_pretty(&value).expect("plain data serialises")
    }

    /// Writes `run.json` atomically (see [`to_json`](Self::to_json)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.to_json().as_bytes())
    }

    /// A small valid run (the built-in video, FDHT-LSTM at rank 4), for examples and
    /// tests.
    pub fn example() -> Self {
        Self {
            data: "synthetic".into(),
            frames: None,
            size: None,
            model: "fdht".into(),
            rank: 4,
            order: 3,
            blocks: 2,
            hidden: 8,
            epochs: 1,
            lr: 3e-3,
            batch: 16,
            seed: 0,
            test_fraction: 0.2,
            recurrent_gain: 1.0,
            gate_norm: false,
            ht_layout: HtLayout::default(),
            dropout: 0.0,
            n_input: 48,
            n_classes: 2,
            clip_frames: 6,
            class_names: vec!["left".into(), "right".into()],
            test_data: None,
        }
    }
}

/// Replaces any `checksum` of a `run.json` object by the one of its other fields (what
/// [`RunSpec::write`] stores; the fuzz target uses it so that mutations reach the fields).
pub fn seal(value: &mut serde_json::Value) {
    if let Some(m) = value.as_object_mut() {
        m.remove("checksum");
    }
    let sum = checksum(value);
    if let Some(m) = value.as_object_mut() {
        m.insert("checksum".into(), sum.into());
    }
}

/// The checksum of the compact JSON of `value` (keys sorted: serde_json's map is ordered).
fn checksum(value: &serde_json::Value) -> String {
    crate::io::Checksum::new()
        .field(value.to_string().as_bytes())
        .hex()
}
