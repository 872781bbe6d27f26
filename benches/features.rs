//! Micro-benchmarks of the per-sample and per-decision hot paths: payload parsing (JSON
//! single, JSON batch, binary batch), the sliding window (per sample, by window length, FFT
//! per hop included), the FFT band magnitudes alone (per hop), feature vector assembly, and
//! the model (per batch size).
//! `cargo bench --bench features`; figures in docs/benchmarks.md.

#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use edgegw_actors::ingest::{binary, parse};
use edgegw_actors::model::{self, Scorer};
use edgegw_actors::sensor::baseline::feature_names;
use edgegw_actors::sensor::novelty::{Novelty, NoveltyConfig};
use edgegw_actors::sensor::spectrum::Spectrum;
use edgegw_actors::sensor::tracker::{Step, Tracker};
use edgegw_actors::sensor::window::{Sample, Window, WindowConfig};
use edgegw_actors::sensor::SensorsConfig;
use std::sync::Arc;

fn series(n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            ts: 1_700_000_000_000 + i as i64 * 100,
            v: 1000.0 + (i as f64 * 0.1).sin() * 5.0 + ((i * 7919) % 13) as f64 * 0.1,
        })
        .collect()
}

fn window_push(c: &mut Criterion) {
    let mut g = c.benchmark_group("window_push_per_sample");
    let data = series(100_000);
    for len in [64usize, 256, 1024] {
        g.throughput(Throughput::Elements(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &len, |b, &len| {
            b.iter_batched(
                || {
                    Window::new(WindowConfig {
                        len,
                        hop: len / 4,
                        bands: 4,
                        allowed_lateness_ms: 2000,
                    })
                    .unwrap()
                },
                |mut w| {
                    for s in &data {
                        let _ = black_box(w.push(*s));
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// One message of each payload format through the ingest parser, into a reused buffer as
/// the ingest actor does; throughput in samples.
fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let now = 1_800_000_000_000;
    let lim = parse::Limits {
        max_payload_bytes: 1 << 20,
        max_batch_samples: 10_000,
        max_future_ms: 300_000,
    };
    let data = series(100);
    let single = format!("{{\"ts\": {}, \"v\": {}}}", data[0].ts, data[0].v).into_bytes();
    let pairs: Vec<String> = data.iter().map(|s| format!("[{},{}]", s.ts, s.v)).collect();
    let batch = format!("{{\"samples\": [{}]}}", pairs.join(",")).into_bytes();
    let mut bin = Vec::new();
    binary::encode(&data, &mut bin);
    let mut out = Vec::with_capacity(10_000);
    for (name, payload, n) in [
        ("json_single", &single, 1),
        ("json_batch_100", &batch, 100),
        ("binary_batch_100", &bin, 100),
    ] {
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter(|| {
                parse::parse(black_box(payload), now, &lim, &mut out).unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// Band magnitudes of one full window, what a window computes once per hop.
fn fft_per_hop(c: &mut Criterion) {
    let mut g = c.benchmark_group("fft_per_hop");
    for len in [64usize, 256, 1024] {
        let mut sp = Spectrum::new(len, 4);
        let values: Vec<f64> = series(len).iter().map(|s| s.v).collect();
        let mean = values.iter().sum::<f64>() / len as f64;
        g.bench_with_input(BenchmarkId::from_parameter(len), &values, |b, v| {
            b.iter(|| black_box(sp.bands(v.iter().copied(), mean)))
        });
    }
    g.finish();
}

/// The sensor's novelty per sample, with its memory and archive full (the nearest-context scan
/// runs every 4th sample).
fn novelty(c: &mut Criterion) {
    let mut n = Novelty::new(NoveltyConfig::default());
    let values: Vec<f64> = series(20_000).iter().map(|s| s.v).collect();
    for &v in &values {
        n.observe(v);
    }
    let mut i = 0;
    c.bench_function("novelty_per_sample", |b| {
        b.iter(|| {
            n.observe(black_box(values[i % values.len()]));
            i += 1;
            black_box(n.take())
        })
    });
}

/// Window statistics normalised by the sensor's baseline into the model's feature vector.
fn feature_vector(c: &mut Criterion) {
    let mut t = Tracker::new(&SensorsConfig::default(), None).unwrap();
    let mut last = None;
    for s in series(2000) {
        if let Ok(Step::Ready(stats, _)) = t.push(s) {
            last = Some(stats);
        }
    }
    let stats = last.unwrap();
    c.bench_function("feature_vector_assembly", |bn| {
        bn.iter(|| black_box(t.baseline().features(black_box(&stats))))
    });
}

/// The model per batch size: the f32 package built into the binary, and its int8 variant
/// (`config/model-int8`, dequantised at load, so the same arithmetic) as a second group. candle's
/// kernel threads are pinned as in the gateway (`model::pin_kernel_threads`); without that,
/// every batch pays about 180 µs more (docs/model.md, "Inference latency").
fn inference(c: &mut Criterion) {
    // As the gateway binary does at start (the bench has no other thread yet).
    model::pin_kernel_threads();
    let f32_model = match model::load_builtin() {
        Ok(m) => Scorer::Model(Arc::new(m)),
        Err(_) => Scorer::fallback(feature_names(4)),
    };
    let int8_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/model-int8");
    let int8_model = model::load_package(std::path::Path::new(int8_dir))
        .ok()
        .map(|m| Scorer::Model(Arc::new(m)));
    let groups = [
        ("model_score_batch", Some(f32_model)),
        ("model_score_batch_int8", int8_model),
    ];
    for (name, scorer) in groups {
        let Some(scorer) = scorer else { continue };
        let mut g = c.benchmark_group(name);
        for n in [1usize, 8, 32, 128] {
            let x: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    (0..11)
                        .map(|j| ((i * 11 + j) as f32 * 0.37).sin())
                        .collect()
                })
                .collect();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &x, |b, x| {
                b.iter(|| black_box(scorer.score_batch(x)))
            });
        }
        g.finish();
    }
}

criterion_group!(
    benches,
    parsing,
    window_push,
    fft_per_hop,
    novelty,
    feature_vector,
    inference
);
criterion_main!(benches);
