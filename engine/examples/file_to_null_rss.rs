//! Peak RSS while moving a file into `NullSink`: the flat-memory figure of
//! the engine on its own. Writes a test file of the given size (default
//! 1 GiB, seeded; reused when present), then ingests it with 64 KiB chunks
//! while `weir-harness`'s sampler reads RSS every 10 ms.
//!
//! `cargo run --release -p weir --example file_to_null_rss [MiB] [PATH]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir::source::FileSource;
use weir::{IngestOptions, NullSink, ingest};
use weir_harness::{RssSampler, write_test_file};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map_or(Ok(1024), |s| s.parse())?;
    let path = args.next().map_or_else(
        || std::env::temp_dir().join(format!("weir-rss-{mib}MiB.bin")),
        PathBuf::from,
    );
    let len = mib << 20;
    write_test_file(&path, len, 42)?;
    let chunk = 64 * 1024;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sampler = RssSampler::start(Duration::from_millis(10));
    let started = Instant::now();
    let report = runtime.block_on(async {
        let source = FileSource::open(&path, chunk)?;
        let options = IngestOptions::builder().chunk_size(chunk).build();
        ingest(source, NullSink, options)
            .await
            .map_err(Box::<dyn std::error::Error>::from)
    })?;
    let elapsed = started.elapsed();
    let rss = sampler.stop();
    let mib_f = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{} MiB file -> NullSink, 64 KiB chunks: {:.0} MiB/s; RSS baseline {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB ({} samples)",
        mib,
        mib_f(report.bytes_written) / elapsed.as_secs_f64(),
        mib_f(rss.baseline_bytes),
        mib_f(rss.peak_bytes),
        mib_f(rss.growth_bytes()),
        rss.samples.len()
    );
    if report.bytes_written != len {
        return Err(format!("moved {} of {len} bytes", report.bytes_written).into());
    }
    Ok(())
}
