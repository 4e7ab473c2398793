//! Objects from an `object_store` store (the local-filesystem backend)
//! under `/objects/`: whole, ranged, multi-ranged, conditional, missing.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader};

use crate::support::{Fixture, content, parse_multipart, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_served_with_ranges_and_validators() {
    let fixture = Fixture::new();
    let bucket = tempfile::tempdir().unwrap();
    let bytes = content(300_001);
    std::fs::create_dir(bucket.path().join("dir")).unwrap();
    std::fs::write(bucket.path().join("dir/obj.bin"), &bytes).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(bucket.path()).unwrap());
    let config = DeliveryConfig::new(fixture.path()).with_objects(store);
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();

    let whole = client.get("/objects/dir/obj.bin", &[]).await.unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.to_vec(), bytes);
    let etag = whole.header("etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");

    let ranged = client
        .get("/objects/dir/obj.bin", &[("range", "bytes=100000-299999")])
        .await
        .unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("content-range"), "bytes 100000-299999/300001");
    assert_eq!(ranged.body.to_vec(), bytes[100_000..300_000]);

    let multi = client
        .get("/objects/dir/obj.bin", &[("range", "bytes=0-9,-10")])
        .await
        .unwrap();
    let parts = parse_multipart(multi.header("content-type"), &multi.body).unwrap();
    assert_eq!(parts[0].1, bytes[..10]);
    assert_eq!(parts[1].1, bytes[300_001 - 10..]);

    let cached = client
        .get("/objects/dir/obj.bin", &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!(cached.status, 304);
    let resumed = client
        .get("/objects/dir/obj.bin", &[("if-range", &etag), ("range", "bytes=-1")])
        .await
        .unwrap();
    assert_eq!(
        (resumed.status.as_u16(), resumed.body.to_vec()),
        (206, bytes[300_000..].to_vec())
    );
    let unsatisfiable = client
        .get("/objects/dir/obj.bin", &[("range", "bytes=300001-")])
        .await
        .unwrap();
    assert_eq!(unsatisfiable.status, 416);
    for missing in [
        "/objects/dir/none",
        "/objects/../x",
        "/objects/dir%2fobj.bin",
        "/objects/",
    ] {
        assert_eq!(client.get(missing, &[]).await.unwrap().status, 404, "{missing}");
    }
    let snapshot = server.metrics().snapshot();
    assert_eq!((snapshot.completed, snapshot.failed), (4, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_the_object_route_is_not_found() {
    let fixture = Fixture::new();
    let server = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    assert_eq!(client.get("/objects/anything", &[]).await.unwrap().status, 404);
    server.shutdown().await;
}
