//! Each shipped transform through the engine against its raw loop over the
//! same hasher or encoder on the same chunks (in-memory source, `NullSink`).
//! In each group `raw` is the baseline; the report and the gate read
//! `raw time / engine time`.

use std::io::Write;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream;
use sha2::Digest;
use weir::{IngestOptions, NullSink, Transform, ingest};
use weir_transforms::{Blake3, Compress, Crc32c, Sha256};

const TOTAL: usize = 16 << 20;
const CHUNK: usize = 64 << 10;

fn runtime() -> tokio::runtime::Runtime {
    weir_harness::runtime().expect("runtime")
}

fn chunks() -> Vec<Bytes> {
    let data = Bytes::from(
        (0..TOTAL)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect::<Vec<_>>(),
    );
    (0..TOTAL / CHUNK)
        .map(|i| data.slice(i * CHUNK..(i + 1) * CHUNK))
        .collect()
}

fn bench_pair(c: &mut Criterion, group: &str, raw: impl Fn(&[Bytes]) -> usize, make: impl Fn() -> Box<dyn Transform>) {
    let rt = runtime();
    let input = chunks();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_with_input(BenchmarkId::new("raw", CHUNK), &input, |b, input| b.iter(|| raw(input)));
    g.bench_with_input(BenchmarkId::new("engine", CHUNK), &input, |b, input| {
        b.to_async(&rt).iter(|| async {
            let options = IngestOptions::builder().boxed_transform(make()).build();
            let source = stream::iter(input.iter().cloned().map(Ok));
            ingest(source, NullSink, options).await.unwrap()
        });
    });
    g.finish();
}

fn sha256(c: &mut Criterion) {
    bench_pair(
        c,
        "transform_sha256",
        |input| {
            let mut hasher = sha2::Sha256::new();
            for chunk in input {
                hasher.update(chunk);
            }
            hasher.finalize().len()
        },
        || Box::new(Sha256::new()),
    );
}

fn blake3(c: &mut Criterion) {
    bench_pair(
        c,
        "transform_blake3",
        |input| {
            let mut hasher = blake3::Hasher::new();
            for chunk in input {
                hasher.update(chunk);
            }
            hasher.finalize().as_bytes().len()
        },
        || Box::new(Blake3::new()),
    );
}

fn crc32c(c: &mut Criterion) {
    bench_pair(
        c,
        "transform_crc32c",
        |input| input.iter().fold(0u32, |crc, chunk| crc32c::crc32c_append(crc, chunk)) as usize,
        || Box::new(Crc32c::new()),
    );
}

fn zstd(c: &mut Criterion) {
    bench_pair(
        c,
        "transform_zstd3",
        |input| {
            let mut encoder = zstd::stream::Encoder::new(std::io::sink(), 3).unwrap();
            for chunk in input {
                encoder.write_all(chunk).unwrap();
            }
            encoder.finish().unwrap();
            input.len()
        },
        || Box::new(Compress::zstd(3)),
    );
}

criterion_group!(benches, sha256, blake3, crc32c, zstd);
criterion_main!(benches);
