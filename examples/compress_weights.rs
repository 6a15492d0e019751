//! Compress a (synthetic) model file: write a small `.safetensors` "model" of dense
//! layers, compress every weight matrix with the library API, print the per-tensor table,
//! write the compressed file and check the rebuilt weights.
//!
//! The weights are structured plus noise: each `W` (`M x N`) is a random tensorized
//! HT-matrix of rank 6 (low rank across the paired modes `(m_k, n_k)`, the structure the
//! format captures) plus 1% Gaussian noise; the biases and an integer buffer are kept as
//! they are. A matrix that is only low-rank in the ordinary sense is not compressible this
//! way, and real weights sit somewhere in between: measure yours with `tnet compress`.
//!
//! ```text
//! cargo run --release --example compress_weights           # quick (a few MB)
//! cargo run --release --example compress_weights -- --full # larger layers
//! ```

use std::time::Instant;

use tnet::compress::{self, CompressOptions, MatrixModes, auto_order};
use tnet::formats::FormatKind;
use tnet::weights::{self, DenseArray, Dtype, Entry, SafetensorsFile, Weight};
use tnet::{DimTree, Factorized, HtTensor, Truncation};

fn main() -> tnet::Result<()> {
    let full = std::env::args().any(|a| a == "--full");
    let layers: &[(usize, usize)] = if full {
        &[(1024, 768), (3072, 768), (768, 3072), (1000, 768)]
    } else {
        &[(256, 192), (512, 256), (256, 512), (100, 256)]
    };
    let dir = std::env::temp_dir().join(format!("tnet_example_{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| tnet::Error::Io {
        path: dir.clone(),
        source,
    })?;

    // 1. A synthetic model: weights in bf16 (as many checkpoints are), biases in f32.
    let mut entries = Vec::new();
    for (i, &(m, n)) in layers.iter().enumerate() {
        let modes = MatrixModes::balanced(m, n, auto_order(m, n))?;
        let shape = modes.tensor_shape();
        let tree = DimTree::balanced(shape.len())?;
        let x = HtTensor::<f32>::random(&tree, &shape, 6, 10 + i as u64)?.to_dense();
        let mut w = modes.matricize(x.view())?;
        let scale = tnet::dense::norm(w.view()) / (w.len() as f32).sqrt();
        let noise = tnet::dense::random_normal::<f32>(&[m, n], 100 + i as u64);
        w.zip_mut_with(&noise, |a, &e| *a = (*a + 0.01 * scale * e) / scale);
        entries.push(Entry::Weight(Weight::new(
            format!("layers.{i}.weight"),
            Dtype::BF16,
            DenseArray::F32(w),
        )));
        entries.push(Entry::Weight(Weight::new(
            format!("layers.{i}.bias"),
            Dtype::F32,
            DenseArray::F32(tnet::dense::random_normal::<f32>(&[m], 200 + i as u64)),
        )));
    }
    let model_path = dir.join("model.safetensors");
    weights::write_safetensors(
        &model_path,
        &SafetensorsFile {
            entries,
            metadata: [("format".to_string(), "pt".to_string())].into(),
        },
    )?;

    // 2. Compress every weight matrix to 5% relative error.
    let t = Instant::now();
    let model = weights::read_safetensors(&model_path)?;
    let opts = CompressOptions {
        include: vec!["*.weight".into()],
        ..CompressOptions::new(FormatKind::Ht, Truncation::rel(0.05))
    };
    let (compressed, reports) = compress::compress_model(&model, &opts)?;
    let out_path = dir.join("model.tnet.safetensors");
    compressed.write(&out_path)?;
    let seconds = t.elapsed().as_secs_f64();

    println!(
        "{:<18} {:>9} {:>22} {:>8} {:>7} {:>9}",
        "name", "shape", "modes (out | in)", "params", "ratio", "rel.err"
    );
    for r in &reports {
        let modes = match (&r.kept_dense, &r.modes) {
            (Some(why), _) => format!("kept: {why}"),
            (None, Some(m)) => format!("{:?} | {:?}", m.out_modes, m.in_modes),
            (None, None) => "-".into(),
        };
        println!(
            "{:<18} {:>9} {:>22} {:>8} {:>6.1}x {:>9.2e}",
            r.name,
            r.shape
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join("x"),
            modes,
            r.params,
            r.ratio,
            r.rel_error
        );
    }
    let tot = compress::totals(&reports);
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "total: {} -> {} parameters ({:.1}x), relative error {:.2e}, {} -> {} bytes, {seconds:.2} s",
        tot.dense_params,
        tot.params,
        tot.ratio,
        tot.rel_error,
        size(&model_path),
        size(&out_path)
    );

    // 3. Rebuild the dense weights from the file and check the error against the original.
    let rebuilt = compress::CompressedFile::read(&out_path)?.to_dense()?;
    for e in &model.entries {
        if let (Entry::Weight(a), Some(Entry::Weight(b))) = (e, rebuilt.get(e.name())) {
            let (a, b) = (
                a.data.clone().into_array::<f32>(),
                b.data.clone().into_array::<f32>(),
            );
            let err = tnet::dense::rel_error(a.view(), b.view())?;
            // 5% from the decomposition, plus the bf16 rounding of the written weights.
            assert!(err <= 0.05 + 0.01, "{}: {err}", e.name());
        }
    }
    println!("rebuilt weights checked against the originals");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
