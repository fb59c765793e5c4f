//! The OpenAPI document, built from one table of routes that the tests also use (the
//! authorization matrix and the coverage check).

use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Scope;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Public,
    /// A key with this scope (or `admin`).
    Scope(Scope),
}

/// Every route: method, path (axum syntax), access, summary.
pub const ROUTES: &[(&str, &str, Access, &str)] = &[
    // Acting on matches
    (
        "POST",
        "/v1/content",
        Access::Scope(Scope::Submit),
        "Submit content (JSON, or multipart `media` + `json`): match every enabled bank, apply the policy, record the verdict; a re-submitted id answers its stored result",
    ),
    (
        "POST",
        "/v1/content/batch",
        Access::Scope(Scope::Submit),
        "Submit up to 1,000 items with precomputed signals; answers per item",
    ),
    (
        "GET",
        "/v1/content/{id}",
        Access::Scope(Scope::Submit),
        "The recorded result of a submission",
    ),
    // Protecting child accounts
    (
        "POST",
        "/v1/contact/decide",
        Access::Scope(Scope::Submit),
        "May this account message, request, suggest or see that one? Ofcom ICU F1/F2 defaults under the [contact] policy: allow, deny or allow_with_prompt, with the measure",
    ),
    (
        "PUT",
        "/v1/accounts/{id}",
        Access::Scope(Scope::Submit),
        "Keep an account's age band and assurance in Safeguard, so contact decisions can name it by id",
    ),
    (
        "GET",
        "/v1/accounts/{id}",
        Access::Scope(Scope::Submit),
        "A stored account",
    ),
    (
        "DELETE",
        "/v1/accounts/{id}",
        Access::Scope(Scope::Submit),
        "Erase a stored account and every relationship it is part of",
    ),
    (
        "PUT",
        "/v1/accounts/{id}/relationships/{other}",
        Access::Scope(Scope::Submit),
        "Set how two accounts are related (connected, mutual, none, blocked; symmetric)",
    ),
    (
        "GET",
        "/v1/accounts/{id}/relationships/{other}",
        Access::Scope(Scope::Submit),
        "How two accounts are related (none when nothing is stored)",
    ),
    (
        "POST",
        "/v1/urls/check",
        Access::Scope(Scope::Submit),
        "Check up to 1,000 URLs against the url banks (Safe Browsing canonicalisation; page, folder and whole-domain entries); with a submission object, a match is recorded and acted on by the policy",
    ),
    (
        "POST",
        "/v1/text/check",
        Access::Scope(Scope::Submit),
        "Find the URLs in message text (hxxp, [.], ' dot ', spaced dots and full-width forms undone) and check them against the url banks; with a submission object, a match is recorded and acted on by the policy",
    ),
    (
        "POST",
        "/v1/events",
        Access::Scope(Scope::Submit),
        "Contact-risk signals: score a batch of up to 1,000 events ({\"events\": [...]}); answers each subject account's score with its contributing features, and any review or alert threshold crossed",
    ),
    (
        "GET",
        "/v1/rules",
        Access::Scope(Scope::Admin),
        "The policy rules in force, in order, and the built-in defaults",
    ),
    (
        "PUT",
        "/v1/rules",
        Access::Scope(Scope::Admin),
        "Replace the rule set (JSON {\"rule\": [...]}, or a TOML rules file with Content-Type: application/toml)",
    ),
    (
        "POST",
        "/v1/rules",
        Access::Scope(Scope::Admin),
        "Create one rule (?position=N, else last)",
    ),
    (
        "GET",
        "/v1/rules/{id}",
        Access::Scope(Scope::Admin),
        "One rule with every stored version",
    ),
    (
        "PUT",
        "/v1/rules/{id}",
        Access::Scope(Scope::Admin),
        "Change one rule (a changed spec gets the next version)",
    ),
    (
        "DELETE",
        "/v1/rules/{id}",
        Access::Scope(Scope::Admin),
        "Remove one rule",
    ),
    (
        "GET",
        "/v1/cases",
        Access::Scope(Scope::Admin),
        "Cases, newest first (?state, queue, account, since, until, before, limit)",
    ),
    (
        "GET",
        "/v1/cases/{id}",
        Access::Scope(Scope::Admin),
        "One case: its items, matches, evidence records and history",
    ),
    (
        "POST",
        "/v1/cases/{id}/transition",
        Access::Scope(Scope::Admin),
        "Move a case to another state ({\"to\", \"note\", \"decision\"}); refused unless the state machine allows it",
    ),
    (
        "POST",
        "/v1/cases/{id}/approve",
        Access::Scope(Scope::Approve),
        "Approve a confirmed decision as a second person (the two-person rule); the key that decided is refused; only an approved case can become reported",
    ),
    // Backfill scans (docs/scans.md), started and worked by `safeguard scan` processes
    (
        "GET",
        "/v1/scans",
        Access::Scope(Scope::Admin),
        "Backfill scans, newest first (?limit, 1 to 1000, default 100)",
    ),
    (
        "GET",
        "/v1/scans/{id}",
        Access::Scope(Scope::Admin),
        "A scan's state and progress: items listed, done, failed and matched, rate and estimated seconds left",
    ),
    (
        "GET",
        "/v1/scans/{id}/results",
        Access::Scope(Scope::Admin),
        "A scan's results by key (?after=KEY, limit 1 to 1000): hashes or the error, and the verdict of a match",
    ),
    (
        "POST",
        "/v1/scans/{id}/pause",
        Access::Scope(Scope::Admin),
        "Stop handing out jobs; jobs being worked on finish",
    ),
    (
        "POST",
        "/v1/scans/{id}/resume",
        Access::Scope(Scope::Admin),
        "Hand out jobs again",
    ),
    (
        "POST",
        "/v1/scans/{id}/cancel",
        Access::Scope(Scope::Admin),
        "Stop for good; results so far are kept (409 scan_state_conflict from done or cancelled)",
    ),
    // Filing to NCMEC's CyberTipline (docs/reporting.md)
    (
        "GET",
        "/v1/cases/{id}/reports/ncmec/preview",
        Access::Scope(Scope::Admin),
        "The exact <report> XML that filing the case would submit to NCMEC (also before approval)",
    ),
    (
        "POST",
        "/v1/cases/{id}/reports/ncmec",
        Access::Scope(Scope::Admin),
        "File an approved, confirmed case to NCMEC in the background (202 {\"filing_id\", \"state\"}); a case's existing filing is returned, not filed again",
    ),
    (
        "GET",
        "/v1/reports/{id}",
        Access::Scope(Scope::Admin),
        "A filing: phase, NCMEC report and file ids, abandoned reports, last error",
    ),
    (
        "POST",
        "/v1/reports/{id}/retract",
        Access::Scope(Scope::Admin),
        "Withdraw a filing that NCMEC has not finished",
    ),
    (
        "GET",
        "/v1/figures",
        Access::Scope(Scope::Audit),
        "Transparency figures of a period (from, to: Unix ms; format json or csv), computed from the store",
    ),
    (
        "GET",
        "/v1/cases/{id}/referral",
        Access::Scope(Scope::Admin),
        "Where the case's report goes (ncmec, nca or both): the recorded choice, else the policy's",
    ),
    (
        "POST",
        "/v1/cases/{id}/referral",
        Access::Scope(Scope::Admin),
        "Set where this case's report goes, with a reason ({to, reason}); recorded on its history",
    ),
    (
        "GET",
        "/v1/cases/{id}/reports/nca/priority",
        Access::Scope(Scope::Admin),
        "UK NCA priority level (1-3) of a case by the rules, why, and its deadline clock",
    ),
    (
        "POST",
        "/v1/cases/{id}/reports/nca/bundle",
        Access::Scope(Scope::Admin),
        "The approved case as a Schedule 1 report with its media, signed and encrypted to an age recipient, for the NCA's portal",
    ),
    (
        "POST",
        "/v1/cases/{id}/reports/nca/reference",
        Access::Scope(Scope::Admin),
        "Record the NCA's reference for the case's report; the case becomes reported",
    ),
    (
        "GET",
        "/v1/cases/{id}/reports/nca/send",
        Access::Scope(Scope::Admin),
        "Where the case's send through the NCA's API stands: none, pending, failed or sent, with the reference or the last error",
    ),
    (
        "POST",
        "/v1/cases/{id}/reports/nca/send",
        Access::Scope(Scope::Admin),
        "Send the approved case's report through the NCA's HTTPS API ({authorised_person, declared_by, platform}; {} resumes a send cut off); the reference is recorded and the case becomes reported",
    ),
    (
        "GET",
        "/v1/reports/nca/signing_key",
        Access::Scope(Scope::Admin),
        "The public key that signs NCA bundles",
    ),
    (
        "GET",
        "/v1/audit/head",
        Access::Scope(Scope::Audit),
        "The newest signed tree head of the audit log (signing one first if the log grew), with the Ed25519 public key",
    ),
    (
        "POST",
        "/v1/audit/head",
        Access::Scope(Scope::Audit),
        "Sign a tree head of the audit log now",
    ),
    (
        "GET",
        "/v1/audit/entries",
        Access::Scope(Scope::Audit),
        "Audit log entries from `from`, at most `limit` (1,000), with their recorded leaf hashes",
    ),
    (
        "GET",
        "/v1/audit/proof/inclusion",
        Access::Scope(Scope::Audit),
        "RFC 6962 inclusion proof of entry `index` in the tree of `size` entries",
    ),
    (
        "GET",
        "/v1/audit/proof/consistency",
        Access::Scope(Scope::Audit),
        "RFC 6962 consistency proof between the trees of `first` and `second` entries",
    ),
    (
        "POST",
        "/v1/cases/{id}/legal_hold",
        Access::Scope(Scope::Admin),
        "Place or lift a legal hold ({\"hold\": true|false}); a hold stops the evidence's retention clock",
    ),
    (
        "GET",
        "/v1/evidence/{object_id}",
        Access::Scope(Scope::Admin),
        "Read one evidence object, decrypted; every read is logged",
    ),
    (
        "GET",
        "/v1/webhooks",
        Access::Scope(Scope::Admin),
        "Webhook endpoints",
    ),
    (
        "POST",
        "/v1/webhooks",
        Access::Scope(Scope::Admin),
        "Register an endpoint ({\"url\", \"event_types\", \"secret\"?}); a generated secret is shown once",
    ),
    (
        "GET",
        "/v1/webhooks/{id}",
        Access::Scope(Scope::Admin),
        "One endpoint, with its dead-letter count",
    ),
    (
        "PATCH",
        "/v1/webhooks/{id}",
        Access::Scope(Scope::Admin),
        "Enable or disable an endpoint ({\"enabled\": bool})",
    ),
    (
        "DELETE",
        "/v1/webhooks/{id}",
        Access::Scope(Scope::Admin),
        "Remove an endpoint and its pending deliveries",
    ),
    (
        "POST",
        "/v1/webhooks/{id}/secret",
        Access::Scope(Scope::Admin),
        "Rotate the signing secret ({\"secret\"?} or no body: generated, shown once); the replaced secret keeps signing beside it until DELETE .../secret/previous",
    ),
    (
        "DELETE",
        "/v1/webhooks/{id}/secret/previous",
        Access::Scope(Scope::Admin),
        "End a rotation's overlap: only the current secret signs",
    ),
    (
        "GET",
        "/v1/webhooks/{id}/dead",
        Access::Scope(Scope::Admin),
        "An endpoint's dead-letter list",
    ),
    (
        "POST",
        "/v1/webhooks/{id}/dead/redrive",
        Access::Scope(Scope::Admin),
        "Redeliver dead letters ({\"delivery_ids\": [...]}? else all), in their original order",
    ),
    // Hash lists
    (
        "POST",
        "/v1/banks/{name}/import",
        Access::Scope(Scope::Curate),
        "Import a hash list (body; ?format=plain|csv|hma|ncmec|stopncii and options), all or nothing",
    ),
    (
        "GET",
        "/v1/banks/{name}/export",
        Access::Scope(Scope::Curate),
        "Export a bank as a hash list (?format=..., ?only=types)",
    ),
    (
        "GET",
        "/v1/banks/{name}/provenance",
        Access::Scope(Scope::Curate),
        "Where one hash came from: every source, with first/last seen and withdrawal",
    ),
    // Hash-sharing exchanges
    (
        "GET",
        "/v1/exchanges",
        Access::Scope(Scope::Curate),
        "Every configured exchange: bank, checkpoint, last success, last error, last run",
    ),
    (
        "GET",
        "/v1/exchanges/{name}",
        Access::Scope(Scope::Curate),
        "One exchange's status",
    ),
    (
        "POST",
        "/v1/exchanges/{name}/run",
        Access::Scope(Scope::Admin),
        "Start a run now (202; ?wait=true answers the run's report); 409 while one runs",
    ),
    (
        "GET",
        "/v1/exchanges/{name}/feedback",
        Access::Scope(Scope::Curate),
        "The feedback recorded for the exchange's entries (reviewers' false positives), with what became of each: ?status=pending|sent|failed|cancelled, after, limit",
    ),
    (
        "POST",
        "/v1/exchanges/{name}/feedback/retry",
        Access::Scope(Scope::Curate),
        "Make the exchange's failed feedback rows pending again, due now: {retried}",
    ),
    (
        "POST",
        "/v1/exchanges/{name}/feedback",
        Access::Scope(Scope::Curate),
        "Send feedback on an entry to the exchange (NCMEC vote, StopNCII feedback value)",
    ),
    (
        "GET",
        "/c/exchanges/apis",
        Access::Scope(Scope::Curate),
        "HMA: the exchange API names Safeguard speaks",
    ),
    (
        "GET",
        "/c/exchanges/api/{name}",
        Access::Scope(Scope::Curate),
        "HMA: whether an exchange API's credentials are set",
    ),
    (
        "POST",
        "/c/exchanges/api/{name}",
        Access::Scope(Scope::Curate),
        "HMA: set an exchange API's credentials (501: Safeguard keeps credentials per exchange, in `api_json`)",
    ),
    (
        "GET",
        "/c/exchanges",
        Access::Scope(Scope::Curate),
        "HMA: every exchange name (configuration file and API-created)",
    ),
    (
        "POST",
        "/c/exchanges",
        Access::Scope(Scope::Curate),
        "HMA: create an exchange ({bank, api, api_json}); credentials sealed at rest and never shown",
    ),
    (
        "GET",
        "/c/exchange/{name}",
        Access::Scope(Scope::Curate),
        "HMA: one exchange's configuration, without credentials",
    ),
    (
        "PUT",
        "/c/exchange/{name}",
        Access::Scope(Scope::Curate),
        "HMA: edit an API-created exchange ({enabled}, and api_json); 409 for the configuration file's",
    ),
    (
        "DELETE",
        "/c/exchange/{name}",
        Access::Scope(Scope::Curate),
        "HMA: delete an API-created exchange (its bank stays); 409 for the configuration file's",
    ),
    (
        "GET",
        "/c/exchange/{name}/status",
        Access::Scope(Scope::Curate),
        "HMA: one exchange's fetch status (HMA's FetchStatus)",
    ),
    (
        "GET",
        "/status",
        Access::Public,
        "Readiness: 200 I-AM-ALIVE once the indexes are loaded, else 503",
    ),
    (
        "GET",
        "/status/live",
        Access::Public,
        "Liveness: 200 while the process answers",
    ),
    (
        "GET",
        "/openapi.json",
        Access::Scope(Scope::Any),
        "This document",
    ),
    (
        "GET",
        "/openapi/openapi.json",
        Access::Scope(Scope::Any),
        "This document, at the path HMA serves its own (flask-openapi3's doc_prefix)",
    ),
    (
        "GET",
        "/metrics",
        Access::Scope(Scope::Any),
        "Prometheus metrics",
    ),
    // HMA-compatible
    (
        "GET",
        "/h/hash",
        Access::Scope(Scope::Hash),
        "HMA: hash the media at ?url=",
    ),
    (
        "POST",
        "/h/hash",
        Access::Scope(Scope::Hash),
        "HMA: hash an upload (multipart field photo or video; video gives video_md5 and vpdq)",
    ),
    (
        "GET",
        "/m/lookup",
        Access::Scope(Scope::Match),
        "HMA: look up ?signal_type=&signal= or ?url=",
    ),
    (
        "POST",
        "/m/lookup",
        Access::Scope(Scope::Match),
        "HMA: hash an upload (photo or video) and look it up",
    ),
    (
        "GET",
        "/m/raw_lookup",
        Access::Scope(Scope::Match),
        "HMA: look up without bank rules",
    ),
    (
        "POST",
        "/m/compare",
        Access::Scope(Scope::Match),
        "HMA: compare two hashes",
    ),
    (
        "GET",
        "/m/index/status",
        Access::Scope(Scope::Match),
        "HMA: index sizes",
    ),
    (
        "GET",
        "/c/banks",
        Access::Scope(Scope::Curate),
        "HMA: list banks",
    ),
    (
        "POST",
        "/c/banks",
        Access::Scope(Scope::Curate),
        "HMA: create a bank",
    ),
    (
        "GET",
        "/c/bank/{name}",
        Access::Scope(Scope::Curate),
        "HMA: get a bank",
    ),
    (
        "PUT",
        "/c/bank/{name}",
        Access::Scope(Scope::Curate),
        "HMA: rename or change a bank's ratio",
    ),
    (
        "DELETE",
        "/c/bank/{name}",
        Access::Scope(Scope::Curate),
        "HMA: delete a bank",
    ),
    (
        "POST",
        "/c/bank/{name}/content",
        Access::Scope(Scope::Curate),
        "HMA: add content by upload or url",
    ),
    (
        "GET",
        "/c/bank/{name}/content/{id}",
        Access::Scope(Scope::Curate),
        "HMA: get a content item",
    ),
    (
        "PUT",
        "/c/bank/{name}/content/{id}",
        Access::Scope(Scope::Curate),
        "HMA: change disable_until_ts or note",
    ),
    (
        "DELETE",
        "/c/bank/{name}/content/{id}",
        Access::Scope(Scope::Curate),
        "HMA: delete a content item",
    ),
    (
        "POST",
        "/c/bank/{name}/signal",
        Access::Scope(Scope::Curate),
        "HMA: add content by signal values",
    ),
    (
        "GET",
        "/c/signal_type",
        Access::Scope(Scope::Curate),
        "HMA: list signal types",
    ),
    (
        "PUT",
        "/c/signal_type/{name}",
        Access::Scope(Scope::Curate),
        "HMA: set a signal type's ratio (no effect)",
    ),
    (
        "GET",
        "/c/content_type",
        Access::Scope(Scope::Curate),
        "HMA: list content types",
    ),
    // Native
    (
        "POST",
        "/v1/hash",
        Access::Scope(Scope::Hash),
        "Hash an image (PDQ, quality, digests) or a video (vPDQ, digests)",
    ),
    (
        "POST",
        "/v1/lookup",
        Access::Scope(Scope::Match),
        "Look up one signal",
    ),
    (
        "POST",
        "/v1/lookup/upload",
        Access::Scope(Scope::Match),
        "Hash an image or video and look up all its signals",
    ),
    (
        "GET",
        "/v1/index/status",
        Access::Scope(Scope::Match),
        "Index sizes, memory, freshness",
    ),
    (
        "GET",
        "/v1/banks",
        Access::Scope(Scope::Curate),
        "List banks",
    ),
    (
        "POST",
        "/v1/banks",
        Access::Scope(Scope::Curate),
        "Create a bank",
    ),
    (
        "GET",
        "/v1/banks/{name}",
        Access::Scope(Scope::Curate),
        "Get a bank",
    ),
    (
        "PATCH",
        "/v1/banks/{name}",
        Access::Scope(Scope::Curate),
        "Change a bank",
    ),
    (
        "DELETE",
        "/v1/banks/{name}",
        Access::Scope(Scope::Curate),
        "Delete a bank and its content",
    ),
    (
        "GET",
        "/v1/banks/{name}/contents",
        Access::Scope(Scope::Curate),
        "List a bank's content (cursor: ?after=&limit=)",
    ),
    (
        "POST",
        "/v1/banks/{name}/contents",
        Access::Scope(Scope::Curate),
        "Add content by signal values",
    ),
    (
        "POST",
        "/v1/banks/{name}/contents/upload",
        Access::Scope(Scope::Curate),
        "Add content by uploading the image",
    ),
    (
        "GET",
        "/v1/banks/{name}/contents/{id}",
        Access::Scope(Scope::Curate),
        "Get a content item",
    ),
    (
        "PATCH",
        "/v1/banks/{name}/contents/{id}",
        Access::Scope(Scope::Curate),
        "Change a content item",
    ),
    (
        "DELETE",
        "/v1/banks/{name}/contents/{id}",
        Access::Scope(Scope::Curate),
        "Delete a content item",
    ),
    (
        "GET",
        "/v1/signal_types",
        Access::Scope(Scope::Curate),
        "List signal types",
    ),
    (
        "GET",
        "/v1/keys",
        Access::Scope(Scope::Admin),
        "List API keys (never the secrets)",
    ),
    (
        "POST",
        "/v1/keys",
        Access::Scope(Scope::Admin),
        "Create an API key (shown once)",
    ),
    (
        "DELETE",
        "/v1/keys/{key_id}",
        Access::Scope(Scope::Admin),
        "Revoke an API key",
    ),
];

/// Stable error codes, for the document's error schema.
pub const ERROR_CODES: &[&str] = &[
    "content_id_conflict",
    "conflicting_media",
    "no_media",
    "invalid_signals",
    "signals_required",
    "too_many_items",
    "invalid_rule",
    "duplicate_rule",
    "too_many_rules",
    "rule_not_found",
    "case_not_found",
    "invalid_transition",
    "same_person",
    "approval_required",
    "already_approved",
    "referral_excluded",
    "reporting_not_configured",
    "send_in_progress",
    "send_pending",
    "nca_auth_failed",
    "nca_rejected",
    "nca_unavailable",
    "nca_bad_response",
    "nca_send_failed",
    "report_invalid",
    "filing_not_found",
    "filing_in_progress",
    "report_already_finished",
    "ncmec_unavailable",
    "evidence_not_found",
    "evidence_destroyed",
    "vault_unavailable",
    "audit_unavailable",
    "vault_error",
    "webhook_not_found",
    "invalid_event_types",
    "weak_secret",
    "too_many_webhooks",
    "too_many_delivery_ids",
    "exchange_not_found",
    "exchange_busy",
    "exchange_config_in_file",
    "exchange_exists",
    "master_key_unavailable",
    "master_key_mismatch",
    "unknown_exchange_api",
    "exchange_config",
    "exchange_unavailable",
    "exchange_rejected",
    "exchange_protocol",
    "exchange_checkpoint",
    "missing_api_key",
    "invalid_api_key",
    "insufficient_scope",
    "not_found",
    "method_not_allowed",
    "invalid_request",
    "invalid_json",
    "invalid_body",
    "unsupported_media_type",
    "payload_too_large",
    "invalid_multipart",
    "missing_file",
    "too_many_files",
    "missing_parameter",
    "invalid_parameter",
    "invalid_bank_name",
    "bank_not_found",
    "bank_exists",
    "content_not_found",
    "key_not_found",
    "unknown_signal_type",
    "unknown_content_type",
    "invalid_signal",
    "invalid_scope",
    "conflict",
    "empty_input",
    "unsupported_format",
    "unsupported_feature",
    "too_large",
    "truncated",
    "corrupt_image",
    "video_too_large",
    "video_too_long",
    "too_many_frames",
    "decode_timeout",
    "unsupported_video",
    "truncated_video",
    "corrupt_video",
    "decoder_crashed",
    "decoder_unavailable",
    "invalid_vpdq_threshold",
    "fetch_disabled",
    "invalid_url",
    "too_many_urls",
    "account_not_found",
    "not_served_by_role",
    // Contact decisions and stored accounts (safeguard_contact::Error::code).
    "malformed_request",
    "unknown_age_band",
    "unknown_assurance_method",
    "unknown_relationship",
    "unknown_action",
    "invalid_confidence",
    "invalid_account",
    "body_too_large",
    // Contact-risk events (crates/server/src/risk.rs).
    "invalid_event",
    "too_many_events",
    "risk_disabled",
    "text_too_long",
    "forbidden_url",
    "fetch_failed",
    "photodna_hasher_failed",
    "index_not_ready",
    "overloaded",
    "incomplete_body",
    "timeout",
    "internal_error",
    "storage_error",
    "index_error",
    "classification_required",
    "exposure_cap_reached",
    "invalid_limit",
    "lease_not_held",
    "case_not_in_review",
    "media_not_allowed",
    "media_url_invalid",
    "reveal_not_found",
    "reveal_not_yours",
    "scan_not_found",
    "scan_state_conflict",
    "secret_unchanged",
    "session_required",
    "user_exists",
    "webhook_changed",
    "webhook_secret_unreadable",
];

/// The OpenAPI 3.1 document.
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for (method, path, access, summary) in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(summary));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        match access {
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
            Access::Scope(s) => {
                op.insert("x-required-scope".into(), json!(s.name()));
            }
        }
        op.insert(
            "responses".into(),
            json!({
                "200": {"description": "success"},
                "4XX": {"description": "client error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "5XX": {"description": "server error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }),
        );
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(method.to_ascii_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Safeguard",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Child-safety hash matching: HMA-compatible routes (/h, /m, /c, /status) and the native API (/v1)."
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "message": {"type": "string", "description": "HMA-compatible routes only"},
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "request_id"],
                            "properties": {
                                "code": {"type": "string", "enum": ERROR_CODES},
                                "message": {"type": "string"},
                                "request_id": {"type": "string"}
                            }
                        }
                    }
                }
            }
        },
        "paths": paths,
    })
}

/// `GET /openapi.json` and `GET /openapi/openapi.json`.
pub async fn serve_openapi() -> Json<Value> {
    Json(openapi_document())
}

#[cfg(test)]
mod tests {
    /// Every code a handler of this crate answers with (`ApiError::new(StatusCode::X, "code"`
    /// or `bad_request("code"`) is in [`super::ERROR_CODES`], the error schema's enum, so a
    /// client generated from the document accepts it.
    #[test]
    fn every_error_code_in_the_source_is_in_the_document() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        /// The string literal after `at` (skipping whitespace), if one starts there.
        fn literal(text: &str) -> Option<&str> {
            let t = text.trim_start();
            let rest = t.strip_prefix('"')?;
            let code = &rest[..rest.find('"')?];
            code.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
                .then_some(code)
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut missing = Vec::new();
        let mut seen = 0;
        // This file names the constructors in its own test.
        files.retain(|f| !f.ends_with("openapi.rs"));
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (at, _) in text.match_indices("ApiError::new(") {
                let after = &text[at + "ApiError::new(".len()..];
                let Some(comma) = after.find(',') else {
                    continue;
                };
                if !after[..comma].trim_start().starts_with("StatusCode::") {
                    continue;
                }
                if let Some(code) = literal(&after[comma + 1..]) {
                    seen += 1;
                    if !super::ERROR_CODES.contains(&code) {
                        missing.push(format!("{code} ({})", f.display()));
                    }
                }
            }
            for (at, _) in text.match_indices("bad_request(") {
                if let Some(code) = literal(&text[at + "bad_request(".len()..]) {
                    seen += 1;
                    if !super::ERROR_CODES.contains(&code) {
                        missing.push(format!("{code} ({})", f.display()));
                    }
                }
            }
        }
        // The scan found the handlers' codes at all (a rename of the constructors would
        // otherwise make this pass with nothing checked).
        assert!(seen > 100, "only {seen} codes found");
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "codes missing from ERROR_CODES: {missing:?}"
        );
    }
}
