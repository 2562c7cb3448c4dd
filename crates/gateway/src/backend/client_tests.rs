//! The upstream client against a bare TCP server.

use super::*;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};

fn client() -> Client {
    Client::new(Settings {
        connect_timeout: Duration::from_secs(2),
        max_idle_per_host: 4,
    })
    .unwrap()
}

/// A one-connection server: reads one request (head and a chunked or
/// sized body), hands it back, and answers `reply` (or nothing).
fn server(reply: Option<&'static str>) -> (Uri, std::thread::JoinHandle<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri: Uri = format!("http://{}/v1/x", l.local_addr().unwrap())
        .parse()
        .unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let lower = head.to_ascii_lowercase();
        if let Some(n) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
        {
            let mut b = vec![0; n.trim().parse().unwrap()];
            r.read_exact(&mut b).unwrap();
            head.push_str(&String::from_utf8(b).unwrap());
        } else if lower.contains("transfer-encoding: chunked") {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut b = vec![0; n + 2];
                r.read_exact(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                head.push_str(std::str::from_utf8(&b[..n]).unwrap());
            }
        }
        match reply {
            Some(body) => {
                let mut s = s;
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-up: 1\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            None => std::thread::sleep(Duration::from_millis(800)),
        }
        head
    });
    (uri, t)
}

#[tokio::test]
async fn a_request_goes_as_built_and_its_answer_comes_back() {
    let (uri, seen) = server(Some("{\"ok\":true}"));
    let mut replace = HeaderMap::new();
    replace.insert("x-a", HeaderValue::from_static("client"));
    let resp = client()
        .request(Method::POST, uri)
        .header("x-a", "default")
        .header("x-b", "kept")
        .headers(replace)
        .bearer_auth("sk-up")
        .json(&serde_json::json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-up"], "1");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"{\"ok\":true}");
    let head = seen.join().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("post /v1/x http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-a: client\r\n"), "{head}");
    assert!(!head.contains("x-a: default"), "{head}");
    assert!(head.contains("\r\nx-b: kept\r\n"), "{head}");
    assert!(
        head.contains("\r\nauthorization: bearer sk-up\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
    assert!(head.ends_with("{\"model\":\"m\"}"), "{head}");
}

#[tokio::test]
async fn a_streamed_body_goes_chunked_and_an_answer_streams_back() {
    let (uri, seen) = server(Some("pieces"));
    let parts = futures_util::stream::iter(["one ", "two"].map(|p| Ok(Bytes::from(p))));
    let resp = client()
        .request(Method::POST, uri)
        .body(Body::Stream(parts.boxed()))
        .send()
        .await
        .unwrap();
    let got: Vec<Bytes> = resp
        .bytes_stream()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(got.concat(), b"pieces");
    let head = seen.join().unwrap();
    assert!(head.ends_with("one two"), "{head}");
}

#[tokio::test]
async fn failures_say_what_they_are() {
    // Nobody listening: a connect failure.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let e = client().request(Method::GET, uri).send().await.unwrap_err();
    assert!(e.is_connect() && !e.is_timeout(), "{e:?}");
    assert!(
        crate::error::error_chain(&e).contains("onnect"),
        "{}",
        crate::error::error_chain(&e)
    );
    // A server that never answers: the deadline.
    let (uri, _seen) = server(None);
    let e = client()
        .request(Method::GET, uri)
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
    // A header that cannot be sent.
    let e = client()
        .request(Method::GET, "http://127.0.0.1:1/".parse().unwrap())
        .header("x-bad", "line\nbreak")
        .send()
        .await
        .unwrap_err();
    assert!(!e.is_connect(), "{e:?}");
}
