//! `safeguard scan` end to end through the binary: a single-process scan on SQLite whose
//! results equal `safeguard hash`, and three workers on PostgreSQL sharing a scan of 20,000
//! generated images while one of them is killed.
//!
//! Every image is generated here: blocks of random grey levels, nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_process::bin;
use safeguard_store::postgres_testing::TestDatabase;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sg-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 32×32 PNG of 4×4 blocks of random grey, different for every `seed`.
fn png(seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut blocks = [0u8; 64];
    for b in &mut blocks {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *b = (s >> 56) as u8;
    }
    let mut pixels = Vec::with_capacity(32 * 32);
    for y in 0..32 {
        for x in 0..32 {
            pixels.push(blocks[(y / 4) * 8 + x / 4]);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 32, 32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&pixels).unwrap();
    w.finish().unwrap();
    out
}

/// Writes `n` images, 100 per folder; returns their keys (paths relative to `dir`).
fn write_images(dir: &Path, n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let key = format!("d{:03}/img{i:05}.png", i / 100);
            let path = dir.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, png(i)).unwrap();
            key
        })
        .collect()
}

/// `safeguard hash --json` of every file under `dir`: key -> (pdq, md5, sha256).
fn hash_all(dir: &Path) -> BTreeMap<String, (String, String, String)> {
    let out = bin()
        .args(["hash", "--json", "--no-progress"])
        .arg(dir)
        .output()
        .unwrap();
    // Exit status 1 when a file failed (the text file in the SQLite test): its line is on
    // stderr, the images' on stdout.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let path = v["path"].as_str().unwrap();
            let key = Path::new(path)
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (key, (s("pdq"), s("md5"), s("sha256")))
        })
        .collect()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.env_remove("SAFEGUARD_STORE").output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn results(store: &[&str], id: i64) -> Vec<Value> {
    run_ok(bin().args(["scan", "results", &id.to_string()]).args(store))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status(store: &[&str], id: i64) -> Value {
    serde_json::from_str(&run_ok(
        bin().args(["scan", "status", &id.to_string()]).args(store),
    ))
    .unwrap()
}

/// Every result equals `safeguard hash` on the same file, each key once.
fn assert_equal_to_hash(results: &[Value], hashed: &BTreeMap<String, (String, String, String)>) {
    let keys: BTreeSet<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), results.len(), "a key recorded twice");
    for r in results {
        let key = r["key"].as_str().unwrap();
        let Some((pdq, md5, sha256)) = hashed.get(key) else {
            continue;
        };
        assert_eq!(r["pdq"], pdq.as_str(), "{key}");
        assert_eq!(r["md5"], md5.as_str(), "{key}");
        assert_eq!(r["sha256"], sha256.as_str(), "{key}");
        assert!(r["error"].is_null(), "{key}: {}", r["error"]);
    }
    for key in hashed.keys() {
        assert!(keys.contains(key.as_str()), "{key} has no result");
    }
}

#[test]
fn a_scan_on_sqlite_equals_hash_and_sends_matches_through_the_policy() {
    let dir = tmpdir("sqlite");
    let media = dir.join("media");
    let keys = write_images(&media, 250);
    std::fs::write(media.join("notes.txt"), "not an image").unwrap();
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let store = ["--data-dir", data_arg.as_str()];
    let hashed = hash_all(&media);
    assert_eq!(hashed.len(), 250);
    // A bank holding one of the images, by its PDQ.
    let target = &hashed[&keys[7]].0;
    let list = dir.join("bank.txt");
    std::fs::write(&list, format!("{target}\n")).unwrap();
    run_ok(
        bin()
            .args(["bank", "import", "--bank", "KNOWN", "--create"])
            .args(["--format", "plain", "--type", "pdq"])
            .arg(&list)
            .args(store),
    );
    // Neither --bank nor --all: refused.
    let out = bin()
        .arg("scan")
        .arg(&media)
        .args(store)
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bank NAME, or --all"));
    let out = bin()
        .arg("scan")
        .arg(&media)
        .args(["--bank", "NOPE"])
        .args(store)
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bank named \"NOPE\""));

    let end: Value = serde_json::from_str(&run_ok(
        bin()
            .arg("scan")
            .arg(&media)
            .args(["--bank", "KNOWN", "--job-size", "40", "--no-progress"])
            .args(store),
    ))
    .unwrap();
    let id = end["id"].as_i64().unwrap();
    assert_eq!(end["state"], "done");
    assert_eq!(end["items"], 251);
    assert_eq!(end["items_done"], 251);
    assert_eq!(end["items_failed"], 1, "the text file");
    assert_eq!(end["jobs"], 7);
    assert_eq!(end["items_matched"], 1);
    assert_eq!(end["target"]["banks"][0], "KNOWN");
    assert_eq!(status(&store, id), end);

    let rs = results(&store, id);
    assert_eq!(rs.len(), 251);
    assert_equal_to_hash(&rs, &hashed);
    // Results that cannot be written (a full disk) fail the command; they are not lost quietly.
    let out = bin()
        .args(["scan", "results", &id.to_string()])
        .args(store)
        .env_remove("SAFEGUARD_STORE")
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let text = rs.iter().find(|r| r["key"] == "notes.txt").unwrap();
    assert!(text["error"].is_string() && text["pdq"].is_null());
    assert_eq!(text["md5"].as_str().unwrap().len(), 32, "digests even so");
    let hit = rs.iter().find(|r| r["matched"] == true).unwrap();
    assert_eq!(hit["key"], keys[7].as_str());
    assert_eq!(hit["submission"], format!("scan:{id}:{}", keys[7]).as_str());
    assert!(hit["verdict"].is_string(), "{hit}");

    // A done scan cannot be paused; an unknown one is named.
    let out = bin()
        .args(["scan", "pause", &id.to_string()])
        .args(store)
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("done"));
    let out = bin()
        .args(["scan", "status", "999"])
        .args(store)
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scan 999"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker process, its standard error collected in the background.
struct Worker {
    child: Child,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Worker {
    fn spawn(cmd: &mut Command) -> (Worker, std::sync::mpsc::Receiver<String>) {
        let mut child = cmd
            .env_remove("SAFEGUARD_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l.clone());
                lines.push(l);
            }
            lines
        });
        (
            Worker {
                child,
                stderr: Some(stderr),
            },
            rx,
        )
    }

    fn wait_ok(mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let lines = self.stderr.take().unwrap().join().unwrap();
                assert!(status.success(), "worker failed: {}", lines.join("\n"));
                return;
            }
            assert!(Instant::now() < deadline, "worker did not finish in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Images in the PostgreSQL scan: `SAFEGUARD_SCAN_TEST_ITEMS`, else the 20,000.
fn scan_items() -> u64 {
    std::env::var("SAFEGUARD_SCAN_TEST_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn three_workers_share_a_scan_on_postgres_and_one_is_killed() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let url = db.url().to_string();
    let store = ["--store", url.as_str()];
    let n = scan_items();
    let dir = tmpdir("pg");
    let media = dir.join("media");
    let keys = write_images(&media, n);
    // A bank holding every 500th image's SHA-256: matches spread over the jobs, some of them
    // in the killed worker's.
    let hashed = hash_all(&media);
    assert_eq!(hashed.len() as u64, n);
    let listed: String = keys
        .iter()
        .step_by(500)
        .map(|k| format!("{}\n", hashed[k].2))
        .collect();
    let list = dir.join("bank.txt");
    std::fs::write(&list, listed).unwrap();
    run_ok(
        bin()
            .args(["bank", "import", "--bank", "KNOWN", "--create"])
            .args(["--format", "plain", "--type", "sha256"])
            .arg(&list)
            .args(store),
    );
    let worker_args = ["--lease-secs", "3", "--no-progress", "-j", "1"];

    let started = Instant::now();
    let (a, a_err) = Worker::spawn(
        bin()
            .arg("scan")
            .arg(&media)
            .args(["--all", "--job-size", "50"])
            .args(worker_args)
            .args(store),
    );
    // The starting process names the scan on its first line.
    let id = scan_id(&a_err);
    let join = || {
        Worker::spawn(
            bin()
                .args(["scan", "join", &id.to_string()])
                .args(worker_args)
                .args(store),
        )
    };
    let (mut b, _b_err) = join();
    let (c, _c_err) = join();

    // Kill b once a fifth is done: it holds a job then, almost surely mid-way.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = status(&store, id);
        if s["items_done"].as_u64().unwrap() >= n / 5 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed_at = status(&store, id)["items_done"].as_u64().unwrap();

    a.wait_ok(Duration::from_secs(600));
    c.wait_ok(Duration::from_secs(600));
    let took = started.elapsed();
    let end = status(&store, id);
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(end["items"].as_u64(), Some(n));
    assert_eq!(end["items_done"].as_u64(), Some(n));
    assert_eq!(end["items_failed"], 0);
    let matched = n.div_ceil(500);
    assert_eq!(end["items_matched"].as_u64(), Some(matched), "{end}");
    let rs = results(&store, id);
    assert_eq!(rs.len() as u64, n);
    // Owners are `host:pid:random/LOOP`: one process per `host:pid:random`.
    let workers: BTreeSet<&str> = rs
        .iter()
        .map(|r| r["worker"].as_str().unwrap().rsplit_once('/').unwrap().0)
        .collect();
    assert_eq!(
        workers.len(),
        3,
        "all three workers recorded results: {workers:?}"
    );
    assert_equal_to_hash(&rs, &hashed);
    // Every match was recorded once as a submission, under its fixed id, with a case.
    let pg = db.open();
    let hits: Vec<&Value> = rs.iter().filter(|r| r["matched"] == true).collect();
    assert_eq!(hits.len() as u64, matched);
    for r in hits {
        let id = r["submission"].as_str().unwrap();
        let sub = safeguard_store::ActionStore::submission(&pg, id)
            .unwrap()
            .unwrap_or_else(|| panic!("no submission {id}"));
        assert!(sub.case_id.is_some(), "{id} has no case");
        assert!(r["verdict"].is_string());
    }
    eprintln!(
        "scan of {n} images by 3 workers, one killed at {killed_at} done: {:.1} s",
        took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "../../../vault/tests/moto/mod.rs"]
mod moto;

/// `(key, pdq)` of every result, checked against `safeguard hash` of the same bytes kept in
/// `local` under the same key.
fn assert_pdqs_match(rs: &[Value], local: &Path) {
    let hashed = hash_all(local);
    for r in rs.iter().filter(|r| r["error"].is_null()) {
        let key = r["key"].as_str().unwrap();
        let want = hashed
            .iter()
            .find(|(k, _)| key.ends_with(k.as_str()))
            .unwrap_or_else(|| panic!("{key} was not hashed locally"))
            .1;
        assert_eq!(r["pdq"], want.0.as_str(), "{key}");
        assert_eq!(r["sha256"], want.2.as_str(), "{key}");
    }
}

#[test]
fn a_scan_of_a_bucket_on_the_local_s3_server() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let dir = tmpdir("s3");
    let local = dir.join("local");
    let keys = write_images(&local, 30);
    moto.create_bucket("media");
    for k in &keys {
        let bytes = std::fs::read(local.join(k)).unwrap();
        let (status, _) = moto.http("PUT", &format!("/media/up/{k}"), &bytes).unwrap();
        assert_eq!(status, 200);
    }
    // Keys with characters an object path would percent-encode: fetched as listed.
    for (i, wire) in [
        "up/odd/50%25.png",
        "up/odd/a~b%5B1%5D.png",
        "up/odd/with%20space.png",
    ]
    .iter()
    .enumerate()
    {
        let bytes = png(5000 + i as u64);
        let (status, _) = moto.http("PUT", &format!("/media/{wire}"), &bytes).unwrap();
        assert_eq!(status, 200, "{wire}");
        std::fs::write(local.join(format!("odd{i}.png")), &bytes).unwrap();
    }
    // Outside the prefix: not listed.
    let (status, _) = moto.http("PUT", "/media/other/x.png", &png(999)).unwrap();
    assert_eq!(status, 200);
    let data = dir.join("data");
    let end: Value = serde_json::from_str(&run_ok(
        bin()
            .args([
                "scan",
                "s3://media/up",
                "--all",
                "--no-progress",
                "--job-size",
                "7",
            ])
            .arg("--data-dir")
            .arg(&data)
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true"),
    ))
    .unwrap();
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(end["source"], "s3://media/up");
    assert_eq!(
        (end["items"].as_u64(), end["items_failed"].as_u64()),
        (Some(33), Some(0)),
        "{end}"
    );
    let data_arg = data.to_str().unwrap().to_string();
    let rs = results(&["--data-dir", &data_arg], end["id"].as_i64().unwrap());
    assert_eq!(rs.len(), 33);
    let plain: Vec<Value> = rs
        .iter()
        .filter(|r| r["key"].as_str().unwrap().starts_with("up/d000/"))
        .cloned()
        .collect();
    assert_eq!(plain.len(), 30);
    assert_pdqs_match(&plain, &local);
    let hashed = hash_all(&local);
    for (i, odd) in [
        "up/odd/50%.png",
        "up/odd/a~b[1].png",
        "up/odd/with space.png",
    ]
    .iter()
    .enumerate()
    {
        let r = rs
            .iter()
            .find(|r| r["key"] == *odd)
            .unwrap_or_else(|| panic!("{odd} not listed: {rs:?}"));
        assert_eq!(r["pdq"], hashed[&format!("odd{i}.png")].0.as_str(), "{odd}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plain HTTP server for the URL source: `/img/N.png` is image N, anything else 404.
fn image_server() -> std::net::SocketAddr {
    counting_image_server(Duration::ZERO).0
}

/// `safeguard scan urls:FILE --all --no-progress` with `extra` arguments into the data
/// directory `data`; its closing status line.
fn url_scan(file: &Path, data: &Path, extra: &[&str]) -> Value {
    serde_json::from_str(&run_ok(
        bin()
            .arg("scan")
            .arg(format!("urls:{}", file.display()))
            .args(["--all", "--no-progress"])
            .args(extra)
            .arg("--data-dir")
            .arg(data),
    ))
    .unwrap()
}

#[test]
fn a_scan_of_a_url_list() {
    let addr = image_server();
    let dir = tmpdir("urls");
    let local = dir.join("local");
    write_images(&local, 12);
    let mut list = String::from("# images\n\n");
    for i in 0..12 {
        list.push_str(&format!("http://{addr}/img/{i}.png\n"));
    }
    list.push_str(&format!("http://{addr}/img/0.png\n")); // listed once
    list.push_str(&format!("http://{addr}/missing\n"));
    list.push_str("ftp://example.invalid/x.png\n");
    // Lines the listing skips with a warning, the scan going on: one that is not UTF-8, and
    // one far over the longest key (read up to a cap, never whole).
    let mut list = list.into_bytes();
    list.extend_from_slice(b"http://example.invalid/\xff\xfe.png\n");
    list.extend_from_slice(format!("http://example.invalid/{}\n", "a".repeat(1 << 20)).as_bytes());
    let file = dir.join("urls.txt");
    std::fs::write(&file, list).unwrap();
    let data = dir.join("data");
    let end = url_scan(&file, &data, &["--allow-internal-host", "127.0.0.1"]);
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(
        (end["items"].as_u64(), end["items_failed"].as_u64()),
        (Some(14), Some(2))
    );
    let data_arg = data.to_str().unwrap().to_string();
    let rs = results(&["--data-dir", &data_arg], end["id"].as_i64().unwrap());
    assert_eq!(rs.len(), 14);
    let missing = rs
        .iter()
        .find(|r| r["key"].as_str().unwrap().ends_with("/missing"))
        .unwrap();
    assert!(
        missing["error"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    let ftp = rs
        .iter()
        .find(|r| r["key"].as_str().unwrap().starts_with("ftp:"))
        .unwrap();
    assert!(
        ftp["error"]
            .as_str()
            .unwrap()
            .contains("only http and https"),
        "{ftp}"
    );
    // Image N was written locally as d000/imgN.png.
    let renamed: Vec<Value> = rs
        .iter()
        .filter(|r| r["error"].is_null())
        .map(|r| {
            let mut r = r.clone();
            let n: u64 = r["key"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".png")
                .parse()
                .unwrap();
            r["key"] = Value::from(format!("d000/img{n:05}.png"));
            r
        })
        .collect();
    assert_eq!(renamed.len(), 12);
    assert_pdqs_match(&renamed, &local);
    // Without --allow-internal-host the loopback server is refused, item by item.
    let guarded = url_scan(&file, &data, &[]);
    assert_eq!(guarded["items_failed"].as_u64(), Some(14), "{guarded}");
    let rs = results(&["--data-dir", &data_arg], guarded["id"].as_i64().unwrap());
    for r in rs
        .iter()
        .filter(|r| r["key"].as_str().unwrap().starts_with("http:"))
    {
        let why = r["error"].as_str().unwrap();
        assert!(why.contains("internal address"), "{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP server for the URL source that holds every answer for `hold` and counts the
/// requests in flight: `/img/N.png` is image N; `/hang` is never answered (the connection
/// stays open until the client closes it); anything else 404. Returns the address and the
/// most requests ever in flight at once.
fn counting_image_server(
    hold: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let (now, most) = (now.clone(), most.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                if path == "/hang" {
                    // Never answered: read until the client gives up and closes.
                    let _ = std::io::copy(&mut s, &mut std::io::sink());
                    return;
                }
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                std::thread::sleep(hold);
                let body = path
                    .strip_prefix("/img/")
                    .and_then(|p| p.strip_suffix(".png"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .map(png);
                now.fetch_sub(1, Ordering::SeqCst);
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => ("404 Not Found", b"no".to_vec()),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            });
        }
    });
    (addr, seen)
}

/// A worker fetches at most `FETCH_CONCURRENCY` (16) URLs at once, 8 for each of its two job
/// loops, and gives up on a URL after 30 s (a site that never answers fails that item, not
/// the scan). The URLs are listed in order, so `/hang` is alone in the last job, and the two
/// loops overlap on the four jobs of images (about 0.9 s each).
#[test]
fn a_url_scan_fetches_16_at_once_and_gives_up_on_a_url_after_30_s() {
    let (addr, most) = counting_image_server(Duration::from_millis(300));
    let dir = tmpdir("url-limits");
    let mut list = String::new();
    for i in 0..96 {
        list.push_str(&format!("http://{addr}/img/{i}.png\n"));
    }
    list.push_str(&format!("http://{addr}/hang\n"));
    let file = dir.join("urls.txt");
    std::fs::write(&file, list).unwrap();
    let started = Instant::now();
    let end = url_scan(
        &file,
        &dir.join("data"),
        &["--job-size", "24", "--allow-internal-host", "127.0.0.1"],
    );
    let took = started.elapsed();
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(
        (end["items"].as_u64(), end["items_failed"].as_u64()),
        (Some(97), Some(1)),
        "{end}"
    );
    // Both job loops fetch at once (more than one loop's 8), never more than 16 in all.
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((9..=16).contains(&most), "{most} URLs fetched at once");
    let data_arg = dir.join("data").to_str().unwrap().to_string();
    let rs = results(&["--data-dir", &data_arg], end["id"].as_i64().unwrap());
    let hung = rs
        .iter()
        .find(|r| r["key"].as_str().unwrap().ends_with("/hang"))
        .unwrap();
    assert!(
        hung["error"].as_str().unwrap().contains("timed out"),
        "{hung}"
    );
    // The scan waited the whole 30 s for that URL, and not much more (the images take a few
    // seconds beside it).
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(50),
        "the scan took {took:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scan id from a starting process's first line.
fn scan_id(first: &std::sync::mpsc::Receiver<String>) -> i64 {
    let line = first
        .recv_timeout(Duration::from_secs(60))
        .expect("the scan's first line");
    line.strip_prefix("safeguard: scan ")
        .and_then(|r| r.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no scan id in {line:?}"))
}

fn wait_for(store: &[&str], id: i64, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status(store, id);
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_scan_is_paused_resumed_and_cancelled() {
    let dir = tmpdir("steer");
    let media = dir.join("media");
    write_images(&media, 3000);
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let store = ["--data-dir", data_arg.as_str()];
    // One item per job: each job is a claim and a finish in the store, so the scan runs for
    // seconds and a pause shows between two jobs.
    let start = || {
        Worker::spawn(
            bin()
                .arg("scan")
                .arg(&media)
                .args([
                    "--all",
                    "--job-size",
                    "1",
                    "--no-progress",
                    "-j",
                    "1",
                    "--lease-secs",
                    "3",
                ])
                .args(store),
        )
    };
    let (mut w, first) = start();
    let id = scan_id(&first);
    wait_for(&store, id, "work started", |s| {
        s["items_done"].as_u64() > Some(3)
    });
    let paused: Value = serde_json::from_str(&run_ok(
        bin().args(["scan", "pause", &id.to_string()]).args(store),
    ))
    .unwrap();
    assert_eq!(paused["state"], "paused");
    // The job in hand finishes; then nothing moves while paused, and the worker waits.
    // The jobs in hand (one per job loop) finish; wait until nothing moves, however slow
    // the machine.
    let mut before = status(&store, id)["items_done"].as_u64().unwrap();
    let settled = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let now = status(&store, id)["items_done"].as_u64().unwrap();
        if now == before {
            break;
        }
        assert!(Instant::now() < settled, "still moving while paused");
        before = now;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let after = status(&store, id);
    assert_eq!(after["items_done"].as_u64(), Some(before), "{after}");
    assert_eq!(after["state"], "paused");
    assert!(before < 3000, "paused before the end");
    assert!(w.child.try_wait().unwrap().is_none(), "the worker waits");
    run_ok(bin().args(["scan", "resume", &id.to_string()]).args(store));
    w.wait_ok(Duration::from_secs(300));
    let done = status(&store, id);
    assert_eq!(
        (done["state"].as_str(), done["items_done"].as_u64()),
        (Some("done"), Some(3000))
    );

    // A second scan, cancelled mid-way: the worker stops and the results so far stay.
    let (w, first) = start();
    let id2 = scan_id(&first);
    assert_ne!(id2, id);
    wait_for(&store, id2, "work started", |s| {
        s["items_done"].as_u64() > Some(3)
    });
    run_ok(bin().args(["scan", "cancel", &id2.to_string()]).args(store));
    w.wait_ok(Duration::from_secs(60));
    let cancelled = status(&store, id2);
    assert_eq!(cancelled["state"], "cancelled");
    let n = cancelled["items_done"].as_u64().unwrap();
    assert!(n > 3 && n < 3000, "{cancelled}");
    assert_eq!(results(&store, id2).len() as u64, n);
    // Who paused, resumed and cancelled is in the audit log.
    let log = run_ok(bin().args(["audit", "export"]).args(store));
    for (scan, state) in [(id, "paused"), (id, "running"), (id2, "cancelled")] {
        let object = format!("scan:{scan}");
        assert!(
            log.lines()
                .any(|l| l.contains(&object) && l.contains(state) && l.contains("config_changed")),
            "no audit entry for {object} {state}:\n{log}"
        );
    }

    // A third, its starting process killed as soon as it named the scan (while listing,
    // most likely): `join --list` lists it again and finishes it, every item once.
    let (mut w, first) = start();
    let id3 = scan_id(&first);
    w.child.kill().unwrap();
    w.child.wait().unwrap();
    let (joined, _) = Worker::spawn(
        bin()
            .args([
                "scan",
                "join",
                &id3.to_string(),
                "--list",
                "--lease-secs",
                "3",
            ])
            .args(["--no-progress"])
            .args(store),
    );
    joined.wait_ok(Duration::from_secs(300));
    let third = status(&store, id3);
    assert_eq!(
        (
            third["state"].as_str(),
            third["items"].as_u64(),
            third["items_done"].as_u64()
        ),
        (Some("done"), Some(3000), Some(3000)),
        "{third}"
    );
    assert_eq!(results(&store, id3).len(), 3000);
    let _ = std::fs::remove_dir_all(&dir);
}
