//! One side of a bench pair, run alone, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/per_chunk engine 4096`
//! against the same with `raw`, then `(engine - raw) / chunks` is the
//! engine's own cost per chunk. Sides: `raw` and `engine` (copying source
//! into `NullSink`, as `engine_vs_raw`), `file64k` and `file1k` (the same
//! bytes into `FileSink` in 64 KiB and 1 KiB chunks, as
//! `file_sink_small_chunks`), `readloop` and `filesource` (64 MiB from the
//! page cache into a reused buffer, or through `FileSource` into
//! `NullSink`, as `file_vs_read_loop`); `ab` alternates `raw` and `engine`
//! rounds and prints their medians.

use bytes::Bytes;
use weir::{FileSink, IngestOptions, NullSink, ingest};
use weir_benches::{copying_source, raw_loop};

const TOTAL: usize = 4 << 20;
const ROUNDS: usize = 10;

fn main() {
    let mut args = std::env::args().skip(1);
    let side = args.next().unwrap_or_else(|| "engine".to_owned());
    let chunk: usize = args.next().map_or(4096, |c| c.parse().expect("chunk size in bytes"));
    let data = Bytes::from((0..TOTAL).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let rt = weir_harness::runtime().expect("runtime");
    if side == "ab" {
        // Alternating rounds of both sides over 16 MiB: medians and their ratio.
        let data = Bytes::from((0..16 << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let (mut raw, mut engine) = (Vec::new(), Vec::new());
        for round in 0..400 {
            let r = || weir_benches::timed(&rt, || raw_loop(copying_source(&data, chunk), NullSink));
            let e = || {
                weir_benches::timed(&rt, || {
                    ingest(
                        copying_source(&data, chunk),
                        NullSink,
                        IngestOptions::builder().chunk_size(chunk).build(),
                    )
                })
            };
            if round % 2 == 0 {
                raw.push(r());
                engine.push(e());
            } else {
                engine.push(e());
                raw.push(r());
            }
        }
        raw.sort();
        engine.sort();
        let (r, e) = (raw[raw.len() / 2], engine[engine.len() / 2]);
        println!(
            "ab {chunk}: raw {r:?} engine {e:?} raw/engine {:.3} (min {:.3})",
            r.as_secs_f64() / e.as_secs_f64(),
            raw[0].as_secs_f64() / engine[0].as_secs_f64()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("out.bin");
    if side == "readloop" || side == "filesource" {
        // 64 MiB through the page cache, four times.
        let path = dir.path().join("in.bin");
        std::fs::write(&path, vec![7u8; 64 << 20]).expect("write the input");
        for _ in 0..4 {
            if side == "readloop" {
                let mut file = std::fs::File::open(&path).expect("open");
                let mut buffer = vec![0u8; chunk];
                while std::io::Read::read(&mut file, &mut buffer).expect("read") > 0 {}
            } else {
                let source = weir::source::FileSource::open(&path, chunk).expect("open");
                let options = IngestOptions::builder().chunk_size(chunk).build();
                rt.block_on(ingest(source, NullSink, options)).expect("ingest");
            }
        }
        println!("{side} {chunk}: {} chunks", 4 * (64 << 20) / chunk);
        return;
    }
    rt.block_on(async {
        for _ in 0..ROUNDS {
            let options = IngestOptions::builder().chunk_size(chunk).build();
            match side.as_str() {
                "raw" => drop(raw_loop(copying_source(&data, chunk), NullSink).await.expect("raw")),
                "engine" => drop(
                    ingest(copying_source(&data, chunk), NullSink, options)
                        .await
                        .expect("engine"),
                ),
                "file64k" | "file1k" => {
                    let chunk = if side == "file1k" { 1 << 10 } else { 64 << 10 };
                    let options = IngestOptions::builder().chunk_size(chunk).build();
                    let sink = FileSink::create(&target).expect("sink");
                    drop(ingest(copying_source(&data, chunk), sink, options).await.expect("file"));
                }
                other => panic!("unknown side {other}: raw, engine, file64k or file1k"),
            }
        }
    });
    println!("{side} {chunk}: {} chunks", ROUNDS * TOTAL.div_ceil(chunk));
}
