//! Helpers for the review console's tests: a server on a real socket with a case of benign
//! images, people enrolled through the real setup page, and a small cookie-keeping client.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use safeguard_server::config::Config;
use safeguard_store::console::NewUser;

use super::{listen, sample_image, server_with, TestServer};

/// Benign pictures from the PDQ conformance set.
pub const IMAGES: [&str; 2] = [
    "photos/images/pdq/data/bridge-mods/square-512x512.jpg",
    "photos/images/pdq/data/reg-test-input/labelme-subset/q0122.jpg",
];
/// A password that passes the console's rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// A console server on 127.0.0.1 with webhooks allowed to loopback.
pub struct ConsoleServer {
    pub s: TestServer,
    pub base: String,
    pub _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn config() -> Config {
    let mut c = Config::default();
    c.webhooks.allow_internal_hosts = vec!["127.0.0.1".into()];
    c.webhooks.retry_base_secs = 1;
    c
}

pub async fn start(c: Config) -> ConsoleServer {
    let s = server_with(c).await;
    let (addr, stop) = listen(&s).await;
    ConsoleServer {
        s,
        base: format!("http://{addr}"),
        _stop: stop,
    }
}

/// Banks the two images' PDQ hashes and submits both for one account: one case in queue
/// `csam` (the built-in rule for a CSAM bank) with two evidence objects. Returns (case id, object ids).
pub async fn image_case(s: &TestServer, account: &str) -> (i64, Vec<String>) {
    if s.store.bank_by_name("HOTLINE").unwrap().is_none() {
        let r = s
            .admin(
                "POST",
                "/v1/banks",
                Some(json!({"name": "HOTLINE", "kind": "csam", "classification": "A1"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let mut case = None;
    for (i, name) in IMAGES.iter().enumerate() {
        let img = sample_image(name);
        let h = s.upload("/h/hash", "photo", &img, &[]).await.json();
        let pdq = h["pdq"].as_str().unwrap().to_string();
        let r = s
            .admin("POST", "/c/bank/HOTLINE/signal", Some(json!({"pdq": pdq})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let meta = json!({
            "id": format!("{account}-photo-{i}"), "kind": "image", "account": account,
            "surface": "public", "created_at": 1_700_000_000 + i as i64, "ip": "192.0.2.10",
        });
        let r = s
            .upload("/v1/content", "media", &img, &[("json", &meta.to_string())])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let id = r.json()["case_id"].as_i64().expect("a case");
        assert_eq!(*case.get_or_insert(id), id, "one case for the account");
    }
    let case = case.unwrap();
    let objects = s
        .store
        .case_evidence(case)
        .unwrap()
        .into_iter()
        .map(|e| e.object_id)
        .collect();
    (case, objects)
}

/// A client that keeps cookies and never follows redirects (the tests look at them).
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), {}: {}", self.status, self.body))
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let first = v.split(';').next().unwrap();
            let (k, val) = first.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn send_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.send_get(path).await;
        self.finish(r).await
    }

    /// A GET whose body is kept as bytes (media): status, headers, body.
    pub async fn get_bytes(
        &mut self,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let r = self.send_get(path).await;
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded(fields);
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post_json(&mut self, path: &str, body: &Value, csrf: Option<&str>) -> Page {
        let mut b = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = csrf {
            b = b.header("x-csrf-token", t);
        }
        let r = b.send().await.unwrap();
        self.finish(r).await
    }

    /// The session's CSRF token, from the page's `<meta name="csrf-token">`.
    pub async fn csrf(&mut self) -> String {
        let p = self.get("/console").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        attr_of(&p.body, "name=\"csrf-token\"", "content").expect("a csrf meta tag")
    }
}

fn serde_urlencoded(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The value of `attr` on the first tag containing `marker`.
pub fn attr_of(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let key = format!("{attr}=\"");
    let v = tag.find(&key)? + key.len();
    let len = tag[v..].find('"')?;
    Some(html_unescape(&tag[v..v + len]))
}

/// The text inside the first element with `id="…"`.
pub fn text_of_id(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = html.find(&marker)?;
    let open_end = at + html[at..].find('>')? + 1;
    let close = open_end + html[open_end..].find('<')?;
    Some(html_unescape(html[open_end..close].trim()))
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
}

/// RFC 4648 base32 (no padding needed), for the TOTP secret the setup page shows.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = ALPHA
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// A person enrolled through the setup page: what they know.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub secret: Vec<u8>,
    /// The last TOTP step a login used: a code is accepted once, so the next login takes a
    /// later step.
    pub last_step: Option<i64>,
}

/// A one-time setup token for a new person, as `safeguard users create` makes it.
pub fn setup_token(s: &TestServer, name: &str, roles: &str) -> String {
    setup_token_until(s, name, roles, safeguard_engine::now_ms() + 3_600_000)
}

/// [`setup_token`], valid until `expires_at` (Unix ms).
pub fn setup_token_until(s: &TestServer, name: &str, roles: &str, expires_at: i64) -> String {
    let raw = safeguard_console::token::new_token();
    s.store
        .create_user(&NewUser {
            name: name.into(),
            roles: roles.into(),
            setup_token_hash: safeguard_console::token::hash(&raw),
            setup_expires_at: expires_at,
            at: safeguard_engine::now_ms(),
        })
        .unwrap();
    raw
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Creates a person and completes their setup page with [`PASSWORD`] and a current code.
pub async fn enrol(cs: &ConsoleServer, name: &str, roles: &str) -> Person {
    let raw = setup_token(&cs.s, name, roles);
    complete_setup(cs, &raw, name).await
}

/// Completes the setup page of the link `raw` with [`PASSWORD`] and a current code.
pub async fn complete_setup(cs: &ConsoleServer, raw: &str, name: &str) -> Person {
    let mut c = Client::new(&cs.base);
    let p = c.get(&format!("/console/setup?token={raw}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let b32 = text_of_id(&p.body, "totp-secret").expect("the secret on the setup page");
    let secret = base32_decode(&b32);
    let sealed = attr_of(&p.body, "name=\"secret\"", "value").expect("the sealed secret");
    let code = safeguard_console::totp::code_at(&secret, now_secs());
    let r = c
        .post_form(
            "/console/setup",
            &[
                ("token", raw),
                ("secret", &sealed),
                ("password", PASSWORD),
                ("password2", PASSWORD),
                ("totp", &code),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    Person {
        name: name.into(),
        secret,
        last_step: None,
    }
}

impl Person {
    /// The code for the next login (a fresh step each time): the current step, or the next
    /// one if the current was used. Never the previous step: the server accepts one step
    /// either side of its own, so a login whose request crosses a step boundary on the way
    /// would find a previous-step code out of its window. Past that, it waits for the next
    /// step.
    pub fn next_code(&mut self) -> String {
        let step = loop {
            let current = now_secs() / 30;
            let step = self.last_step.map_or(current, |l| (l + 1).max(current));
            if step <= current + 1 {
                break step;
            }
            let into = u64::try_from(now_secs() % 30).unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_secs(30 - into));
        };
        self.last_step = Some(step);
        safeguard_console::totp::code_at(&self.secret, step * 30)
    }
}

/// Signs `p` in on a fresh client. Panics unless the login succeeds.
pub async fn login(cs: &ConsoleServer, p: &mut Person) -> Client {
    let mut c = Client::new(&cs.base);
    let code = p.next_code();
    let r = try_login(&mut c, &p.name, PASSWORD, &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    c
}

/// Submits the login form on `c` (fetching it first, for its CSRF cookie).
pub async fn try_login(c: &mut Client, name: &str, password: &str, code: &str) -> Page {
    let form = c.get("/console/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = attr_of(&form.body, "name=\"csrf\"", "value").expect("csrf on the login form");
    c.post_form(
        "/console/login",
        &[
            ("username", name),
            ("password", password),
            ("totp", code),
            ("csrf", &csrf),
        ],
    )
    .await
}

/// Waits until `f` holds, for at most 20 s.
pub async fn eventually(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Webhook bodies a receiver got.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A webhook receiver on a real socket that keeps every body.
pub async fn receiver() -> (String, Received) {
    let got: Received = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: bytes::Bytes| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/hook", addr.port()), got)
}
