//! The review console over a real socket, without a browser: sign-in (password and TOTP),
//! session fixation, expiry, lockout and throttling, CSRF, the security headers, signed
//! session-bound media, reveals, claims and leases, decisions and the two-person rule.
//! The same flow in a real browser is in `console_browser.rs`.

use std::time::Duration;

use crate::common;
use crate::common::console::{
    attr_of, base32_decode, complete_setup, enrol, eventually, image_case, login,
    setup_token_until, start, text_of_id, try_login, Client, ConsoleServer, Page, PASSWORD,
};
use reqwest::StatusCode;
use serde_json::json;

async fn server() -> ConsoleServer {
    start(common::console::config()).await
}

/// The CSRF token on a page.
fn csrf_of(body: &str) -> String {
    attr_of(body, "name=\"csrf-token\"", "content").expect("csrf meta")
}

/// Claims the next case of `queue`; returns the case page it redirects to.
async fn claim(c: &mut Client, queue: &str) -> (i64, String) {
    let csrf = c.csrf().await;
    let r = c
        .post_form(
            &format!("/console/queues/{queue}/claim"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.location().unwrap().to_string();
    let id: i64 = loc
        .strip_prefix("/console/cases/")
        .unwrap_or_else(|| panic!("claim went to {loc}"))
        .parse()
        .unwrap();
    let page = c.get(&loc).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (id, page.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_response_carries_the_security_headers() {
    let cs = server().await;
    let (case, _) = image_case(&cs.s, "acct-headers").await;
    let mut admin = enrol(&cs, "ada", "admin,reviewer").await;
    let mut c = login(&cs, &mut admin).await;
    let mut anon = Client::new(&cs.base);
    let mut pages = Vec::new();
    pages.push(("login", anon.get("/console/login").await));
    pages.push((
        "setup (bad token)",
        anon.get("/console/setup?token=nope").await,
    ));
    pages.push(("home, signed out", anon.get("/console").await));
    for path in [
        "/console".to_string(),
        format!("/console/cases/{case}"),
        "/console/approvals".into(),
        "/console/team".into(),
        "/console/users".into(),
        "/console/settings".into(),
        "/console/cases/999999".into(),
    ] {
        let p = c.get(&path).await;
        pages.push(("signed in", p));
    }
    for (what, p) in &pages {
        let h = &p.headers;
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no CSP"))
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        // No inline script anywhere: every <script> has a src.
        for (i, _) in p.body.match_indices("<script") {
            let tag_end = i + p.body[i..].find('>').unwrap();
            assert!(p.body[i..tag_end].contains("src="), "{what}: inline script");
        }
        assert!(
            !p.body.contains(" style=\""),
            "{what}: inline style attribute"
        );
    }
}

/// A setup link works until it expires, and once: afterwards, or after its time, the page
/// is 404 `setup_link_invalid` and the form sets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_link_works_once_and_not_after_it_expires() {
    let cs = server().await;
    let now = safeguard_engine::now_ms();
    let invalid = |p: &Page| {
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.body);
        assert!(
            p.body.contains("this setup link is not valid"),
            "{}",
            p.body
        );
        assert!(text_of_id(&p.body, "totp-secret").is_none());
    };
    let mut anon = Client::new(&cs.base);
    let expired = setup_token_until(&cs.s, "late", "reviewer", now - 1);
    invalid(&anon.get(&format!("/console/setup?token={expired}")).await);
    let current = setup_token_until(&cs.s, "prompt", "reviewer", now + 60_000);
    let p = anon.get(&format!("/console/setup?token={current}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    // What this page offers stays a valid secret for this link (it is sealed to the person
    // and the token, not to the page).
    let secret = base32_decode(&text_of_id(&p.body, "totp-secret").unwrap());
    let sealed = attr_of(&p.body, "name=\"secret\"", "value").unwrap();
    complete_setup(&cs, &current, "prompt").await;
    invalid(&anon.get(&format!("/console/setup?token={current}")).await);
    let before = cs.s.store.user_by_name("prompt").unwrap().unwrap();
    let code = safeguard_console::totp::code_at(&secret, common::console::now_secs());
    let r = anon
        .post_form(
            "/console/setup",
            &[
                ("token", &current),
                ("secret", &sealed),
                ("password", "another long password"),
                ("password2", "another long password"),
                ("totp", &code),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let after = cs.s.store.user_by_name("prompt").unwrap().unwrap();
    assert_eq!(after.password_hash, before.password_hash);
    assert_eq!(after.totp_secret, before.totp_secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_needs_password_and_code_and_always_starts_a_new_session() {
    let cs = server().await;
    let mut p = enrol(&cs, "rita", "reviewer").await;
    let mut c = Client::new(&cs.base);
    // Wrong password, right code; right password, wrong code: both refused alike.
    let code = p.next_code();
    let r = try_login(&mut c, "rita", "not the password at all", &code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = try_login(&mut c, "rita", PASSWORD, "000000").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Sign-in failed"));
    // Session fixation: a session id planted before login is never the one logged in.
    let (cookie, _) = ("__Host-sg_session", ());
    c.cookies
        .insert(cookie.into(), "planted-by-an-attacker".into());
    let code = p.next_code();
    let r = try_login(&mut c, "rita", PASSWORD, &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let new = c.cookies[cookie].clone();
    assert_ne!(new, "planted-by-an-attacker");
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"),
        "{set}"
    );
    let mut attacker = Client::new(&cs.base);
    attacker
        .cookies
        .insert(cookie.into(), "planted-by-an-attacker".into());
    let r = attacker.get("/console").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/console/login"));
    // Logging in again ends the session the browser had.
    let code = p.next_code();
    let mut again = Client::new(&cs.base);
    again.cookies.insert(cookie.into(), new.clone());
    let r = try_login(&mut again, "rita", PASSWORD, &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut old = Client::new(&cs.base);
    old.cookies.insert(cookie.into(), new);
    assert_eq!(old.get("/console").await.status, StatusCode::SEE_OTHER);
    // A code is accepted once.
    let used = safeguard_console::totp::code_at(&p.secret, common::console::now_secs() + 30);
    let r = try_login(&mut Client::new(&cs.base), "rita", PASSWORD, &used).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a replayed code");
    // Sign-ins are in the audit log.
    let actions: Vec<String> =
        cs.s.store
            .audit_entries(0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.entry.action)
            .collect();
    assert!(actions.iter().any(|a| a == "login"));
    assert!(actions.iter().any(|a| a == "login_failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let mut c = common::console::config();
    c.console.session_idle_secs = 1;
    let cs = start(c).await;
    let mut p = enrol(&cs, "ida", "reviewer").await;
    let mut client = login(&cs, &mut p).await;
    assert_eq!(client.get("/console").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = client.get("/console").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "idle session ended");

    let mut c = common::console::config();
    c.console.session_absolute_secs = 2;
    let cs = start(c).await;
    let mut p = enrol(&cs, "abe", "reviewer").await;
    let mut client = login(&cs, &mut p).await;
    for _ in 0..4 {
        assert_eq!(client.get("/console").await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        client.get("/console").await.status,
        StatusCode::SEE_OTHER,
        "a session in use still ends at its absolute timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_and_throttle_the_address() {
    let mut c = common::console::config();
    c.console.lockout_failures = 3;
    c.console.login_failures_per_ip = 6;
    let cs = start(c).await;
    let mut p = enrol(&cs, "lou", "reviewer").await;
    let mut client = Client::new(&cs.base);
    for _ in 0..3 {
        let r = try_login(&mut client, "lou", "wrong password, long enough", "123456").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let u = cs.s.store.user_by_name("lou").unwrap().unwrap();
    assert!(u.locked_until.unwrap() > safeguard_engine::now_ms());
    // Locked: even the right password and code are refused.
    let code = p.next_code();
    let r = try_login(&mut client, "lou", PASSWORD, &code).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The address is throttled after 6 failures, whatever the account.
    for _ in 0..2 {
        try_login(
            &mut client,
            "nobody",
            "wrong password, long enough",
            "123456",
        )
        .await;
    }
    let r = try_login(
        &mut client,
        "nobody",
        "wrong password, long enough",
        "123456",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Login fields over their caps (1,024 bytes for the name and password, 16 for the code) are
/// refused before any password hashing, as a failed sign-in that counts against the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_login_fields_fail_and_count_against_the_address() {
    let mut c = common::console::config();
    c.console.login_failures_per_ip = 3;
    let cs = start(c).await;
    let mut p = enrol(&cs, "max", "reviewer").await;
    let mut client = Client::new(&cs.base);
    // A success first: the address then has its three tries left.
    let code = p.next_code();
    let ok = try_login(&mut client, "max", PASSWORD, &code).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let long = "x".repeat(1025);
    // The code is never read when a field is over its cap (and a fresh one would cost a
    // wait for the next 30-second step).
    for (name, password, totp) in [
        (long.as_str(), PASSWORD, "123456"),
        ("max", long.as_str(), "123456"),
        ("max", PASSWORD, "12345678901234567"),
    ] {
        let mut fresh = Client::new(&cs.base);
        let r = try_login(&mut fresh, name, password, totp).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(r.body.contains("Sign-in failed"), "{}", r.body);
    }
    // Three failures from this address: the next try is throttled before it is checked.
    let r = try_login(&mut client, "max", PASSWORD, "123456").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // The account itself is not locked by them.
    let u = cs.s.store.user_by_name("max").unwrap().unwrap();
    assert!(u
        .locked_until
        .is_none_or(|t| t <= safeguard_engine::now_ms()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_without_the_csrf_token_are_refused() {
    let cs = server().await;
    let (case, objects) = image_case(&cs.s, "acct-csrf").await;
    let mut p = enrol(&cs, "cyd", "reviewer").await;
    let mut c = login(&cs, &mut p).await;
    let r = c.post_form("/console/queues/csam/claim", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .post_form("/console/queues/csam/claim", &[("csrf", "forged")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(cs.s.store.lease(case).unwrap(), None, "nothing claimed");
    let reveal = json!({"case_id": case, "object_id": objects[0]});
    let r = c.post_json("/console/reveals", &reveal, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "csrf_failed");
    // The login form needs its own cookie's token.
    let mut fresh = Client::new(&cs.base);
    let r = fresh
        .post_form(
            "/console/login",
            &[
                ("username", "cyd"),
                ("password", PASSWORD),
                ("totp", "000000"),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_is_signed_for_one_session_and_never_shown_to_auditors() {
    let cs = server().await;
    let (case, objects) = image_case(&cs.s, "acct-media").await;
    let mut rev = enrol(&cs, "mae", "reviewer").await;
    let mut aud = enrol(&cs, "aud", "auditor").await;
    let mut other = enrol(&cs, "oli", "reviewer").await;
    let mut c = login(&cs, &mut rev).await;
    let (id, page) = claim(&mut c, "csam").await;
    assert_eq!(id, case);
    // Evidence comes before media, and the media starts blurred and greyscale.
    let ev = page.find("id=\"evidence\"").expect("evidence section");
    let media = page.find("id=\"media\"").expect("media section");
    assert!(ev < media, "evidence first");
    let src = attr_of(&page, "class=\"media-img", "src").expect("an image");
    let class = attr_of(&page, "class=\"media-img", "class").unwrap();
    for want in ["blurred", "greyscale"] {
        assert!(class.split(' ').any(|c| c == want), "{class}");
    }
    assert!(src.starts_with("/console/media/"), "{src}");
    // Valid for five minutes from the page (docs/console.md).
    let exp: i64 = src
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("exp="))
        .expect("an expiry in the URL")
        .parse()
        .unwrap();
    let ahead = exp - safeguard_engine::now_ms();
    assert!(
        (240_000..=300_000).contains(&ahead),
        "the URL expires {ahead} ms ahead"
    );
    let r = c.get(&src).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["content-type"], "image/jpeg");
    // The same URL in another person's session, or with no session: refused.
    let mut o = login(&cs, &mut other).await;
    let r = o.get(&src).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "media_url_invalid");
    assert_eq!(
        Client::new(&cs.base).get(&src).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A tampered object id: refused.
    let tampered = src.replacen(&objects[0], &objects[1], 1);
    if tampered != src {
        assert_eq!(c.get(&tampered).await.status, StatusCode::FORBIDDEN);
    }
    // The auditor's view of the case has no media at all, and the URL is refused.
    let mut a = login(&cs, &mut aud).await;
    let p = a.get(&format!("/console/cases/{case}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        !p.body.contains("/console/media/"),
        "no media URL for an auditor"
    );
    assert!(p.body.contains("media-hidden"));
    assert_eq!(a.get(&src).await.status, StatusCode::FORBIDDEN);
    // Every media read is in the access log, as the person who read it.
    let log = cs.s.store.access_log(&objects[0]).unwrap();
    assert!(log
        .iter()
        .any(|(_, who, what)| who == "console:mae" && what == "console_view"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveals_are_recorded_with_their_duration_and_capped_per_day() {
    let mut c = common::console::config();
    c.console.daily_reveal_cap = 2;
    let cs = start(c).await;
    let (case, objects) = image_case(&cs.s, "acct-reveal").await;
    let mut p = enrol(&cs, "rex", "reviewer").await;
    let mut c = login(&cs, &mut p).await;
    let (_, page) = claim(&mut c, "csam").await;
    let csrf = csrf_of(&page);
    let r = c
        .post_json(
            "/console/reveals",
            &json!({"case_id": case, "object_id": objects[0]}),
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rid = r.json()["reveal_id"].as_i64().unwrap();
    assert!(r.json()["max_ms"].as_i64().unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = c
        .post_json(
            &format!("/console/reveals/{rid}/end"),
            &json!({}),
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let visible = r.json()["visible_ms"].as_i64().unwrap();
    assert!(visible >= 200, "{visible}");
    let reveals = cs.s.store.reveals_of_object(&objects[0]).unwrap();
    assert_eq!(reveals.len(), 1);
    assert_eq!(
        reveals[0].ended_at.unwrap() - reveals[0].started_at,
        visible
    );
    // Someone else cannot end it, and an unknown object of the case is refused.
    let mut q = enrol(&cs, "quin", "reviewer").await;
    let mut other = login(&cs, &mut q).await;
    let csrf2 = other.csrf().await;
    let r = other
        .post_json(
            &format!("/console/reveals/{rid}/end"),
            &json!({}),
            Some(&csrf2),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .post_json(
            "/console/reveals",
            &json!({"case_id": case, "object_id": "no-such-object"}),
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The cap: a second reveal is allowed, a third refused.
    let body = json!({"case_id": case, "object_id": objects[1]});
    assert_eq!(
        c.post_json("/console/reveals", &body, Some(&csrf))
            .await
            .status,
        StatusCode::OK
    );
    let r = c.post_json("/console/reveals", &body, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"]["code"], "exposure_cap_reached");
    // The reveal is what marks the file viewed for a report.
    let log = cs.s.store.access_log(&objects[0]).unwrap();
    assert!(log
        .iter()
        .any(|(_, who, what)| who == "console:rex" && what == "reveal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_a_lease_that_others_respect_and_a_skip_is_not_offered_again() {
    let cs = server().await;
    let (case, _) = image_case(&cs.s, "acct-lease").await;
    let mut a = enrol(&cs, "ann", "reviewer").await;
    let mut b = enrol(&cs, "bob", "reviewer").await;
    let mut ca = login(&cs, &mut a).await;
    let mut cb = login(&cs, &mut b).await;
    let (id, _) = claim(&mut ca, "csam").await;
    assert_eq!(id, case);
    // Bob finds nothing to claim while Ann holds it, and cannot decide it.
    let csrf_b = cb.csrf().await;
    let r = cb
        .post_form("/console/queues/csam/claim", &[("csrf", &csrf_b)])
        .await;
    assert_eq!(r.location(), Some("/console?empty=1"));
    let r = cb
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[("csrf", &csrf_b), ("decision", "not_csam")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Ann renews, then skips with a reason: back to open, offered to Bob, not to Ann.
    let csrf_a = ca.csrf().await;
    let r = ca
        .post_form(
            &format!("/console/cases/{case}/renew"),
            &[("csrf", &csrf_a)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = ca
        .post_form(
            &format!("/console/cases/{case}/skip"),
            &[("csrf", &csrf_a), ("reason", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a skip needs a reason");
    let r = ca
        .post_form(
            &format!("/console/cases/{case}/skip"),
            &[("csrf", &csrf_a), ("reason", "I know this account")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(cs.s.store.case(case).unwrap().unwrap().state, "open");
    let r = ca
        .post_form("/console/queues/csam/claim", &[("csrf", &csrf_a)])
        .await;
    assert_eq!(
        r.location(),
        Some("/console?empty=1"),
        "not offered again to Ann"
    );
    let (id, _) = claim(&mut cb, "csam").await;
    assert_eq!(id, case);
    let history = cs.s.store.case_history(case).unwrap();
    assert!(history
        .iter()
        .any(|h| h.action == "skipped" && h.note.as_deref() == Some("I know this account")));

    // Bob walks away. The sweep leaves a live lease, and a lease that lapsed less than one
    // lease length ago (Bob may still come back and renew it); after that the case is open.
    let now = safeguard_engine::now_ms();
    let lease = cs.s.store.lease(case).unwrap().unwrap();
    let lease_ms = lease.expires_at - lease.claimed_at;
    let sweep = |at: i64| {
        let state = cs.s.state.clone();
        async move {
            safeguard_server::console::reopen_lapsed_leases(&state, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(sweep(now).await, 0);
    assert_eq!(sweep(lease.expires_at + lease_ms - 1).await, 0);
    assert_eq!(cs.s.store.case(case).unwrap().unwrap().state, "in_review");
    assert_eq!(sweep(lease.expires_at + lease_ms).await, 1);
    assert_eq!(cs.s.store.case(case).unwrap().unwrap().state, "open");
    assert!(cs.s.store.lease(case).unwrap().is_none());
    let last = cs.s.store.case_history(case).unwrap().pop().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.note.as_deref()),
        ("system", Some("the lease lapsed"))
    );
    let events = cs.s.store.events_since(0, 1_000).unwrap();
    assert!(
        events.iter().any(|e| {
            let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
            e.event_type == "case.updated"
                && body["data"]["change"] == "lease_lapsed"
                && body["data"]["id"] == case
                && body["data"]["state"] == "open"
        }),
        "no lease_lapsed event"
    );
    let csrf_b = cb.csrf().await;
    let r = cb
        .post_form(
            &format!("/console/cases/{case}/renew"),
            &[("csrf", &csrf_b)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let (id, _) = claim(&mut cb, "csam").await;
    assert_eq!(id, case, "the open case is claimed again");
}

/// A case moved through the API while a reviewer holds its console lease (the API does not
/// touch leases) takes no decision from the console: no labels written, no requeue, 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_moved_by_the_api_takes_no_console_decision() {
    let cs = server().await;
    let (case, objects) = image_case(&cs.s, "acct-moved").await;
    let mut rev = enrol(&cs, "una", "senior").await;
    let mut c = login(&cs, &mut rev).await;
    let (_, page) = claim(&mut c, "csam").await;
    let csrf = csrf_of(&page);
    let r =
        cs.s.admin(
            "POST",
            &format!("/v1/cases/{case}/transition"),
            Some(json!({"to": "decided", "decision": "confirmed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = cs.s.store.case_history(case).unwrap().len();
    let (k0, k1) = (
        format!("class:{}", objects[0]),
        format!("class:{}", objects[1]),
    );
    for decision in ["confirmed", "escalate"] {
        let r = c
            .post_form(
                &format!("/console/cases/{case}/decide"),
                &[
                    ("csrf", &csrf),
                    ("decision", decision),
                    (&k0, "A1"),
                    (&k1, "B2"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{decision}: {}", r.body);
        assert_eq!(
            r.headers["x-error-code"], "case_not_in_review",
            "{decision}"
        );
        assert!(
            r.body.contains("moved outside the console"),
            "{decision}: {}",
            r.body
        );
    }
    assert!(cs.s.store.item_labels(case).unwrap().is_empty());
    let after = cs.s.store.case(case).unwrap().unwrap();
    assert_eq!(
        (after.state.as_str(), after.queue.as_str()),
        ("decided", "csam")
    );
    assert_eq!(cs.s.store.case_history(case).unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_needs_a_second_senior_and_fires_the_webhook() {
    let cs = server().await;
    let (url, got) = common::console::receiver().await;
    let r =
        cs.s.admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["case.updated"]})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text());
    let (case, objects) = image_case(&cs.s, "acct-two").await;
    let mut rev = enrol(&cs, "sam", "senior").await;
    let mut sen = enrol(&cs, "tess", "senior").await;
    let mut c = login(&cs, &mut rev).await;
    let (_, page) = claim(&mut c, "csam").await;
    let csrf = csrf_of(&page);
    // A confirmation without a classification for each item is refused.
    let r = c
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[
                ("csrf", &csrf),
                ("decision", "confirmed"),
                (&format!("class:{}", objects[0]), "A1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let (k0, k1) = (
        format!("class:{}", objects[0]),
        format!("class:{}", objects[1]),
    );
    let a1 = format!("annot:{}", objects[1]);
    let r = c
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[
                ("csrf", &csrf),
                ("decision", "confirmed"),
                (&k0, "A1"),
                (&k1, "B2"),
                (&a1, "animeDrawingVirtualHentai"),
                ("note", "both items match the hotline's hashes"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cse = cs.s.store.case(case).unwrap().unwrap();
    assert_eq!(
        (cse.state.as_str(), cse.decision.as_deref()),
        ("decided", Some("confirmed"))
    );
    let labels = cs.s.store.item_labels(case).unwrap();
    assert_eq!(labels.len(), 2);
    // Sam is a senior too, but cannot approve his own confirmation: no button, and refused.
    let p = c.get("/console/approvals").await;
    assert!(p.body.contains("own-decision"), "{}", p.body);
    assert!(!p.body.contains(&format!("/console/cases/{case}/approve")));
    let r = c
        .post_form(
            &format!("/console/cases/{case}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.headers["x-error-code"], "same_person");
    // A reviewer without the senior role cannot approve at all.
    let mut r2 = enrol(&cs, "vic", "reviewer").await;
    let mut v = login(&cs, &mut r2).await;
    let vcsrf = v.csrf().await;
    let r = v
        .post_form(
            &format!("/console/cases/{case}/approve"),
            &[("csrf", &vcsrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Tess approves.
    let mut t = login(&cs, &mut sen).await;
    let p = t.get("/console/approvals").await;
    assert!(
        p.body.contains(&format!("/console/cases/{case}/approve")),
        "{}",
        p.body
    );
    let tcsrf = csrf_of(&p.body);
    let r = t
        .post_form(
            &format!("/console/cases/{case}/approve"),
            &[("csrf", &tcsrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let h = cs.s.store.case_history(case).unwrap();
    assert!(h
        .iter()
        .any(|l| l.action == "approved" && l.actor == "console:tess"));
    eventually(
        || {
            got.lock().unwrap().iter().any(|b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["type"] == "case.updated" && v["data"]["change"] == "approved"
            })
        },
        "the approval's case.updated event",
    )
    .await;
    let got = got.lock().unwrap();
    let changes: Vec<String> = got
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v["data"]["change"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert!(changes.contains(&"claimed".to_string()), "{changes:?}");
    assert!(changes.contains(&"state".to_string()), "{changes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_requeues_and_not_csam_adds_the_hashes_to_the_allow_list() {
    let cs = server().await;
    let mut p = enrol(&cs, "fay", "reviewer").await;
    let mut c = login(&cs, &mut p).await;
    // Escalation moves a claimed case to the escalation queue, open.
    let (case, _) = image_case(&cs.s, "acct-esc").await;
    let (id, page) = claim(&mut c, "csam").await;
    assert_eq!(id, case);
    let csrf = csrf_of(&page);
    let r = c
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[
                ("csrf", &csrf),
                ("decision", "escalate"),
                ("note", "needs a lead"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cse = cs.s.store.case(case).unwrap().unwrap();
    assert_eq!(
        (cse.state.as_str(), cse.queue.as_str()),
        ("open", "escalated")
    );
    assert_eq!(cs.s.store.lease(case).unwrap(), None);

    // "Not CSAM" from the escalation queue.
    let (id, page) = claim(&mut c, "escalated").await;
    assert_eq!(id, case);
    let csrf = csrf_of(&page);
    let r = c
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[
                ("csrf", &csrf),
                ("decision", "not_csam"),
                ("note", "a photo of a bridge"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cse = cs.s.store.case(case).unwrap().unwrap();
    assert_eq!(
        (cse.state.as_str(), cse.decision.as_deref()),
        ("decided", Some("not_csam"))
    );
    let bank =
        cs.s.store
            .bank_by_name("CONSOLE_FALSE_POSITIVES")
            .unwrap()
            .expect("the allow-list bank");
    assert_eq!(format!("{:?}", bank.kind).to_lowercase(), "allowlist");
    // The same image again is now allowed by the allow-list.
    let img = common::sample_image(common::console::IMAGES[0]);
    let meta = json!({"id": "again-1", "kind": "image", "account": "acct-fp-2"});
    let r =
        cs.s.upload("/v1/content", "media", &img, &[("json", &meta.to_string())])
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["verdict"], "allow", "{}", r.text());
}

/// An id or query the console cannot read: the 404 page for a page's path, the JSON error
/// shape for the script's calls, never axum's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_console_paths_get_the_console_s_errors() {
    let cs = server().await;
    let mut rev = enrol(&cs, "xia", "reviewer").await;
    let mut c = login(&cs, &mut rev).await;
    let p = c.get("/console/cases/abc").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.body);
    assert_eq!(p.headers["x-error-code"], "not_found");
    assert!(p.body.contains("no such page"), "{}", p.body);
    let csrf = c.csrf().await;
    let p = c
        .post_form("/console/cases/abc/renew", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.body);
    let p = c
        .post_json("/console/reveals/abc/end", &json!({}), Some(&csrf))
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert_eq!(p.json()["error"]["code"], "invalid_request", "{}", p.body);
    let p = c.get("/console/media/ev_x?exp=abc&sig=x").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert_eq!(p.json()["error"]["code"], "invalid_request", "{}", p.body);
}

/// Disabling a person takes exactly `disabled=true` (and enabling `false`): a missing or
/// mistyped value is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_person_needs_an_exact_value() {
    let cs = server().await;
    let mut admin = enrol(&cs, "adma", "admin").await;
    enrol(&cs, "wes", "reviewer").await;
    let mut a = login(&cs, &mut admin).await;
    let wes = cs.s.store.user_by_name("wes").unwrap().unwrap().id;
    let uri = format!("/console/users/{wes}/disable");
    let csrf = a.csrf().await;
    for bad in [None, Some("0"), Some("no"), Some("False")] {
        let mut fields = vec![("csrf", csrf.as_str())];
        if let Some(v) = bad {
            fields.push(("disabled", v));
        }
        let r = a.post_form(&uri, &fields).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", r.body);
        assert_eq!(r.headers["x-error-code"], "invalid_request", "{bad:?}");
        assert!(
            !cs.s.store.user_by_name("wes").unwrap().unwrap().disabled,
            "{bad:?}"
        );
    }
    for (value, disabled) in [("true", true), ("false", false)] {
        let r = a
            .post_form(&uri, &[("csrf", &csrf), ("disabled", value)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{value}: {}", r.body);
        let u = cs.s.store.user_by_name("wes").unwrap().unwrap();
        assert_eq!(u.disabled, disabled, "{value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_settings_layer_organisation_queue_and_person_and_never_go_below_the_blur_minimum() {
    let cs = server().await;
    let (case, _) = image_case(&cs.s, "acct-settings").await;
    let mut admin = enrol(&cs, "adm", "admin").await;
    let mut rev = enrol(&cs, "val", "reviewer").await;
    let mut a = login(&cs, &mut admin).await;
    let mut r = login(&cs, &mut rev).await;
    let classes = |page: &str| attr_of(page, "class=\"media-img", "class").expect("an image");
    let (_, page) = claim(&mut r, "csam").await;
    let c = classes(&page);
    assert!(
        c.contains("blur-16") && c.contains("greyscale"),
        "defaults: {c}"
    );
    // The queue's setting overrides the organisation's.
    let acsrf = a.csrf().await;
    let p = a
        .post_form(
            "/console/settings",
            &[
                ("csrf", &acsrf),
                ("scope", "queue:csam"),
                ("greyscale", "on"),
                ("blur_px", "24"),
                ("thumb_px", "200"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = r.get(&format!("/console/cases/{case}")).await.body;
    let c = classes(&page);
    assert!(
        c.contains("blur-24") && c.contains("thumb-200"),
        "queue layer: {c}"
    );
    // A harm type's layer is kept and shown; an unknown kind of scope is refused.
    let p = a
        .post_form(
            "/console/settings",
            &[
                ("csrf", &acsrf),
                ("scope", "harm:grooming"),
                ("blur_px", "30"),
                ("thumb_px", "120"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let shown = a.get("/console/settings?scope=harm:grooming").await;
    assert!(
        shown.body.contains("<option value=\"30\" selected>"),
        "{}",
        shown.body
    );
    assert_eq!(
        a.get("/console/settings?scope=everyone").await.status,
        StatusCode::BAD_REQUEST
    );
    // Below the minimum: refused.
    let p = a
        .post_form(
            "/console/settings",
            &[("csrf", &acsrf), ("scope", "org"), ("blur_px", "8")],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    // A reviewer may turn greyscale off for themselves; an admin without a reviewing role has
    // no media view to set.
    let rcsrf = csrf_of(&page);
    let p = r
        .post_form(
            "/console/me",
            &[("csrf", &rcsrf), ("blur_px", "12"), ("thumb_px", "160")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = r.get(&format!("/console/cases/{case}")).await.body;
    let c = classes(&page);
    assert!(
        c.contains("blur-12") && !c.contains("greyscale"),
        "person layer: {c}"
    );
    assert_eq!(a.get("/console/me").await.status, StatusCode::FORBIDDEN);
    // Reduced detail: the image comes as the server's small, greyscale, posterised PNG, never
    // the original, and still blurred until a click.
    let p = r
        .post_form(
            "/console/me",
            &[
                ("csrf", &rcsrf),
                ("blur_px", "12"),
                ("thumb_px", "160"),
                ("reduced_detail", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = r.get(&format!("/console/cases/{case}")).await.body;
    assert!(classes(&page).contains("blurred"), "{}", classes(&page));
    let src = attr_of(&page, "class=\"media-img", "src").expect("an image");
    assert!(src.ends_with("&view=reduced"), "{src}");
    let original = src.trim_end_matches("&view=reduced").to_string();
    let (status, headers, png) = r.get_bytes(&src).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "no-store");
    for name in common::console::IMAGES {
        assert_ne!(png, common::sample_image(name), "not an original file");
    }
    // The address without `view` (from a page loaded before the change, or edited by hand)
    // gets the reduced copy too: the settings decide, not the address.
    let (status, headers, plain) = r.get_bytes(&original).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(plain, png);
    let img = safeguard_media::decode(&png, &safeguard_media::Limits::default())
        .unwrap()
        .image;
    assert!(
        img.width.max(img.height) <= 320,
        "{}x{}",
        img.width,
        img.height
    );
    let mut greys: Vec<u8> = img
        .data
        .chunks(3)
        .map(|p| {
            assert!(p[0] == p[1] && p[1] == p[2], "not greyscale: {p:?}");
            p[0]
        })
        .collect();
    greys.sort_unstable();
    greys.dedup();
    assert!(greys.len() <= 4, "posterised to 4 levels: {greys:?}");
    assert!(greys.len() >= 2, "a photo keeps some shapes: {greys:?}");
    let bad = format!("{original}&view=sketch");
    assert_eq!(r.get(&bad).await.status, StatusCode::BAD_REQUEST);
    // A reveal under reduced detail is recorded as such, and does not mark the file viewed
    // (CyberTipline's fileViewedByEsp counts `reveal` lines only).
    let object = src
        .trim_start_matches("/console/media/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let rcsrf = csrf_of(&page);
    let rv = r
        .post_json(
            "/console/reveals",
            &json!({"case_id": case, "object_id": object}),
            Some(&rcsrf),
        )
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{}", rv.body);
    let kinds: Vec<String> =
        cs.s.store
            .access_log(&object)
            .unwrap()
            .into_iter()
            .map(|(_, _, k)| k)
            .collect();
    assert!(kinds.contains(&"reveal_reduced".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"reveal".to_string()), "{kinds:?}");
    // Only admins change the organisation's settings.
    let p = r
        .post_form(
            "/console/settings",
            &[("csrf", &rcsrf), ("scope", "org"), ("blur_px", "10")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

/// A StopNCII stand-in: FetchHashes lists `hash` (once set) as an active ImagePDQ record;
/// SubmitFeedback refuses the first call (400) and answers 200 after, unless `down` is set
/// (400 again), keeping each body.
async fn stopncii_with(
    hash: std::sync::Arc<std::sync::Mutex<String>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(u16, String)>>>,
) {
    use axum::routing::{get, post};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u16, String)>::new()));
    let s2 = seen.clone();
    let app = axum::Router::new()
        .route(
            "/v1/FetchHashes",
            get(move || {
                let hash = hash.lock().unwrap().clone();
                async move {
                    axum::Json(json!({"count": 1, "nextPageToken": null,
                        "nextSetTimestamp": 11, "hasMoreRecords": false,
                        "hashRecords": [{"lastModtimestamp": 10, "signalType": "ImagePDQ",
                            "hashValue": hash, "hashStatus": "Active",
                            "caseNumbers": {"case-1": "Active"}, "CSPFeedbacks": []}]}))
                }
            }),
        )
        .route(
            "/v1/SubmitFeedback",
            post(move |body: String| {
                let s2 = s2.clone();
                let down = down.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    let mut seen = s2.lock().unwrap();
                    let status = if seen.is_empty() || down { 400 } else { 200 };
                    seen.push((status, body));
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::Json(json!({})),
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_csam_records_feedback_for_the_exchange_and_sends_it() {
    let hash = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, seen) = stopncii_with(hash.clone(), down.clone()).await;
    let mut config = common::console::config();
    let text = format!(
        "[[exchanges]]\nname = \"STOPNCII\"\nkind = \"stopncii\"\nbase_url = \"http://{addr}/v1\"\n\
         enabled = false\nsubscription_key = \"sub\"\nfetch_function_key = \"fetch\"\n\
         feedback_function_key = \"feedback\"\nfalse_positive_feedback = \"NotBlocked\"\n"
    );
    config.exchanges = toml::from_str::<safeguard_server::config::Config>(&text)
        .unwrap()
        .exchanges;
    let cs = start(config).await;
    // The exchange lists the benign sample photo's PDQ hash.
    let img = common::sample_image(common::console::IMAGES[0]);
    let pdq = cs.s.upload("/h/hash", "photo", &img, &[]).await.json()["pdq"]
        .as_str()
        .unwrap()
        .to_string();
    *hash.lock().unwrap() = pdq.clone();
    let r =
        cs.s.admin("POST", "/v1/exchanges/STOPNCII/run?wait=true", None)
            .await;
    assert_eq!(r.json()["report"]["outcome"]["added"], 1, "{}", r.text());
    let meta = json!({"id": "fp-photo", "kind": "image", "account": "acct-fb"});
    let r =
        cs.s.upload("/v1/content", "media", &img, &[("json", &meta.to_string())])
            .await;
    let case = r.json()["case_id"].as_i64().expect("a case");

    let mut p = enrol(&cs, "gus", "reviewer").await;
    let mut c = login(&cs, &mut p).await;
    let (id, page) = claim(&mut c, "default").await;
    assert_eq!(id, case);
    // The evidence names the exchange's own entry, not a local row id.
    assert!(
        page.contains(&format!("<td class=\"hotline\">ImagePDQ:{pdq}</td>")),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let r = c
        .post_form(
            &format!("/console/cases/{case}/decide"),
            &[("csrf", &csrf), ("decision", "not_csam")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // Recorded, pending, against the exchange's own entry.
    let curate = cs.s.key(&[safeguard_server::auth::Scope::Curate]);
    let list = |q: &'static str| {
        let s = &cs.s;
        let curate = curate.clone();
        async move {
            s.call(
                "GET",
                &format!("/v1/exchanges/STOPNCII/feedback{q}"),
                Some(&curate),
                None,
            )
            .await
        }
    };
    let r = list("").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rows = r.json()["feedback"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["case_id"], case);
    assert_eq!(rows[0]["source_id"], format!("ImagePDQ:{pdq}"));
    assert_eq!(rows[0]["signal_type"], "pdq");
    assert_eq!(rows[0]["value"], pdq);
    assert_eq!(rows[0]["verdict"], "false_positive");
    assert_eq!(rows[0]["decided_by"], "console:gus");
    assert_eq!(rows[0]["status"], "pending");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing sent at decision time"
    );

    // The first attempt is refused: still pending, with the error, due again a minute later
    // (not before); then it is sent.
    let state = cs.s.state.clone();
    let now = safeguard_engine::now_ms();
    let send = |at: i64| {
        let state = state.clone();
        async move {
            let r = safeguard_server::source_feedback::send_pending(&state, at)
                .await
                .unwrap();
            (r.sent, r.failed, r.cancelled)
        }
    };
    assert_eq!(send(now).await, (0, 1, 0));
    let row = list("?status=pending").await.json()["feedback"][0].clone();
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["next_attempt_at"], now + 60_000);
    assert!(row["last_error"].as_str().unwrap().contains("400"), "{row}");
    assert_eq!(send(now + 59_999).await, (0, 0, 0), "not due yet");
    assert_eq!(send(now + 60_000).await, (1, 0, 0));
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&sent[1].1).unwrap(),
        json!({"count": 1, "hashFeedbacks": [{"hashValue": pdq,
            "feedbackValue": "NotBlocked", "tags": ["false_positive"]}]})
    );
    let row = list("?status=sent").await.json()["feedback"][0].clone();
    assert_eq!(
        (row["attempts"].clone(), row["sent_at"].clone()),
        (json!(2), json!(now + 60_000))
    );
    assert_eq!(send(now + 120_000).await, (0, 0, 0), "sent once");
    assert_eq!(list("?status=pending").await.json()["feedback"], json!([]));

    // A row whose case is back in review waits (no attempt); once its case is decided
    // otherwise it is cancelled, never sent.
    let md5 = "0123456789abcdef0123456789abcdef";
    let r =
        cs.s.admin("POST", "/v1/banks", Some(json!({"name": "OTHER"})))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    cs.s.admin("POST", "/c/bank/OTHER/signal", Some(json!({"md5": md5})))
        .await;
    let r =
        cs.s.admin(
            "POST",
            "/v1/content",
            Some(
                json!({"id": "other-1", "kind": "image", "account": "acct-fb-2",
                "signals": {"md5": md5}}),
            ),
        )
        .await;
    let reopened = r.json()["case_id"].as_i64().expect("a second case");
    let owed = |case_id: i64, entry: &str| safeguard_store::console::NewSourceFeedback {
        case_id,
        exchange: "STOPNCII".into(),
        source_id: entry.into(),
        signal_type: "pdq".into(),
        value: pdq.clone(),
        verdict: "false_positive".into(),
        actor: "console:gus".into(),
        at: now,
    };
    cs.s.store
        .record_source_feedback(&[owed(reopened, "ImagePDQ:waiting")])
        .unwrap();
    assert_eq!(send(now + 180_000).await, (0, 0, 0), "its case is open");
    let waiting = list("?status=pending").await.json()["feedback"][0].clone();
    assert_eq!(waiting["attempts"], 0);
    assert_eq!(
        waiting["next_attempt_at"],
        now + 180_000 + 600_000,
        "looked at again in ten minutes"
    );
    let t = safeguard_store::action::CaseTransition {
        from: "open".into(),
        to: "closed".into(),
        actor: "api".into(),
        note: None,
        decision: Some("no_action".into()),
        labels: Vec::new(),
        at: now,
    };
    cs.s.store
        .transition_case(reopened, &t, &mut |_| vec![])
        .unwrap();
    assert_eq!(send(now + 780_000).await, (0, 0, 1));
    let row = list("?status=cancelled").await.json()["feedback"][0].clone();
    assert!(
        row["last_error"].as_str().unwrap().contains("no longer"),
        "{row}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "nothing more was sent");

    // A row given up is tried again on request.
    cs.s.store
        .record_source_feedback(&[owed(case, "ImagePDQ:givenup")])
        .unwrap();
    let id = list("?status=pending").await.json()["feedback"][0]["id"]
        .as_i64()
        .unwrap();
    cs.s.store
        .note_feedback_attempt(id, Some("refused"), now, 1, now)
        .unwrap();
    assert_eq!(list("?status=failed").await.json()["feedback"][0]["id"], id);
    let r =
        cs.s.call(
            "POST",
            "/v1/exchanges/STOPNCII/feedback/retry",
            Some(&curate),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["retried"], 1);
    let due = safeguard_engine::now_ms();
    assert_eq!(send(due).await, (1, 0, 0));
    let last = seen.lock().unwrap().last().unwrap().1.clone();
    assert!(last.contains("\"hashValue\":\"givenup\""), "{last}");

    // With the exchange refusing every call, a row is tried MAX_ATTEMPTS (10) times, a
    // minute after the first failure, doubling (docs/exchanges.md), then given up.
    assert_eq!(safeguard_server::source_feedback::MAX_ATTEMPTS, 10);
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    cs.s.store
        .record_source_feedback(&[owed(case, "ImagePDQ:exhausted")])
        .unwrap();
    let calls = seen.lock().unwrap().len();
    let mut at = due;
    for attempt in 1..=10i64 {
        assert_eq!(send(at).await, (0, 1, 0), "attempt {attempt}");
        let status = if attempt < 10 { "pending" } else { "failed" };
        let row = list(if attempt < 10 {
            "?status=pending"
        } else {
            "?status=failed"
        })
        .await
        .json()["feedback"][0]
            .clone();
        assert_eq!(
            (row["attempts"].clone(), row["status"].clone()),
            (json!(attempt), json!(status)),
            "{row}"
        );
        let wait = 60_000i64 << (attempt - 1);
        if attempt < 10 {
            assert_eq!(row["next_attempt_at"], at + wait, "{row}");
            assert_eq!(send(at + wait - 1).await, (0, 0, 0), "not due yet");
        }
        at += wait;
    }
    assert_eq!(seen.lock().unwrap().len(), calls + 10);
    assert_eq!(send(at + 365 * 86_400_000).await, (0, 0, 0), "given up");
    assert_eq!(seen.lock().unwrap().len(), calls + 10);

    // Bad listings are refused.
    let r = list("?status=maybe").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    // `limit` is 1 to 1,000 (docs/exchanges.md).
    for bad in ["?limit=0", "?limit=1001"] {
        let r = list(bad).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{bad}"
        );
    }
    assert_eq!(list("?limit=1000").await.status, StatusCode::OK);
    let r =
        cs.s.call("GET", "/v1/exchanges/NOPE/feedback", Some(&curate), None)
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
