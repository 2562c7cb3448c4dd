//! The console's usage view in a real headless browser: an agent session
//! through the official `openai` SDK on a Bedrock model with automatic
//! prompt caching, a guardrail and cache-affine routing over two fake
//! regions, a fallback and a named scoped key; then the console shows what
//! the records hold (cache reads, the money they saved, the intervention,
//! the fallback, affinity, key names), with charts whose labels never
//! overlap, at two widths, values on hover and costs in readable units.

use mock_upstreams::FakeGuardrail;

use crate::bedrock_depth::{candidates, region, too_small};
use crate::console::browse;
use crate::support::{config, start};

const ADMIN: &str = "sk-admin-usage-test";

const SCRIPT: &str = r##"
import json, os, re
from openai import OpenAI
from playwright.sync_api import sync_playwright

base, shots = os.environ["BASE"], os.environ["SHOTS"]
os.makedirs(shots, exist_ok=True)

def overlaps(page):
    # Every pair of texts of one chart, as drawn: none may intersect, and
    # none may leave its chart.
    return page.evaluate("""() => {
        const bad = [];
        for (const s of document.querySelectorAll('section#usage .chart svg')) {
            const box = s.getBoundingClientRect();
            const r = [...s.querySelectorAll('text')].map((t) => [t.textContent, t.getBoundingClientRect()]);
            for (const [t, b] of r) {
                if (b.left < box.left - 1 || b.right > box.right + 1) bad.push(`${s.parentNode.id}: '${t}' leaves the chart`);
            }
            for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {
                const [a, x] = [r[i][1], r[j][1]];
                if (a.left < x.right - 0.5 && x.left < a.right - 0.5 && a.top < x.bottom - 0.5 && x.top < a.bottom - 0.5)
                    bad.push(`${s.parentNode.id}: '${r[i][0]}' overlaps '${r[j][0]}'`);
            }
        }
        return bad;
    }""")

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(base + "/console")
    page.fill("#key", os.environ["ADMIN"])
    page.click("button[type=submit]")
    page.wait_for_selector("#key-table")
    page.fill("#new-key input[name=name]", "agent-team")
    page.click("#new-key button[type=submit]")
    page.wait_for_selector("#created:not([hidden])")
    secret = page.input_value("#secret")

    # An agent session: a long system prompt, each turn the whole
    # conversation; the gateway places the cache points.
    client = OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
    system = "You are a careful coding agent. " + " ".join(f"Rule {i}: keep file {i} tidy and tested." for i in range(300))
    msgs = [{"role": "system", "content": system}]
    cached = prompt = 0
    for turn in range(6):
        msgs.append({"role": "user", "content": f"Step {turn}: read the next file."})
        r = client.chat.completions.create(model="claude", messages=msgs)
        prompt += r.usage.prompt_tokens
        cached += r.usage.prompt_tokens_details.cached_tokens or 0
        msgs.append({"role": "assistant", "content": r.choices[0].message.content})
    assert cached > 0, (cached, prompt)
    # The guardrail stops one answer; a small model's context window
    # sends one request to its fallback.
    r = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "how are explosives made"}])
    assert r.choices[0].finish_reason == "content_filter", r
    raw = client.chat.completions.with_raw_response.create(model="small", messages=[{"role": "user", "content": "a long prompt"}])
    assert raw.headers["x-oai-model"] == "claude", raw.headers
    batch = OpenAI(base_url=base + "/v1", api_key="sk-batch-jobs", max_retries=0)
    batch.chat.completions.create(model="claude", messages=[{"role": "user", "content": "nightly report"}])

    page.click("nav button[data-tab=usage]")
    page.wait_for_selector("#model-usage tbody tr[data-name='claude']")
    usage = page.evaluate("fetch('/admin/usage').then(r => r.json())")["data"]
    rows = [u for u in usage if u["model"] == "claude"]
    # What the console reads is what the SDK was told.
    assert sum(u["cache_read_tokens"] for u in rows) == cached, (usage, cached)
    assert sum(u["interventions"] for u in usage) == 1, usage
    assert sum(u["fallbacks"] for u in usage) == 1, usage
    assert sum(u["affinity_hits"] for u in usage) >= 7, usage
    assert sum(u["saved_micro_usd"] for u in usage) > 0, usage
    assert {u["key_name"] for u in usage} >= {"agent-team", "batch-jobs"}, usage

    card = lambda id: page.inner_text(f"#{id} strong")
    assert card("card-interventions") == "1", card("card-interventions")
    assert card("card-fallbacks") == "1", card("card-fallbacks")
    assert card("card-affinity").endswith("%"), card("card-affinity")
    # Money reads as money: dollars and cents, never "US$0.0001".
    for id in ("card-cost", "card-saved"):
        assert re.fullmatch(r"\$\d+\.\d\d|\d+(\.\d+)?¢", card(id)), (id, card(id))
    assert card("card-saved") != "$0"
    text = page.inner_text("section#usage")
    assert "US$" not in text and not re.search(r"\$0\.0\d\d", text), text
    # Keys by name, not by id.
    names = page.eval_on_selector_all("#key-usage tbody tr", "rs => rs.map(r => r.dataset.name)")
    assert "agent-team" in names and "batch-jobs" in names, names
    assert "agent-team" in page.inner_text("#chart-keys")
    row = page.locator("#model-usage tbody tr[data-name='claude']")
    assert row.locator("td.interventions").inner_text() == "1"
    assert row.locator("td.fallbacks").inner_text() == "1"
    assert row.locator("td.saved").inner_text() not in ("$0", ""), row.inner_text()

    # Every day of the period has a column; labels are thinned to fit.
    assert page.locator("#chart-days rect.hit").count() == 30
    labels = page.locator("#chart-days text.label").count()
    assert 3 <= labels < 30, labels
    assert overlaps(page) == [], overlaps(page)
    # Values on hover.
    page.hover("#chart-models rect.hit >> nth=0")
    page.wait_for_selector(".tip:not([hidden])")
    assert "claude" in page.inner_text(".tip"), page.inner_text(".tip")
    page.screenshot(path=f"{shots}/7-usage-overview.png", full_page=True)

    # A narrow window: drawn again, still apart.
    page.set_viewport_size({"width": 640, "height": 900})
    page.wait_for_timeout(600)
    assert overlaps(page) == [], overlaps(page)
    assert page.locator("#chart-days text.label").count() < labels
    page.screenshot(path=f"{shots}/8-usage-narrow.png", full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("nav button[data-tab=requests]")
    page.wait_for_selector("#request-table tbody tr")
    body = page.inner_text("#request-table tbody")
    assert "small → claude" in body and "filtered" in body and "agent-team" in body, body
    page.screenshot(path=f"{shots}/9-requests-fallback.png", full_page=True)
    assert errors == [], errors
    browser.close()
print("usage-ok")
"##;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_cache_savings_guardrails_fallbacks_and_affinity() {
    let Some(chromium) = crate::console::chromium() else {
        return;
    };
    let (a, b) = (region().await, region().await);
    for f in [&a, &b] {
        f.add_guardrail("gr-1", "1", FakeGuardrail::blocking(&["explosives"]));
    }
    a.add("x.small-v1", too_small());
    let extra = format!(
        "[admin]\nkey = \"{ADMIN}\"\n\n[routing]\nstrategy = \"weighted\"\naffinity = \"prefix\"\n\n\
         [[prices]]\nmodel = \"claude\"\nprompt = 3.0\ncompletion = 15.0\ncached_prompt = 0.3\ncache_write_prompt = 3.75\n\n\
         [[auth.scoped_keys]]\nkey = \"sk-batch-jobs\"\nname = \"batch-jobs\"\n\n\
         [[models]]\nname = \"small\"\nbackend = \"bedrock\"\nmodel_id = \"x.small-v1\"\nendpoint_url = \"{}\"\nfallbacks = [\"claude\"]\n{}",
        a.url(),
        candidates(
            "claude",
            &[&a, &b],
            "prompt_cache = \"auto\"\nguardrail = { id = \"gr-1\", version = \"1\" }"
        ),
    );
    let gw = start("http://127.0.0.1:9", &config(&extra), &[]);
    let shots = browse(SCRIPT, "usage-ok", &gw, ADMIN, chromium).await;
    assert!(shots.join("8-usage-narrow.png").exists());
}
