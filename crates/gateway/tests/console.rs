//! The web console in a real headless browser (Debian's Chromium driven by
//! Playwright for Python): sign in, create a key, copy it, use it from the
//! openai SDK, see its usage, test an upstream, disable the key and see the
//! SDK get 401; CSRF and cookie flags checked; screenshots kept under the
//! target directory (`console-screenshots`).

use crate::support::{Gateway, config, fake, run_python, start};

const ADMIN: &str = "sk-admin-console-test";

const SCRIPT: &str = r##"
import os, time
import openai
from openai import OpenAI
from playwright.sync_api import sync_playwright

base, shots = os.environ["BASE"], os.environ["SHOTS"]
os.makedirs(shots, exist_ok=True)
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))

    page.goto(base + "/console")
    page.fill("#key", "not-the-key")
    page.click("button[type=submit]")
    assert "not the admin key" in page.content()
    page.fill("#key", os.environ["ADMIN"])
    page.click("button[type=submit]")
    page.wait_for_selector("#key-table")
    cookie = next(c for c in ctx.cookies() if c["name"] == "gw_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    assert os.environ["ADMIN"] not in cookie["value"]

    # Create a key with a quota; copy it once.
    page.fill("#new-key input[name=name]", "browser")
    page.fill("#new-key input[name=quota_tokens]", "1000")
    page.fill("#new-key input[name=models]", "chat, tgi")
    page.click("#new-key button[type=submit]")
    page.wait_for_selector("#created:not([hidden])")
    page.click("#copy")
    page.wait_for_selector("#copied:not([hidden])")
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("sk-gw-") and secret == page.input_value("#secret"), secret
    row = page.locator("#key-table tbody tr", has_text="browser")
    key_id = row.get_attribute("data-id")
    page.screenshot(path=f"{shots}/1-key-created.png", full_page=True)

    # Use it from the SDK; its usage appears.
    client = OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
    r = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "from the browser"}])
    assert r.choices[0].message.content == "Echo: from the browser", r
    for _ in range(40):
        page.click("nav button[data-tab=keys]")
        page.wait_for_timeout(250)
        usage = page.locator(f"tr[data-id='{key_id}'] td.usage").inner_text()
        if not usage.strip().startswith("0 /"):
            break
    else:
        raise SystemExit(f"usage never appeared: {usage}")
    assert "/ 1000" in usage, usage
    page.screenshot(path=f"{shots}/2-usage-bar.png", full_page=True)

    page.click("nav button[data-tab=usage]")
    page.wait_for_selector("#chart-models svg rect")
    page.wait_for_selector("#chart-days svg rect.hit")
    page.screenshot(path=f"{shots}/3-usage-charts.png", full_page=True)
    page.click("nav button[data-tab=requests]")
    page.wait_for_selector("#request-table tbody tr")
    # The key by its name, its id on hover.
    assert "browser" in page.inner_text("#request-table tbody")
    assert page.locator(f"#request-table td[title='{key_id}']").count() >= 1
    page.screenshot(path=f"{shots}/4-requests.png", full_page=True)

    page.click("nav button[data-tab=upstreams]")
    page.click("tr[data-name='models/chat'] button.test")
    page.locator("tr[data-name='models/chat'] .test-result", has_text="ok 200").wait_for()
    page.screenshot(path=f"{shots}/5-upstreams.png", full_page=True)

    # A change without the CSRF token is refused, even with the cookie.
    status = page.evaluate("fetch('/admin/keys', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({name: 'forged'})}).then(r => r.status)")
    assert status == 403, status

    # Disable it in the console: the SDK gets 401.
    page.click("nav button[data-tab=keys]")
    page.click(f"tr[data-id='{key_id}'] button.disable")
    page.wait_for_selector(f"tr[data-id='{key_id}'] .status.disabled")
    try:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "again"}])
        raise SystemExit("expected 401")
    except openai.AuthenticationError as e:
        assert "disabled" in e.message, e
    page.reload()
    page.wait_for_selector(f"tr[data-id='{key_id}']")
    assert secret not in page.content()
    page.screenshot(path=f"{shots}/6-disabled.png", full_page=True)

    page.click("#logout button")
    page.wait_for_selector("#key")
    # The wrong admin key (401) and the forged change (403) were meant to
    # fail; nothing else may.
    unexpected = [e for e in errors if "status of 401" not in e and "status of 403" not in e]
    assert unexpected == [], errors
    browser.close()
print("console-ok")
"##;

/// Debian's Chromium, when it and Playwright for Python are here (in CI
/// they must be: `.ci/run` installs them).
pub(crate) fn chromium() -> Option<&'static str> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let has_playwright = std::process::Command::new("python3")
        .args(["-c", "import playwright"])
        .output()
        .is_ok_and(|o| o.status.success());
    let found = chromium.filter(|_| has_playwright);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium and Playwright are required in CI (.ci/run installs them)"
        );
        eprintln!("SKIP: needs Debian's chromium and Playwright for Python");
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_headless_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let f = fake().await;
    let gw = start(
        &f.url(),
        &config(&format!("[admin]\nkey = \"{ADMIN}\"\n")),
        &[],
    );
    let shots = browse(SCRIPT, "console-ok", &gw, ADMIN, chromium).await;
    assert!(shots.join("6-disabled.png").exists());
    assert!(!gw.logs().contains("sk-gw-"), "a stored key in the log");
}

/// Runs a Playwright `script` against `gw` (signed in with `admin`) and
/// asserts it prints `ok`; returns where its screenshots are kept.
pub(crate) async fn browse(
    script: &'static str,
    ok: &str,
    gw: &Gateway,
    admin: &str,
    chromium: &str,
) -> std::path::PathBuf {
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let env = vec![
        ("BASE", gw.url.clone()),
        ("ADMIN", admin.to_owned()),
        ("CHROMIUM", chromium.to_owned()),
        ("SHOTS", shots.display().to_string()),
    ];
    run_python(script, env, ok, gw).await;
    shots
}
