//! The validation matrix: every row clean, and the evidence of a few rows
//! read closely (the TCP peer sees the close, the file is closed, the
//! missing directory is not created, no runtime is an error).

use weir_harness::{load_results, open_fds, write_test_file};
use weir_validation::{Config, SinkKind, SourceKind, ValidationMatrix, ValidationParams, plan, run, run_row};

const LEN: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_matrix_is_clean() {
    let out = tempfile::tempdir().unwrap();
    let params = ValidationParams {
        input_len: LEN,
        ..ValidationParams::default()
    };
    let results = run(&params, out.path()).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(load_results(out.path()).unwrap().len(), 1);
    let matrix = &results[0];
    assert!(matrix.is_ok(), "{}", matrix.outcome);
    weir_harness::figures::conforms(matrix).unwrap();
    let figures = matrix.figures::<ValidationMatrix>().unwrap();
    assert_eq!(figures.rows.len(), plan().len());
    for row in &figures.rows {
        assert!(row.clean, "{row:?}");
    }
    assert_eq!(figures.clean_rows, plan().len() as u64);
    assert_eq!(figures.invalid_rows_errored, figures.invalid_rows);
    assert_eq!(figures.control_rows_committed, figures.control_rows);
    assert_eq!((figures.leaked_fds, figures.files_left), (0, 0));
    let table = &figures.table_md;
    assert_eq!(
        table.lines().count(),
        plan().len() + 2,
        "a header, a rule and one line per row"
    );
    assert!(!table.contains("| NO"), "{table}");
    assert!(!table.contains("/tmp/"), "scratch paths are named <scratch>: {table}");
}

async fn clean_row(config: Config, source: SourceKind, sink: SinkKind) -> weir_validation::Row {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    write_test_file(&input, LEN, 3).unwrap();
    let fds = open_fds();
    let row = run_row(config, source, sink, &dir.path().join("row"), &input, LEN)
        .await
        .unwrap();
    assert_eq!(open_fds(), fds, "{row:?}");
    assert!(row.clean, "{row:?}");
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_close_the_connection_and_abort_the_file_sink() {
    let row = clean_row(Config::ChunkSizeZero, SourceKind::Tcp, SinkKind::File).await;
    assert_eq!(row.outcome, "invalid_options");
    assert_eq!(
        row.error.as_deref(),
        Some("ingestion failed: invalid options: chunk size must be at least 1 byte, got 0")
    );
    assert!(row.source_evidence.starts_with("peer saw"), "{}", row.source_evidence);
    assert_eq!(row.sink_calls.aborts, 1);
    assert_eq!(row.sink_calls.writes, 0);
    assert!(row.files_left.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_runtime_is_an_error_and_still_aborts() {
    for source in [SourceKind::File, SourceKind::Tcp, SourceKind::Synthetic] {
        let row = clean_row(Config::NoRuntime, source, SinkKind::File).await;
        assert_eq!(row.outcome, "invalid_options");
        assert!(
            row.error
                .as_deref()
                .unwrap()
                .contains("must run inside a Tokio runtime"),
            "{row:?}"
        );
        assert_eq!(row.sink_calls.aborts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_cannot_be_created_closes_the_open_source() {
    let row = clean_row(Config::FileSinkMissingDir, SourceKind::File, SinkKind::File).await;
    assert_eq!(row.outcome, "sink");
    assert!(!row.sink_created);
    assert_eq!(row.source_evidence, "0 descriptor(s) open on the input file");
    let row = clean_row(Config::FileSinkNoFileName, SourceKind::Tcp, SinkKind::File).await;
    assert!(row.error.as_deref().unwrap().contains("has no file name"), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_helper_refusing_a_zero_chunk_size_closes_the_connection() {
    let row = clean_row(Config::SourceChunkZero, SourceKind::Tcp, SinkKind::Memory).await;
    assert_eq!(row.outcome, "source");
    assert!(!row.sink_created, "the sink is never created");
    assert!(row.source_closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_rows_commit_every_byte() {
    for source in [SourceKind::File, SourceKind::Tcp, SourceKind::Synthetic] {
        let row = clean_row(Config::Valid, source, SinkKind::File).await;
        assert_eq!(row.outcome, "committed");
        assert_eq!(row.sink_calls.finalized_ok, 1);
        assert_eq!(row.sink_calls.aborts, 0);
    }
}
