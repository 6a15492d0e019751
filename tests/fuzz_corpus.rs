//! Replays the fuzz corpus (`fuzz/corpus/<target>/`: the seed files and the inputs the
//! fuzzer kept, including every crash it found, fixed since) through the targets' entry
//! points (`tnet::fuzzing`), so each test run repeats the fuzzing campaign's findings.
//! The fuzzing itself runs outside the test suite: `cargo +nightly fuzz run <target>` in
//! `fuzz/` (see `docs/weights.md`).

use std::path::Path;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

#[test]
fn the_fuzz_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [(&str, Target); 6] = [
        ("npy", tnet::fuzzing::npy),
        ("npz", tnet::fuzzing::npz),
        ("safetensors", tnet::fuzzing::safetensors),
        ("container", tnet::fuzzing::container),
        ("run_files", tnet::fuzzing::run_files),
        ("run_json", tnet::fuzzing::run_json),
    ];
    for (name, run) in targets {
        let mut inputs: Vec<_> = std::fs::read_dir(root.join(name))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "fuzz/corpus/{name} is empty");
        for input in &inputs {
            run(&std::fs::read(input).unwrap());
        }
    }
}

/// The seeds are valid files: each reads, so the fuzzer starts from inputs that reach the
/// decoders and validators, not only the magic-number checks.
#[test]
fn the_seeds_are_valid_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for seed in ["f64_3d", "f32_2d", "f16_1d", "f64_be_fortran", "scalar"] {
        let bytes = std::fs::read(root.join("npy").join(seed)).unwrap();
        tnet::weights::npy_from_bytes(seed, &bytes).unwrap();
    }
    for seed in ["stored", "deflated"] {
        let bytes = std::fs::read(root.join("npz").join(seed)).unwrap();
        assert_eq!(tnet::weights::npz_from_bytes(&bytes).unwrap().len(), 2);
    }
    // The run files' seeds are bodies without the trailing checksum, which the harness
    // appends: with it they load (into the harness's model, and as a checkpoint).
    for seed in ["model_f32", "model_f64", "checkpoint_f32"] {
        let mut bytes = std::fs::read(root.join("run_files").join(seed)).unwrap();
        let body = bytes.clone();
        bytes.extend_from_slice(&tnet::io::fnv1a(&body).to_le_bytes());
        let file = std::env::temp_dir().join(format!("tnet_seed_{}_{seed}", std::process::id()));
        std::fs::write(&file, &bytes).unwrap();
        let config = tnet::models::LstmConfig::new(4, 3);
        let loaded = match seed {
            "model_f32" => tnet::models::Lstm::<f32>::dense(&config, 2, 0)
                .unwrap()
                .load_params(&file),
            "model_f64" => tnet::models::Lstm::<f64>::dense(&config, 2, 0)
                .unwrap()
                .load_params(&file),
            _ => tnet::train::Checkpoint::<f32>::load(&file).map(|_| ()),
        };
        std::fs::remove_file(&file).unwrap();
        loaded.unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
    // The run.json seeds read (sealed) and build their model.
    for seed in ["fdht", "tt"] {
        let bytes = std::fs::read(root.join("run_json").join(seed)).unwrap();
        let spec = tnet::train::run::RunSpec::from_json(&bytes).unwrap();
        spec.model::<f32>().unwrap();
    }
    // Containers with their checksum load; the seeds without one (from before checksums
    // were required; the harness reseals them so mutations reach the validation) are
    // refused as they are.
    for seed in ["ht", "tt", "tr", "tucker", "bt", "tt_matrix"] {
        let read = |name: &str| {
            let bytes = std::fs::read(root.join("container").join(name)).unwrap();
            let file = tnet::weights::safetensors_from_bytes(&bytes).unwrap();
            tnet::compress::CompressedFile::from_safetensors(file)
        };
        let c = read(seed).unwrap();
        c.tensors[0].1.to_dense().unwrap();
        match read(&format!("{seed}_nosum")) {
            Err(tnet::Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("no checksum"), "{seed}: {reason}")
            }
            other => panic!("{seed}_nosum: {other:?}"),
        }
    }
}
