//! The audit log through the API: the actions that must be recorded are, the signed head
//! verifies under the public key it names, inclusion and consistency proofs verify against
//! those roots, and only the `audit` (or `admin`) scope reads it.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;

async fn audit_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let c = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    (server_with(c).await, dir)
}

fn h32(v: &Value) -> [u8; 32] {
    let b = hex::decode(v.as_str().unwrap()).unwrap();
    b.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_actions_signed_heads_and_proofs_verify() {
    let (s, _dir) = audit_server().await;
    let auditor = s.key(&[Scope::Audit]);
    // Key creation through the API, a rule change, a bank and an import, a case decided,
    // approved: each recorded.
    let r = s
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "k", "scopes": ["match"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key_id = r.json()["key_id"].as_str().unwrap().to_string();
    let r = s.admin("DELETE", &format!("/v1/keys/{key_id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s
        .admin(
            "POST",
            "/v1/rules",
            Some(json!({"id": "r1", "mode": "shadow", "when": {"max_distance": 4}, "then": {"verdict": "block"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "HOTLINE", "kind": "csam"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = s
        .admin(
            "POST",
            "/c/bank/HOTLINE/signal",
            Some(json!({"pdq": BRIDGE_PDQ})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s
        .admin(
            "POST",
            "/v1/content",
            Some(json!({"id": "c1", "kind": "image", "account": "u1", "signals": {"pdq": BRIDGE_PDQ}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let case = r.json()["case_id"].as_i64().unwrap();
    s.confirm_case(case).await;
    s.approve_case(case).await;

    let r = s
        .call("GET", "/v1/audit/entries", Some(&auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let entries = r.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "key_created",
            "key_revoked",
            "rule_changed",
            "decision",
            "approval"
        ],
        "{entries:?}"
    );
    assert_eq!(entries[0]["object"], format!("key:{key_id}"));
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[3]["object"], format!("case:{case}"));
    assert_eq!(entries[3]["detail"], "confirmed");
    assert!(entries[4]["actor"].as_str().unwrap().starts_with("key:"));
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64);
    }

    // The head covers all five, and its signature verifies under the key it names.
    let h = s
        .call("GET", "/v1/audit/head", Some(&auditor), None)
        .await
        .json();
    assert_eq!(h["size"], 5);
    let key = safeguard_audit::VerifyingKey::from_hex(h["public_key"].as_str().unwrap()).unwrap();
    let sth = safeguard_audit::SignedTreeHead {
        head: safeguard_audit::TreeHead {
            size: 5,
            root: h32(&h["root"]),
            timestamp_ms: h["timestamp_ms"].as_i64().unwrap(),
        },
        signature: hex::decode(h["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    };
    sth.verify(&key).unwrap();
    // Every entry's inclusion proof leads to that root.
    for i in 0..5u64 {
        let p = s
            .call(
                "GET",
                &format!("/v1/audit/proof/inclusion?index={i}&size=5"),
                Some(&auditor),
                None,
            )
            .await
            .json();
        let path: Vec<[u8; 32]> = p["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(h32)
            .collect();
        assert_eq!(p["leaf_hash"], entries[i as usize]["leaf_hash"]);
        safeguard_audit::verify_inclusion(&h32(&p["leaf_hash"]), i, 5, &path, &sth.head.root)
            .unwrap();
    }
    // An evidence-free action later: the new head is consistent with the old one.
    s.admin(
        "POST",
        "/v1/keys",
        Some(json!({"name": "k2", "scopes": ["hash"]})),
    )
    .await;
    let h2 = s
        .call("POST", "/v1/audit/head", Some(&auditor), None)
        .await
        .json();
    assert_eq!(h2["size"], 6);
    let c = s
        .call(
            "GET",
            "/v1/audit/proof/consistency?first=5&second=6",
            Some(&auditor),
            None,
        )
        .await
        .json();
    assert_eq!(c["first_root"], h["root"]);
    let proof: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(h32).collect();
    safeguard_audit::verify_consistency(5, 6, &sth.head.root, &h32(&h2["root"]), &proof).unwrap();

    // Bad input is a 400 with a stable code; other scopes cannot read the log.
    for bad in [
        "/v1/audit/proof/inclusion?index=9&size=6",
        "/v1/audit/proof/inclusion?index=0&size=99",
        "/v1/audit/proof/inclusion?index=x&size=1",
        "/v1/audit/proof/consistency?first=6&second=5",
        "/v1/audit/entries?limit=0",
        "/v1/audit/entries?limit=5000",
    ] {
        let r = s.call("GET", bad, Some(&auditor), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.code(), "invalid_request", "{bad}");
    }
    let submitter = s.key(&[Scope::Submit]);
    let r = s
        .call("GET", "/v1/audit/head", Some(&submitter), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Paging.
    let p = s
        .call(
            "GET",
            "/v1/audit/entries?from=2&limit=2",
            Some(&auditor),
            None,
        )
        .await
        .json();
    assert_eq!(p["entries"][0]["seq"], 2);
    assert_eq!(p["next_from"], 4);
}
