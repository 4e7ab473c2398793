//! The mock API through the job's client: keys, tokens, pages, streams,
//! faults, `Retry-After`, expired cursors.

use std::collections::BTreeSet;
use std::time::Duration;

use http_body_util::BodyExt as _;
use weir_datasync::api::FaultRates;
use weir_datasync::client::{ApiClient, Endpoint, FetchError, Resume, RetryPolicy};
use weir_datasync::protocol::{self, Checkpoint};

use crate::support::{API_KEY, dataset, start_api};

async fn body(response: http::Response<hyper::body::Incoming>) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn a_wrong_api_key_is_refused_without_retrying() {
    let api = start_api(dataset(1, 100), FaultRates::none()).await;
    let client = ApiClient::new(&api.url(), "wrong", RetryPolicy::default()).unwrap();
    let error = client.open(Endpoint::Stream, &Resume::default(), 10).await.unwrap_err();
    assert!(matches!(error, FetchError::InvalidApiKey(_)), "{error}");
    assert_eq!(client.stats().snapshot().retries, 0);
    assert_eq!(api.counts().unauthorized, 1);
}

#[tokio::test]
async fn data_without_a_token_is_401() {
    let api = start_api(dataset(1, 100), FaultRates::none()).await;
    let tcp = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::get(protocol::STREAM_PATH)
        .header(http::header::HOST, api.addr().to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 401);
    let error: protocol::ErrorBody = serde_json::from_slice(&body(response).await).unwrap();
    assert_eq!(error.error, protocol::ERR_MISSING_TOKEN);
    drop(sender);
    driver.abort();
}

#[tokio::test]
async fn pages_cover_the_log_with_repeats_and_respect_the_maximum() {
    let data = dataset(2, 2_345);
    let api = start_api(data, FaultRates::none()).await;
    let client = ApiClient::new(&api.url(), API_KEY, RetryPolicy::default()).unwrap();
    let mut resume = Resume::default();
    let mut lines = Vec::new();
    loop {
        let page = client.page(&resume, 1_000_000).await.unwrap();
        assert!(page.data.len() as u64 <= 5_000 + 50, "the page maximum holds");
        lines.extend(page.data.iter().map(|raw| raw.get().to_owned()));
        if !page.has_more {
            assert!(page.next_cursor.is_none());
            break;
        }
        resume = Resume {
            cursor: page.next_cursor,
            watermark: page.watermark,
        };
    }
    let repeats = (0..data.events).filter(|&i| data.repeat_after(i).is_some()).count();
    assert_eq!(lines.len(), 2_345 + repeats);
    let distinct: BTreeSet<_> = lines.iter().collect();
    assert_eq!(distinct.len(), 2_345);
}

#[tokio::test]
async fn a_stream_ends_with_a_final_checkpoint() {
    let data = dataset(3, 1_000);
    let api = start_api(data, FaultRates::none()).await;
    let client = ApiClient::new(&api.url(), API_KEY, RetryPolicy::default()).unwrap();
    let (response, _) = client.open(Endpoint::Stream, &Resume::default(), 700).await.unwrap();
    let text = body(response).await;
    let checkpoints: Vec<Checkpoint> = text
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(protocol::CHECKPOINT_PREFIX))
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let last = checkpoints.last().unwrap();
    assert!(last.last);
    assert_eq!(last.remaining, 300);
    assert_eq!(checkpoints.iter().filter(|c| c.last).count(), 1);
    assert_eq!(checkpoints.len(), 4, "every 200 events, then the final one");
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let faults = FaultRates {
        rate_limited: 0.5,
        retry_after_s: 1,
        ..FaultRates::none()
    };
    let api = start_api(dataset(4, 100), faults).await;
    let client = ApiClient::new(&api.url(), API_KEY, RetryPolicy::default()).unwrap();
    for _ in 0..4 {
        client.open(Endpoint::Stream, &Resume::default(), 10).await.unwrap();
    }
    let stats = client.stats().snapshot();
    assert!(stats.rate_limited >= 1, "the seeded sequence has 429s: {stats:?}");
    assert_eq!(stats.rate_limited, api.counts().rate_limited);
    assert!(
        stats.largest_wait_ms >= 1_000,
        "a backoff shorter than Retry-After: {stats:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_budget_runs_out() {
    let faults = FaultRates {
        unavailable: 1.0,
        ..FaultRates::none()
    };
    let api = start_api(dataset(5, 100), faults).await;
    let policy = RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retries: 3,
        ..RetryPolicy::default()
    };
    let client = ApiClient::new(&api.url(), API_KEY, policy).unwrap();
    let error = client.open(Endpoint::Stream, &Resume::default(), 10).await.unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 503, .. }), "{error}");
    assert_eq!(client.stats().snapshot().retries, 3);
    assert_eq!(api.counts().unavailable, 4);
}

#[tokio::test]
async fn an_expired_cursor_resumes_from_the_watermark() {
    let data = dataset(6, 1_000);
    let faults = FaultRates {
        expired_cursor: 1.0,
        ..FaultRates::none()
    };
    let api = start_api(data, faults).await;
    let client = ApiClient::new(&api.url(), API_KEY, RetryPolicy::default()).unwrap();
    let resume = Resume {
        cursor: Some("0.0.0".to_owned()),
        watermark: Some(weir_datasync::dataset::format_ms(data.timestamp_ms(499))),
    };
    let (response, used) = client.open(Endpoint::Stream, &resume, 10).await.unwrap();
    assert_eq!(used.cursor, None);
    let text = body(response).await;
    let first = text.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(
        first,
        &data.event_line(499)[..],
        "since the watermark re-sends its event"
    );
    assert_eq!(client.stats().snapshot().cursor_expired, 1);
}

#[tokio::test]
async fn expired_tokens_are_refreshed() {
    let data = dataset(7, 100);
    let mut config = weir_datasync::api::ApiConfig::new(data, API_KEY);
    config.token_ttl = Duration::ZERO;
    let api = weir_datasync::api::MockApi::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = ApiClient::new(&api.url(), API_KEY, RetryPolicy::default()).unwrap();
    let error = client.open(Endpoint::Stream, &Resume::default(), 10).await.unwrap_err();
    // A token that is born expired can never be used: refreshed a few times, then refused.
    assert!(matches!(error, FetchError::Status { status: 401, .. }), "{error}");
    assert!(client.stats().snapshot().token_refreshes >= 2);
}
