//! Video through the service: HMA's `/h/hash`, `/m/lookup` (upload, `?url=` is covered by the
//! fetch tests' machinery, `?signal_type=vpdq`), `/m/raw_lookup`, `/m/compare`,
//! `/c/bank/{name}/content` and `/signal`, and the `/v1` equivalents, with the sample videos of
//! the vPDQ conformance set; plus limits and broken input.

use std::path::PathBuf;

use crate::common::{server, server_with, TestServer};
use safeguard_server::config::Config;
use serde_json::{json, Value};

/// The sample videos of the vPDQ conformance set, and whether they are the full set (14
/// videos) or the repository subset (`doorknob-hd-no-bar` and `test-padded-dimensions`). Found
/// as `safeguard_conformance::locate` finds the set: `$SAFEGUARD_CONFORMANCE` (which must then
/// hold `vpdq/videos`), else `../shared/conformance` beside the checkout, else the subset, which
/// `CI=true` refuses: CI must run the full set.
fn sample_videos() -> (PathBuf, bool) {
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Some(dir) = std::env::var_os("SAFEGUARD_CONFORMANCE") {
        let dir = PathBuf::from(dir).join("vpdq/videos");
        assert!(
            dir.is_dir(),
            "SAFEGUARD_CONFORMANCE names a set without vpdq/videos: {} not found",
            dir.display()
        );
        return (dir, true);
    }
    let shared = ws.join("../shared/conformance/vpdq/videos");
    if shared.is_dir() {
        return (shared, true);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI=true but the full vPDQ conformance set is missing: expected {} or \
         $SAFEGUARD_CONFORMANCE",
        shared.display()
    );
    (ws.join("testdata/conformance/vpdq/videos"), false)
}

/// A sample video present in the subset as well as the full set.
fn required(name: &str) -> Vec<u8> {
    let path = sample_videos().0.join(format!("{name}.mp4"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("sample video {}: {e}", path.display()))
}

/// A sample video of the full set only: `None`, with a printed reason, when only the
/// repository subset is here (never under `CI=true`, see [`sample_videos`]).
fn full_set_video(name: &str) -> Option<Vec<u8>> {
    let (dir, full) = sample_videos();
    if !full {
        eprintln!(
            "skipping the part that needs {name}: the full vPDQ conformance set is missing \
             (../shared/conformance or $SAFEGUARD_CONFORMANCE)"
        );
        return None;
    }
    let path = dir.join(format!("{name}.mp4"));
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("full set video {}: {e}", path.display())))
}

async fn bank(s: &TestServer, name: &str) {
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": name})))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
}

fn frames(vpdq: &str) -> Vec<safeguard_engine::VpdqFrame> {
    safeguard_vpdq::format::parse_json(vpdq).unwrap()
}

#[tokio::test]
async fn hma_hash_gives_video_md5_and_vpdq() {
    let s = server().await;
    let bytes = required("doorknob-hd-no-bar");
    let r = s.upload("/h/hash", "video", &bytes, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["video_md5", "vpdq"],
        "HMA's video signal types"
    );
    let md5 = safeguard_media::digest::digests(&bytes).md5;
    assert_eq!(v["video_md5"], hex::encode(md5));
    // One hash a second of a 4-second, 30 fps clip: frames 0, 30, 60, 90.
    let f = frames(v["vpdq"].as_str().unwrap());
    assert_eq!(f.len(), 4);
    // The value is in canonical form: formatting it again gives the same text.
    assert_eq!(
        safeguard_vpdq::format::to_json(&f),
        v["vpdq"].as_str().unwrap()
    );
    // ?types= narrows the output; video_md5 alone needs no decoding.
    let r = s
        .upload("/h/hash?types=video_md5", "video", &bytes, &[])
        .await;
    assert_eq!(r.json(), json!({"video_md5": hex::encode(md5)}));
    // A field named `file` with content_type=video is a video too.
    let r = s
        .upload("/h/hash?content_type=video", "file", &bytes, &[])
        .await;
    assert_eq!(r.json()["vpdq"], v["vpdq"]);
}

#[tokio::test]
async fn videos_in_banks_match_their_variants_and_not_other_videos() {
    let s = server().await;
    bank(&s, "VIDEOS").await;
    let doorknob = required("doorknob-hd-no-bar");
    let pattern = required("test-padded-dimensions");
    let r = s
        // HMA's add answers only `video_md5` unless `types` chooses (issue 12 item 14).
        .upload(
            "/c/bank/VIDEOS/content?types=video_md5,vpdq",
            "video",
            &doorknob,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let door_id = r.json()["id"].as_i64().unwrap();
    let signals = r.json()["signals"].clone();
    assert!(
        signals["vpdq"].is_string() && signals["video_md5"].is_string(),
        "{signals}"
    );

    // The same video: vPDQ matches at 100 %/100 %, and its MD5 matches too.
    let r = s.upload("/m/lookup", "video", &doorknob, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["vpdq"]["VIDEOS"],
        json!([{"bank_content_id": door_id, "distance": "100%[100%]",
                "query_match_percent": 100.0, "compared_match_percent": 100.0}])
    );
    assert_eq!(v["video_md5"]["VIDEOS"][0]["bank_content_id"], door_id);

    // An unrelated video matches nothing.
    let r = s.upload("/m/lookup", "video", &pattern, &[]).await;
    assert_eq!(r.json(), json!({"video_md5": {}, "vpdq": {}}));

    // Variants from the full sample set: a grey chair clip banked, its sepia version looked up.
    if let (Some(grey), Some(sepia), Some(logo)) = (
        full_set_video("chair-22-sd-grey-bar"),
        full_set_video("chair-22-sd-sepia-bar"),
        full_set_video("chair-22-with-large-logo-bar"),
    ) {
        let r = s
            .upload("/c/bank/VIDEOS/content", "video", &grey, &[])
            .await;
        let grey_id = r.json()["id"].as_i64().unwrap();
        let r = s.upload("/m/lookup", "video", &sepia, &[]).await;
        let hits = r.json()["vpdq"]["VIDEOS"].clone();
        assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
        assert_eq!(hits[0]["bank_content_id"], grey_id);
        assert!(hits[0]["query_match_percent"].as_f64().unwrap() >= 80.0);
        // The large-logo clip shares about 10 % of its frames: no match.
        let r = s.upload("/m/lookup", "video", &logo, &[]).await;
        assert_eq!(r.json()["vpdq"], json!({}));
    }

    // By value: GET /m/lookup?signal_type=vpdq&signal=<HMA's JSON form>.
    let vpdq = signals["vpdq"].as_str().unwrap();
    let q = url_encode(vpdq);
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=vpdq&signal={q}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["VIDEOS"][0]["bank_content_id"], door_id);
    // Per-lookup thresholds: nothing reaches 100.5 %, and bad values are refused.
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=vpdq&signal={q}&vpdq_compared_match_percent=100.5"),
            None,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (400, "invalid_vpdq_threshold")
    );
    // raw_lookup with distances.
    let r = s
        .admin(
            "GET",
            &format!("/m/raw_lookup?signal_type=vpdq&signal={q}&include_distance=true"),
            None,
        )
        .await;
    assert_eq!(r.json()["matches"][0]["distance"], "100%[100%]");
    // A malformed value is a 400 with a reason.
    let r = s
        .admin(
            "GET",
            "/m/lookup?signal_type=vpdq&signal=%5B%22abc%22%5D",
            None,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (400, "invalid_signal")
    );
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn vpdq_signals_by_value_and_compare() {
    let s = server().await;
    bank(&s, "BYVALUE").await;
    let h1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    // Every bit flipped: 256 bits from h1.
    let h2 = "07070f311f0b57b0f9c8f5ddfc709c0f4c91d12a699de1e2cc194c63b16364dd";
    let value = format!("[\"{h1},100,0.0\", \"{h2},90,1.0\"]");
    let r = s
        .admin(
            "POST",
            "/c/bank/BYVALUE/signal",
            Some(json!({"vpdq": value})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["signals"]["vpdq"], value);
    // Compare: the first value is the query.
    let query = format!("[\"{h1},100,0.0\"]");
    let r = s
        .admin("POST", "/m/compare", Some(json!({"vpdq": [query, value]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["vpdq"],
        json!([true, {"query_match_percent": 100.0, "compared_match_percent": 50.0}])
    );
    // /v1/lookup by value, with the README's convention as per-lookup thresholds.
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "vpdq", "signal": query, "bypass_enabled_ratio": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = &r.json()["matches"][0];
    assert_eq!(
        (
            m["signal_type"].clone(),
            m["query_match_percent"].clone(),
            m["compared_match_percent"].clone()
        ),
        (json!("vpdq"), json!(100.0), json!(50.0))
    );
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(
                json!({"signal_type": "vpdq", "signal": query, "bypass_enabled_ratio": true,
                        "vpdq": {"query_match_percent": 0.0, "compared_match_percent": 80.0}}),
            ),
        )
        .await;
    assert_eq!(r.json()["matches"], json!([]));
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "vpdq", "signal": query, "vpdq": {"frame_distance": 65}})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (400, "invalid_vpdq_threshold")
    );
    // The signal type is listed.
    let r = s.admin("GET", "/c/signal_type", None).await;
    assert!(r.text().contains("\"vpdq\""));
    let r = s
        .admin("GET", "/m/index/status?signal_type=vpdq", None)
        .await;
    assert_eq!(r.json()["vpdq"]["size"], 1);
}

#[tokio::test]
async fn v1_hashes_stores_and_looks_up_videos() {
    let s = server().await;
    let doorknob = required("doorknob-hd-no-bar");
    let r = s.upload("/v1/hash", "file", &doorknob, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let h = r.json();
    assert_eq!(h["content_type"], "video");
    assert_eq!(h["frames_hashed"], 4);
    assert_eq!(
        (h["width"].clone(), h["height"].clone()),
        (json!(1280), json!(720))
    );
    assert_eq!(frames(h["vpdq"].as_str().unwrap()).len(), 4);

    let r = s
        .admin("POST", "/v1/banks", Some(json!({"name": "V1_VIDEOS"})))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = s
        .upload(
            "/v1/banks/V1_VIDEOS/contents/upload",
            "file",
            &doorknob,
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    let id = c["id"].as_i64().unwrap();
    let sig: Vec<&String> = c["signals"].as_object().unwrap().keys().collect();
    assert_eq!(sig, vec!["md5", "sha1", "sha256", "vpdq"]);

    let r = s.upload("/v1/lookup/upload", "file", &doorknob, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let by_type: Vec<(String, i64)> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["signal_type"].as_str().unwrap().to_string(),
                m["content_id"].as_i64().unwrap(),
            )
        })
        .collect();
    for t in ["md5", "sha1", "sha256", "vpdq"] {
        assert!(by_type.contains(&(t.to_string(), id)), "{t}: {v}");
    }
    let pattern = required("test-padded-dimensions");
    let r = s.upload("/v1/lookup/upload", "file", &pattern, &[]).await;
    assert_eq!(r.json()["matches"], json!([]));
}

#[tokio::test]
async fn over_limit_and_broken_videos_get_clear_4xx() {
    let doorknob = required("doorknob-hd-no-bar");
    // Over the upload limit (a separate, larger limit than images' body limit).
    let mut c = Config::default();
    c.video.max_bytes = 100_000;
    c.limits.max_body_bytes = 50_000;
    let s = server_with(c).await;
    let r = s
        .admin("POST", "/v1/banks", Some(json!({"name": "VIDEO_LIMIT"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for uri in [
        "/h/hash",
        "/m/lookup",
        "/c/bank/VIDEO_LIMIT/content",
        "/v1/hash",
        "/v1/lookup/upload",
        "/v1/banks/VIDEO_LIMIT/contents/upload",
    ] {
        let field = if uri.starts_with("/v1") {
            "file"
        } else {
            "video"
        };
        let r = s.upload(uri, field, &doorknob, &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (413, "payload_too_large"),
            "{uri}: {}",
            r.text()
        );
    }
    // Between the image and the video body limits: a video is accepted.
    let small = required("test-padded-dimensions");
    assert!(small.len() > 50_000 && small.len() < 100_000);
    let r = s.upload("/h/hash", "video", &small, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Frames wider or taller than `video.max_side`, images beyond `limits.max_image_side`:
    // the configuration reaches the decoder, and the answer is 413 with the limit's code.
    let mut c = Config::default();
    c.video.max_side = 32;
    c.limits.max_image_side = 16;
    let s = server_with(c).await;
    let r = s.upload("/v1/hash", "file", &small, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (413, "video_too_large"),
        "{}",
        r.text()
    );
    let image = crate::common::sample_image(
        "photos/images/pdq/data/reg-test-input/labelme-subset/q0122.jpg",
    );
    let r = s.upload("/v1/hash", "file", &image, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (413, "too_large"),
        "{}",
        r.text()
    );

    // Too long.
    let mut c = Config::default();
    c.video.max_duration_secs = 1;
    let s = server_with(c).await;
    let r = s.upload("/h/hash", "video", &doorknob, &[]).await;
    // The frame cap follows the duration (60 frames a second): whichever the decoder meets
    // first is reported.
    assert_eq!(r.status.as_u16(), 413, "{}", r.text());
    assert!(
        ["video_too_long", "too_many_frames"].contains(&r.code().as_str()),
        "{}",
        r.text()
    );

    let s = server().await;
    // Truncated. (The native route refuses what it cannot decode; HMA's routes give the
    // file's MD5 alone, as HMA does: `hma_video_field_takes_the_md5_of_undecodable_bytes` in
    // api.rs.)
    let r = s
        .upload("/v1/hash", "video", &doorknob[..doorknob.len() / 3], &[])
        .await;
    assert!(r.status.is_client_error(), "{}", r.text());
    assert!(
        ["truncated_video", "corrupt_video"].contains(&r.code().as_str()),
        "{}",
        r.text()
    );
    // Not a video at all.
    let r = s
        .upload("/v1/hash", "video", b"this is plain text, not a video", &[])
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (415, "unsupported_video"),
        "{}",
        r.text()
    );
    // Empty.
    let r = s.upload("/v1/lookup/upload", "video", b"", &[]).await;
    assert!(r.status.is_client_error(), "{}", r.text());
    // The server still answers.
    let r = s.upload("/h/hash", "video", &doorknob, &[]).await;
    assert_eq!(r.status, 200);
    let _: Value = r.json();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_by_url_are_hashed_banked_and_looked_up() {
    // A local file server, allow-listed explicitly (internal addresses are refused otherwise).
    let video = required("doorknob-hd-no-bar");
    let served = video.clone();
    let files = axum::Router::new().route(
        "/clip",
        axum::routing::get(move || {
            let b = served.clone();
            async move { b }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, files).await });
    let mut config = Config::default();
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    let s = server_with(config).await;
    let url = format!("http://127.0.0.1:{}/clip", addr.port());

    // Without content_type the bytes decide: not an image, so a video.
    let r = s.admin("GET", &format!("/h/hash?url={url}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(frames(r.json()["vpdq"].as_str().unwrap()).len(), 4);
    bank(&s, "FETCHED").await;
    let r = s
        .admin(
            "POST",
            &format!("/c/bank/FETCHED/content?url={url}&content_type=video"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?url={url}&content_type=video"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["vpdq"]["FETCHED"][0]["bank_content_id"], id);
    assert_eq!(r.json()["vpdq"]["FETCHED"][0]["distance"], "100%[100%]");
    // signal_type narrows a URL lookup to one type, as in HMA.
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?url={url}&content_type=video&signal_type=vpdq"),
            None,
        )
        .await;
    assert_eq!(r.json()["FETCHED"][0]["bank_content_id"], id);
}

#[tokio::test]
async fn vpdq_thresholds_come_from_the_configuration() {
    let dir = std::env::temp_dir().join(format!("sg-vpdq-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The upstream README's convention: 80 % on the compared (banked) side.
    let good = dir.join("readme.toml");
    std::fs::write(
        &good,
        "[vpdq]\nquery_match_percent = 0.0\ncompared_match_percent = 80.0\n[video]\nseconds_per_hash = 0.0\n",
    )
    .unwrap();
    let c = Config::load(Some(&good), |_| None).unwrap();
    c.validate().unwrap();
    assert_eq!(
        (
            c.vpdq.query_match_percent,
            c.vpdq.compared_match_percent,
            c.vpdq.frame_distance
        ),
        (0.0, 80.0, 31)
    );
    for bad in [
        "[vpdq]\nframe_distance = 65\n",
        "[vpdq]\nquery_match_percent = 101.0\n",
        "[video]\nseconds_per_hash = -1.0\n",
        "[video]\nmax_bytes = 0\n",
    ] {
        let p = dir.join("bad.toml");
        std::fs::write(&p, bad).unwrap();
        let c = Config::load(Some(&p), |_| None).unwrap();
        assert!(c.validate().is_err(), "{bad}");
    }
    let p = dir.join("typo.toml");
    std::fs::write(&p, "[vpdq]\nquery_percent = 50.0\n").unwrap();
    assert!(
        Config::load(Some(&p), |_| None).is_err(),
        "unknown keys are refused"
    );

    // A query holding 1 of the banked video's 2 frames: 100 % of the query, 50 % of the bank.
    let h1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let h2 = "07070f311f0b57b0f9c8f5ddfc709c0f4c91d12a699de1e2cc194c63b16364dd";
    let banked = format!("[\"{h1},100,0.0\", \"{h2},100,1.0\"]");
    let query = url_encode(&format!("[\"{h1},100,0.0\"]"));
    for (config, matches) in [(Config::default(), 1), (c_readme(&good), 0)] {
        let s = server_with(config).await;
        bank(&s, "CONF").await;
        let r = s
            .admin("POST", "/c/bank/CONF/signal", Some(json!({"vpdq": banked})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = s
            .admin(
                "GET",
                &format!("/m/lookup?signal_type=vpdq&signal={query}"),
                None,
            )
            .await;
        let found = r.json()["CONF"].as_array().map_or(0, Vec::len);
        assert_eq!(found, matches, "{}", r.text());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn c_readme(path: &std::path::Path) -> Config {
    Config::load(Some(path), |_| None).unwrap()
}

#[tokio::test]
async fn animated_gifs_are_videos_with_a_first_frame_pdq() {
    let s = server().await;
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/video/testsrc2-48x32-animated.gif");
    let gif = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let r = s.upload("/v1/hash", "file", &gif, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let h = r.json();
    assert_eq!(h["content_type"], "video");
    assert!(h["frames_hashed"].as_u64().unwrap() >= 1, "{h}");
    // The first frame's PDQ is what hashing the file as an image gives.
    let r = s.upload("/h/hash?types=pdq", "photo", &gif, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let as_image = r.json()["pdq"].as_str().unwrap().to_string();
    let first = &h["first_frame"];
    if first["quality"].as_u64().unwrap() >= 50 {
        assert_eq!(first["pdq"], as_image);
    } else {
        // HMA gives "" for a PDQ under quality 50.
        assert_eq!(as_image, "");
    }
}
