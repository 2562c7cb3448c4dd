//! A client that leaves mid-stream stops the model: the upstream connection
//! is closed at once (a local model's generation must not outlive its client).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_upstreams::{ContainerDialect, Endpoint, Reply};
use serde_json::json;

use crate::support::{KEY, client, config, fake, start};

#[tokio::test(flavor = "multi_thread")]
async fn upstream_closed_within_100ms_of_client_leaving_100_of_100() {
    let f = fake().await;
    f.add(
        "endless",
        Endpoint {
            reply: Reply::Endless,
            token_delay: Duration::from_millis(5),
            ..Endpoint::echo(ContainerDialect::OpenAi)
        },
    );
    let gw = start(&f.url(), &config("[[models]]\nname = \"endless\"\n"), &[]);
    let c = client();
    const TRIALS: usize = 100;
    let mut lags = Vec::with_capacity(TRIALS);
    for trial in 0..TRIALS {
        let resp = c
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(KEY)
            .json(&json!({"model": "endless", "stream": true, "messages": [{"role": "user", "content": "go"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut s = resp.bytes_stream();
        // Read a few chunks, then leave.
        for _ in 0..3 {
            s.next().await.unwrap().unwrap();
        }
        drop(s);
        let left = Instant::now();
        let deadline = left + Duration::from_secs(2);
        let ended = loop {
            let rec = f.streams().into_iter().nth(trial).unwrap();
            if let Some(end) = rec.ended {
                assert!(
                    rec.client_closed,
                    "trial {trial}: the upstream saw a close, not an end"
                );
                break end;
            }
            assert!(
                Instant::now() < deadline,
                "trial {trial}: upstream never saw the close"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        lags.push(ended.saturating_duration_since(left));
    }
    lags.sort();
    let worst = *lags.last().unwrap();
    assert!(
        worst <= Duration::from_millis(100),
        "worst close lag {worst:?}; median {:?}",
        lags[TRIALS / 2]
    );
    eprintln!(
        "close lag: median {:?}, worst {:?}",
        lags[TRIALS / 2],
        worst
    );
}
