//! Look at the video data: renders a few clips of every class into a PNG contact sheet
//! (one row per class, each clip's T frames side by side) and prints dataset statistics.
//!
//! ```text
//! cargo run --release --example video_data                    # quick synthetic preset
//! cargo run --release --example video_data -- --full          # UCF11-like preset (160x120x3, 11 classes)
//! cargo run --release --example video_data -- --classes 14    # every synthetic pattern
//! cargo run --release --example video_data -- --data DIR      # a frame-folder dataset on disk
//! cargo run --release --example video_data -- --out sheet.png --clips 3 --size 64x96 --seed 2
//! ```
use std::time::Instant;

use tnet::data::{
    FolderConfig, FolderDataset, SyntheticConfig, SyntheticVideo, VideoDataset, class_counts,
};

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clips_per_row: usize = arg_value(&args, "--clips").map_or(Ok(2), |v| v.parse())?;
    let out = arg_value(&args, "--out").map_or_else(
        || std::env::temp_dir().join("tnet_video_contact_sheet.png"),
        std::path::PathBuf::from,
    );

    let start = Instant::now();
    let (data, shape, held): (Box<dyn VideoDataset>, (usize, usize, usize), usize) =
        if let Some(dir) = arg_value(&args, "--data") {
            let data = FolderDataset::open(&dir, &FolderConfig::ucf11())?;
            println!("{}", data.report());
            let (shape, held) = (data.frame_shape(), data.bytes_held());
            (Box::new(data), shape, held)
        } else {
            let mut cfg = if args.iter().any(|a| a == "--full") {
                SyntheticConfig::ucf11_like()
            } else {
                SyntheticConfig::quick()
            };
            if let Some(k) = arg_value(&args, "--classes") {
                cfg = cfg.with_classes(k.parse()?)?;
            }
            if let Some(size) = arg_value(&args, "--size") {
                let (h, w) = size.split_once('x').ok_or("--size takes HxW, e.g. 64x96")?;
                (cfg.height, cfg.width) = (h.parse()?, w.parse()?);
            }
            if let Some(seed) = arg_value(&args, "--seed") {
                cfg.seed = seed.parse()?;
            }
            let data = SyntheticVideo::new(cfg)?;
            let (shape, held) = (data.frame_shape(), data.bytes_held());
            (Box::new(data), shape, held)
        };
    let (h, w, c) = shape;
    let (t, n) = (data.frames(), data.frame_len());
    println!(
        "dataset: {} clips, {} classes, T = {t} frames of {h}x{w}x{c} (N = {n}), opened in {:.2?}",
        data.len(),
        data.n_classes(),
        start.elapsed()
    );
    println!(
        "memory: {:.1} MB held now, {:.1} MB as u8 for the whole set, {:.1} MB if it were f32",
        held as f64 / 1e6,
        (data.len() * t * n) as f64 / 1e6,
        (data.len() * t * n * 4) as f64 / 1e6
    );
    let names = data.class_names();
    let counts = class_counts(data.as_ref());
    for (name, count) in names.iter().zip(&counts) {
        println!("  class {name:<14} {count} clips");
    }

    // Pixel statistics and fill time over the first 64 clips.
    let probe = data.len().min(64);
    let mut x = vec![0.0f32; t * n];
    let (mut sum, mut sq) = (0.0f64, 0.0f64);
    let fill = Instant::now();
    for i in 0..probe {
        data.fill_clip(i, false, 0, &mut x)?;
        sum += x.iter().map(|&v| v as f64).sum::<f64>();
        sq += x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
    }
    let per_clip = fill.elapsed() / probe as u32;
    let count = (probe * t * n) as f64;
    let mean = sum / count;
    println!(
        "values (x - 128) / 128 over {probe} clips: mean {mean:.3}, std {:.3}; fill_clip {per_clip:.2?} per clip",
        (sq / count - mean * mean).sqrt()
    );

    // Contact sheet: one row per class, `clips_per_row` clips of T frames each.
    let scale = (96 / h).max(1);
    let gap = 4usize;
    let clip_w = t * (w * scale + 1);
    let sheet_w = clips_per_row * (clip_w + gap) + gap;
    let sheet_h = data.n_classes() * (h * scale + gap) + gap;
    let mut sheet = vec![255u8; sheet_w * sheet_h * 3];
    let mut taken = vec![0usize; data.n_classes()];
    for i in 0..data.len() {
        let label = data.label(i);
        if taken[label] >= clips_per_row {
            continue;
        }
        data.fill_clip(i, false, 0, &mut x)?;
        let x0 = gap + taken[label] * (clip_w + gap);
        let y0 = gap + label * (h * scale + gap);
        for f in 0..t {
            for yy in 0..h * scale {
                for xx in 0..w * scale {
                    let base = f * n + ((yy / scale) * w + xx / scale) * c;
                    let px = |k: usize| (x[base + k.min(c - 1)] * 128.0 + 128.0).round() as u8;
                    let at = ((y0 + yy) * sheet_w + x0 + f * (w * scale + 1) + xx) * 3;
                    sheet[at..at + 3].copy_from_slice(&[px(0), px(1), px(2)]);
                }
            }
        }
        taken[label] += 1;
    }
    let png = tnet::data::image::encode_png(sheet_w, sheet_h, 3, &sheet)?;
    tnet::io::write_atomic(&out, &png)?;
    println!(
        "contact sheet: {} (rows = classes in order {}; {clips_per_row} clips x {t} frames per row)",
        out.display(),
        names.join(", ")
    );
    Ok(())
}
