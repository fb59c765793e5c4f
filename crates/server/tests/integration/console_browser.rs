//! The review console end to end in a real browser: Debian's `chromium`, driven through
//! `chromedriver` (both installed by `scripts/setup`) with fantoccini.
//!
//! One person sets up their account on the setup page, signs in with password and TOTP,
//! claims from a queue, finds the media blurred and greyscale (asserted on the computed
//! style), reveals it (the reveal is recorded, and ended when the page goes), confirms with a
//! classification per item; a second person with the `senior` role approves; the webhook
//! receiver gets the events. An auditor sees no media; a media URL from another session and a
//! call without the CSRF token are refused. Screenshots of the main views are written to
//! `target/tmp/console-screenshots/`.
//!
//! Without chromedriver the test says so and passes locally; under `CI=true` it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::console::{
    base32_decode, enrol, eventually, image_case, start, ConsoleServer, PASSWORD,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(env: &str, paths: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// chromedriver on a free port, or `None` (with a message; a failure under `CI=true`).
async fn driver() -> Option<(Driver, PathBuf)> {
    let chromedriver = find("SAFEGUARD_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let chromium = find(
        "SAFEGUARD_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) else {
        let msg = "chromium and chromedriver not found (scripts/setup installs them; or set \
                   SAFEGUARD_CHROMIUM and SAFEGUARD_CHROMEDRIVER)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED console_browser: {msg}");
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
    let url = format!("http://127.0.0.1:{port}");
    let d = Driver { child, url };
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/status", d.url)).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some((d, chromium))
}

async fn browser(d: &Driver, chromium: &std::path::Path) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--force-device-scale-factor=1"],
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    // chromedriver is on loopback HTTP: the plain connector, no TLS.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a browser session")
}

fn shots_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = c.source().await.unwrap_or_default();
            panic!("waiting for {css} on {url}: {e}\n{page}")
        }
    }
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

async fn js_async(c: &Client, script: &str) -> serde_json::Value {
    c.execute_async(script, vec![]).await.unwrap()
}

async fn sign_in(c: &Client, base: &str, name: &str, code: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    wait_for(c, "form#login").await;
    fill(c, "input[name=username]", name).await;
    fill(c, "input[name=password]", PASSWORD).await;
    fill(c, "input[name=totp]", code).await;
    click(c, "#login-submit").await;
    wait_for(c, "nav#nav").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_in_a_real_browser() {
    let Some((d, chromium)) = driver().await else {
        return;
    };
    let cs: ConsoleServer = start(common::console::config()).await;
    // The browser reaches the server as localhost, a secure context for Secure cookies.
    let base = cs.base.replace("127.0.0.1", "localhost");
    let (url, got) = common::console::receiver().await;
    let r =
        cs.s.admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["case.updated"]})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text());
    let (case, objects) = image_case(&cs.s, "acct-browser").await;
    let mut senior = enrol(&cs, "sid", "senior").await;
    let mut auditor = enrol(&cs, "aldo", "auditor").await;

    let c = browser(&d, &chromium).await;
    let result = async {
        // 1. Setup in the browser: the secret is read off the page, as a person would type it
        //    into their authenticator app.
        let raw = common::console::setup_token(&cs.s, "rae", "reviewer");
        c.goto(&format!("{base}/console/setup?token={raw}")).await.unwrap();
        let secret_text = wait_for(&c, "#totp-secret").await.text().await.unwrap();
        let secret = base32_decode(secret_text.trim());
        shot(&c, "01-setup").await;
        fill(&c, "input[name=password]", PASSWORD).await;
        fill(&c, "input[name=password2]", PASSWORD).await;
        let code = safeguard_console::totp::code_at(&secret, common::console::now_secs());
        fill(&c, "input[name=totp]", &code).await;
        click(&c, "#setup-submit").await;
        wait_for(&c, "form#login").await;
        shot(&c, "02-login").await;

        // 2. Sign in with password and TOTP; the queue page.
        // The setup used the current step; the next one is never out of the server's window.
        let next = safeguard_console::totp::code_at(&secret, common::console::now_secs() + 30);
        sign_in(&c, &base, "rae", &next).await;
        wait_for(&c, "table#queues").await;
        shot(&c, "03-queues").await;

        // 3. Claim from the queue.
        click(&c, "tr[data-queue=csam] button.claim-next").await;
        wait_for(&c, "figure.media").await;
        assert!(c.current_url().await.unwrap().path().ends_with(&format!("/console/cases/{case}")));

        // 4. Blurred and greyscale before the click, by the computed style.
        let filters = js(&c, "return Array.from(document.querySelectorAll('.media-img')).map(e => getComputedStyle(e).filter);").await;
        let filters: Vec<String> = serde_json::from_value(filters).unwrap();
        assert_eq!(filters.len(), 2, "{filters:?}");
        for f in &filters {
            assert!(f.contains("grayscale(1)"), "{f}");
            let blur: f64 = f
                .split("blur(")
                .nth(1)
                .and_then(|r| r.split("px").next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no blur in {f}"));
            assert!(blur >= 10.0, "{f}");
        }
        // The images really loaded (from the signed, session-bound route).
        let loaded = js(&c, "return Array.from(document.querySelectorAll('.media-img')).every(e => e.complete && e.naturalWidth > 0);").await;
        assert_eq!(loaded, json!(true));
        js(&c, "document.querySelector('#media').scrollIntoView(); return null;").await;
        shot(&c, "04-case-blurred").await;
        let src = js(&c, "return document.querySelector('.media-img').getAttribute('src');").await;
        let src = src.as_str().unwrap().to_string();
        assert!(src.starts_with("/console/media/"), "{src}");

        // 5. Reveal one item: recorded, unblurred, still greyscale.
        click(&c, &format!("figure.media[data-object='{}'] button.reveal", objects[0])).await;
        eventually(
            || cs.s.store.reveals_of_object(&objects[0]).unwrap().len() == 1,
            "the reveal record",
        )
        .await;
        // The page unblurs once the server has answered, which may come a moment after the
        // record is visible in the store: the style is read until it changes (at most 10 s).
        let filter_of = |object: &str| format!("return getComputedStyle(document.querySelector(\"figure.media[data-object='{object}'] .media-img\")).filter;");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let f = loop {
            let f = js(&c, &filter_of(&objects[0])).await.as_str().unwrap().to_string();
            if !f.contains("blur(") || std::time::Instant::now() > deadline {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!f.contains("blur("), "revealed: {f}");
        assert!(f.contains("grayscale(1)"), "still greyscale: {f}");
        let other = js(&c, &filter_of(&objects[1])).await;
        assert!(other.as_str().unwrap().contains("blur("), "only one item at a time");
        shot(&c, "05-case-revealed").await;

        // 6. A call without the CSRF token is refused, from the page itself.
        let status = js_async(&c, &format!(
            "const done = arguments[0]; fetch('/console/reveals', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{case_id: {case}, object_id: '{}'}})}}).then(r => done(r.status));",
            objects[1]
        )).await;
        assert_eq!(status, json!(403));

        // 7. Confirm with a classification per item.
        for o in &objects {
            c.find(Locator::Css(&format!("select[name='class:{o}']")))
                .await
                .unwrap()
                .select_by_value("A1")
                .await
                .unwrap();
        }
        c.find(Locator::Css("select[name=decision]"))
            .await
            .unwrap()
            .select_by_value("confirmed")
            .await
            .unwrap();
        fill(&c, "textarea[name=note]", "matches the hotline's hashes").await;
        click(&c, "#decide-submit").await;
        eventually(
            || cs.s.store.case(case).unwrap().unwrap().state == "decided",
            "the case decided",
        )
        .await;
        // Leaving the page ended the reveal.
        eventually(
            || {
                cs.s.store.reveals_of_object(&objects[0]).unwrap()[0]
                    .ended_at
                    .is_some()
            },
            "the reveal ended when the item left the screen",
        )
        .await;
        wait_for(&c, "#history").await;
        js(&c, "document.querySelector('#decision').scrollIntoView(); return null;").await;
        shot(&c, "06-decided").await;
        // The reviewer cannot approve: no approval form on their own decision.
        assert!(c.find(Locator::Css("form#approve")).await.is_err());

        // 8. A second person, a senior, approves.
        c.delete_all_cookies().await.unwrap();
        sign_in(&c, &base, "sid", &senior.next_code()).await;
        c.goto(&format!("{base}/console/approvals")).await.unwrap();
        wait_for(&c, "table#approvals").await;
        shot(&c, "07-approvals").await;
        // The reviewer's media URL in the senior's session: refused.
        let status = js_async(&c, &format!(
            "const done = arguments[0]; fetch('{src}').then(r => done(r.status));"
        )).await;
        assert_eq!(status, json!(403), "a media URL from another session");
        click(&c, &format!("form.approve[action='/console/cases/{case}/approve'] button.approve")).await;
        eventually(
            || {
                cs.s.store
                    .case_history(case)
                    .unwrap()
                    .iter()
                    .any(|h| h.action == "approved" && h.actor == "console:sid")
            },
            "the approval",
        )
        .await;
        assert_eq!(cs.s.store.case(case).unwrap().unwrap().state, "decided");
        eventually(
            || {
                got.lock().unwrap().iter().any(|b| {
                    let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                    v["type"] == "case.updated" && v["data"]["change"] == "approved"
                })
            },
            "the webhook receiver got the approval",
        )
        .await;

        // 9. An auditor sees the case but no media.
        c.delete_all_cookies().await.unwrap();
        sign_in(&c, &base, "aldo", &auditor.next_code()).await;
        c.goto(&format!("{base}/console/cases/{case}")).await.unwrap();
        wait_for(&c, ".media-hidden").await;
        let imgs = js(&c, "return document.querySelectorAll('img, video').length;").await;
        assert_eq!(imgs, json!(0), "no media element for an auditor");
        shot(&c, "08-auditor-case").await;
    }
    .await;
    let _ = c.close().await;
    result
}
