//! Signing out of the console ends the session on every
//! replica (the old cookie is refused for reads and changes), and a
//! session lasts an hour unless a visit renews it.

use std::time::{Duration, Instant};

use crate::support::{config, fake, start};

const ADMIN: &str = "sk-admin-sessions";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in; returns the cookie (`name=value`).
async fn login(base: &str) -> String {
    let r = browser()
        .post(format!("{base}/console/login"))
        .form(&[("key", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("Max-Age=3600"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

async fn keys_status(base: &str, cookie: &str) -> u16 {
    browser()
        .get(format!("{base}/admin/keys"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_ends_the_session_on_every_replica() {
    let f = fake().await;
    let dir = std::env::temp_dir().join(format!("gw-sessions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("shared.db").display());
    let text = config(&format!("[admin]\nkey = \"{ADMIN}\"\n"));
    let a = start(&f.url(), &text, &[("RECORDS_URL", &db)]);
    let b = start(&f.url(), &text, &[("RECORDS_URL", &db)]);
    let cookie = login(&a.url).await;
    let other = login(&a.url).await;
    assert_eq!(keys_status(&a.url, &cookie).await, 200);
    assert_eq!(
        keys_status(&b.url, &cookie).await,
        200,
        "every replica accepts it"
    );
    // The page renews the session.
    let page = browser()
        .get(format!("{}/console", a.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(page.headers().contains_key("set-cookie"));
    // Sign out on replica a.
    let r = browser()
        .post(format!("{}/console/logout", a.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(keys_status(&a.url, &cookie).await, 401);
    // Replica b within a second; the other session ends too.
    let t = Instant::now();
    while keys_status(&b.url, &cookie).await != 401 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "replica b still accepts the session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(keys_status(&b.url, &other).await, 401);
    // A change with the old cookie and its page's CSRF token is refused.
    let r = browser()
        .post(format!("{}/admin/keys", b.url))
        .header("cookie", &cookie)
        .json(&serde_json::json!({"name": "after-logout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A new login works.
    let again = login(&b.url).await;
    assert_eq!(keys_status(&a.url, &again).await, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
