//! Rows from PostgreSQL (`just pg-up`; under CI a missing database fails
//! these tests, never skips them): NDJSON and CSV that round-trip awkward
//! values, a hang-up that ends the query on the server within 1 s, and
//! refusals with a clear status (unknown table, bad format, a closed
//! database).

use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use tokio_postgres::NoTls;
use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, RowsConfig};

use crate::support::{Fixture, start};

/// The database URL; panics with what to do when there is none.
fn database_url() -> String {
    match weir_datasync::pg::database_url(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Ok(url) => url,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required under CI and none is configured (.ci/run runs `just pg-up`): {error}")
        }
        Err(error) => panic!("these tests need PostgreSQL (`just pg-up`): {error}"),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(url, NoTls).await {
        Ok(pair) => pair,
        Err(error) => panic!("these tests need PostgreSQL at {url} (`just pg-up`): {error}"),
    };
    tokio::spawn(connection);
    client
}

/// A fresh schema of this test process, with `tables` created by `sql`.
async fn schema(client: &tokio_postgres::Client, name: &str, sql: &str) -> String {
    let schema = format!("t_rows_{name}_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}; {sql}"
        ))
        .await
        .unwrap();
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_stream_as_ndjson_and_csv() {
    let url = database_url();
    let db = connect(&url).await;
    let schema = schema(
        &db,
        "formats",
        "CREATE TABLE items (id int, note text, price numeric); \
         INSERT INTO items VALUES (1, 'plain', 1.5), (2, E'back\\\\slash \"quoted\" \\nnewline', NULL), (3, 'ünïcode, comma', 0); \
         INSERT INTO items SELECT g, 'row ' || g, g FROM generate_series(4, 5000) g;",
    )
    .await;
    let fixture = Fixture::new();
    let mut config = DeliveryConfig::new(fixture.path());
    config.rows = Some(RowsConfig::new(url.clone(), [format!("{schema}.items")]));
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let ndjson = client.get(&format!("/rows/{schema}.items.ndjson"), &[]).await.unwrap();
    assert_eq!(ndjson.status, 200, "{:?}", ndjson.body);
    assert_eq!(ndjson.header("content-type"), "application/x-ndjson");
    let text = String::from_utf8(ndjson.body.to_vec()).unwrap();
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 5000);
    let odd = rows.iter().find(|r| r["id"] == 2).unwrap();
    assert_eq!(odd["note"], "back\\slash \"quoted\" \nnewline");
    assert!(odd["price"].is_null());
    assert_eq!(rows.iter().find(|r| r["id"] == 3).unwrap()["note"], "ünïcode, comma");
    let csv = client.get(&format!("/rows/{schema}.items.csv"), &[]).await.unwrap();
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body.to_vec()).unwrap();
    assert!(text.starts_with("id,note,price\n"), "{}", &text[..40]);
    assert!(text.contains("3,\"ünïcode, comma\",0\n"), "{}", &text[..200]);
    let metrics = server.metrics().snapshot();
    assert_eq!((metrics.completed, metrics.failed), (2, 0));
    server.shutdown().await;
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_ends_the_query_on_the_server_within_a_second() {
    let url = database_url();
    let db = connect(&url).await;
    let schema = schema(
        &db,
        "hangup",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS digest FROM generate_series(1, 1000000) g;",
    )
    .await;
    let fixture = Fixture::new();
    let mut config = DeliveryConfig::new(fixture.path());
    config.rows = Some(RowsConfig::new(url.clone(), [format!("{schema}.big")]));
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let request = http::Request::get(format!("/rows/{schema}.big.ndjson"))
        .body(Empty::new())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    assert!(body.frame().await.is_some());
    let running = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weir-http rows' AND query LIKE '%{schema}%big%' AND state <> 'idle'"
    );
    async fn count(db: &tokio_postgres::Client, running: &str) -> i64 {
        db.query_one(running, &[]).await.unwrap().get::<_, i64>(0)
    }
    // The client holds the body: the COPY waits on its full socket, alive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&db, &running).await,
        1,
        "the query runs while the client holds the body"
    );
    drop(body);
    drop(client);
    let hung_up = Instant::now();
    let mut ended = None;
    while hung_up.elapsed() < Duration::from_secs(5) {
        if count(&db, &running).await == 0 {
            ended = Some(hung_up.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended = ended.expect("the query still runs 5 s after the hang-up");
    assert!(
        ended < Duration::from_secs(1),
        "the query ended {ended:?} after the hang-up"
    );
    assert!(server.metrics().snapshot().sent_bytes < 64 << 20);
    server.shutdown().await;
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_row_requests_and_a_closed_database_get_a_clear_status() {
    let url = database_url();
    let fixture = Fixture::new();
    let mut config = DeliveryConfig::new(fixture.path());
    config.rows = Some(RowsConfig::new(url.clone(), ["public.no_such_table_weir"]));
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    for (path, code, says) in [
        ("/rows/public.no_such_table_weir.ndjson", 404, "does not exist"),
        ("/rows/pg_authid.csv", 404, "no such table"),
        ("/rows/public.no_such_table_weir.xml", 404, ".ndjson or"),
        ("/rows/..%2fetc.csv", 404, "no such row source"),
        ("/rows/", 404, "no such row source"),
    ] {
        let got = client.get(path, &[]).await.unwrap();
        let body = String::from_utf8_lossy(&got.body).into_owned();
        assert_eq!(got.status, code, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let post = client
        .fetch("POST", "/rows/public.no_such_table_weir.csv", &[])
        .await
        .unwrap();
    assert_eq!((post.status.as_u16(), post.header("allow")), (405, "GET"));
    server.shutdown().await;

    // Nothing listens on port 1: the database is down.
    let mut config = DeliveryConfig::new(fixture.path());
    config.rows = Some(RowsConfig::new("postgres://weir@127.0.0.1:1/weir", ["t"]));
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let got = client.get("/rows/t.csv", &[]).await.unwrap();
    let body = String::from_utf8_lossy(&got.body).into_owned();
    assert_eq!(got.status, 503, "{body}");
    assert!(body.contains("database is unavailable"), "{body}");
    assert_eq!(got.header("retry-after"), "5");
    // And the server keeps serving.
    assert_eq!(client.get("/files/small.bin", &[]).await.unwrap().status, 200);
    server.shutdown().await;
    let mut bad = DeliveryConfig::new(fixture.path());
    bad.rows = Some(RowsConfig::new("not a url", ["t"]));
    assert!(bad.validate().unwrap_err().to_string().contains("rows"));
}
