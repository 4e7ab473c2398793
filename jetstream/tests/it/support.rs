//! Shared setup: a connection to the `just nats-up` cluster (failing loudly
//! when there is none), streams and consumers unique to a test.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{Config, Stream};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;

/// A JetStream context on the cluster `just nats-up` started; panics with
/// what to do when there is none.
pub async fn jetstream() -> Context {
    let servers = match weir_jetstream::nats_servers() {
        Ok(servers) => servers,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("NATS is required under CI and none is configured (.ci/run runs `just nats-up`): {error}")
        }
        Err(error) => panic!("these tests need NATS JetStream: {error}"),
    };
    let client = match async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(servers.as_slice())
        .await
    {
        Ok(client) => client,
        Err(error) => panic!("NATS at {servers:?} cannot be reached (run `just nats-up`): {error}"),
    };
    jetstream::new(client)
}

/// A name unique to this test process.
pub fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// A fresh stream `name` capturing `name.>` (replicated on every node of
/// the cluster, up to 3).
pub async fn fresh_stream(js: &Context, name: &str) -> Stream {
    let _ = js.delete_stream(name).await;
    let replicas = weir_jetstream::env_file_value("WEIR_NATS_NODES")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 3);
    js.create_stream(Config {
        name: name.to_owned(),
        subjects: vec![format!("{name}.>")],
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("create the test stream")
}

/// A durable pull consumer on `stream` for `filter`, explicit acks.
pub async fn consumer(stream: &Stream, name: &str, filter: &str, ack_wait: Duration) -> PullConsumer {
    let mut consumer: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            ..Default::default()
        })
        .await
        .expect("create the test consumer");
    weir_jetstream::wait_until_ready(&mut consumer, Duration::from_secs(10))
        .await
        .expect("the consumer's leader");
    consumer
}

/// Publishes `messages` to `subject`, each acknowledged by the stream.
pub async fn publish(js: &Context, subject: &str, messages: impl IntoIterator<Item = Bytes>) {
    for payload in messages {
        js.publish(subject.to_owned(), payload)
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }
}

/// `count` payloads of distinct bytes, `size` each.
pub fn payloads(count: usize, size: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from((0..size).map(|j| ((i * 31 + j) % 251) as u8).collect::<Vec<_>>()))
        .collect()
}

/// What the consumer still holds: (awaiting ack, not yet delivered).
pub async fn outstanding(consumer: &mut PullConsumer) -> (usize, u64) {
    let info = consumer.info().await.expect("consumer info");
    (info.num_ack_pending, info.num_pending)
}
