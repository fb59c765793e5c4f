//! CSAM URL lists over HTTP: `POST /v1/urls/check` (up to 1,000 URLs) and `POST
//! /v1/text/check` (the URLs in a message's text, de-obfuscated). Both canonicalise as Google
//! Safe Browsing does and look every URL up in the enabled banks of signal type `url`
//! (`safeguard_url` and the engine's URL index do the work; this module parses and answers).
//!
//! With a `submission` object, a check that matched is also recorded as a content submission
//! (kind `other`, the matched URLs as its `url` signals), so URL matches go through the
//! policy, cases and webhooks like every other match, and the answer carries the verdict. A
//! check that matched nothing records nothing: most messages carry no listed link, and
//! recording each would turn a lookup into a write.

use std::collections::HashSet;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_engine::action::{Submission, MAX_SUBMISSION_SIGNALS};
use safeguard_engine::{LookupOptions, LookupResult, SignalValue};
use safeguard_policy::{AccountAge, Kind, Surface};
use safeguard_url::CanonicalUrl;

use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::{blocking, AppState};

/// Most URLs in one `POST /v1/urls/check`: a page of links, or a batch of messages' links.
pub const MAX_URLS_PER_CHECK: usize = 1_000;

/// Largest `POST /v1/urls/check` body, bytes: 1,000 URLs of 4 KiB each on average (browsers
/// and servers commonly stop at 2 to 8 KiB a URL).
pub const MAX_URL_CHECK_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest `POST /v1/text/check` body, bytes: text of `safeguard_url::MAX_TEXT_BYTES` (64 KiB)
/// even when every character is written as a six-byte JSON `\u` escape, with room for the
/// rest of the request.
pub const MAX_TEXT_CHECK_BODY_BYTES: usize = 6 * safeguard_url::MAX_TEXT_BYTES + 16 * 1024;

/// Routes needing the `submit` scope: the platform's backend checking what its users post,
/// optionally acting through the policy.
pub fn submit_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/urls/check",
            post(urls_check).layer(DefaultBodyLimit::max(MAX_URL_CHECK_BODY_BYTES)),
        )
        .route(
            "/v1/text/check",
            post(text_check).layer(DefaultBodyLimit::max(MAX_TEXT_CHECK_BODY_BYTES)),
        )
}

/// What a check records when it matched: the fields of a `/v1/content` submission that are
/// not its media (the matched URLs are the signals).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmissionCtx {
    id: String,
    account: Option<String>,
    #[serde(default = "unknown_age")]
    account_age: AccountAge,
    surface: Option<Surface>,
    created_at: Option<i64>,
    ip: Option<String>,
    metadata: Option<Value>,
}

fn unknown_age() -> AccountAge {
    AccountAge::Unknown
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlsReq {
    urls: Vec<String>,
    /// Only these banks (by name); all enabled banks when absent.
    banks: Option<Vec<String>>,
    submission: Option<SubmissionCtx>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextReq {
    text: String,
    banks: Option<Vec<String>>,
    submission: Option<SubmissionCtx>,
}

/// One URL to look up: as given (or as found in the text), its canonical form, and the value
/// looked up (its entry expression).
struct Checked {
    given: String,
    canonical: CanonicalUrl,
    value: SignalValue,
}

fn url_error(index: Option<usize>, e: &safeguard_url::Error) -> ApiError {
    let at = index.map(|i| format!("urls[{i}]: ")).unwrap_or_default();
    ApiError::bad_request("invalid_url", format!("{at}{e}"))
}

fn checked(given: String, canonical: CanonicalUrl) -> Checked {
    let value = SignalValue::Url(canonical.entry_expression().into());
    Checked {
        given,
        canonical,
        value,
    }
}

async fn urls_check(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<UrlsReq>,
) -> ApiResult<Json<Value>> {
    if req.urls.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "urls is empty; give 1 to 1000 URLs",
        ));
    }
    if req.urls.len() > MAX_URLS_PER_CHECK {
        return Err(ApiError::bad_request(
            "too_many_urls",
            format!(
                "at most {MAX_URLS_PER_CHECK} URLs per request, got {}",
                req.urls.len()
            ),
        ));
    }
    let mut items = Vec::with_capacity(req.urls.len());
    for (i, u) in req.urls.into_iter().enumerate() {
        let c = CanonicalUrl::parse(&u).map_err(|e| url_error(Some(i), &e))?;
        items.push(checked(u, c));
    }
    answer(&state, items, req.banks, req.submission, "results").await
}

async fn text_check(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<TextReq>,
) -> ApiResult<Json<Value>> {
    if req.text.len() > safeguard_url::MAX_TEXT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_long",
            format!(
                "text is at most {} bytes, got {}",
                safeguard_url::MAX_TEXT_BYTES,
                req.text.len()
            ),
        ));
    }
    let text = req.text;
    // NFKC and the regular expressions are CPU work proportional to the text: off the reactor.
    let found = blocking(move || {
        safeguard_url::extract_urls(&text).map_err(|e| match e {
            safeguard_url::Error::TooManyUrls { .. } => {
                ApiError::bad_request("too_many_urls", e.to_string())
            }
            other => url_error(None, &other),
        })
    })
    .await?;
    let items = found
        .into_iter()
        .filter_map(|u| {
            // Extraction returns canonical URLs, which parse again; one that does not is
            // skipped rather than failing the message.
            let c = CanonicalUrl::parse(&u).ok()?;
            Some(checked(u, c))
        })
        .collect();
    answer(&state, items, req.banks, req.submission, "urls").await
}

/// The submission a matching check records, without its signals yet, checked.
fn submission_of(ctx: SubmissionCtx) -> ApiResult<Submission> {
    let s = Submission {
        id: ctx.id,
        kind: Kind::Other,
        signals: Vec::new(),
        account: ctx.account,
        account_age: ctx.account_age,
        surface: ctx.surface,
        created_at: ctx.created_at,
        ip: ctx.ip,
        metadata: ctx.metadata,
        media: None,
        url: None,
    };
    s.validate_context().map_err(ApiError::from)?;
    Ok(s)
}

/// Looks every item up (one hop to the blocking pool for all of them), records a submission
/// when asked and something matched, and answers.
async fn answer(
    state: &AppState,
    items: Vec<Checked>,
    banks: Option<Vec<String>>,
    submission: Option<SubmissionCtx>,
    list_name: &str,
) -> ApiResult<Json<Value>> {
    // Checked before anything is looked up: a bad submission is refused whether or not a URL
    // matches, not only when the answer matters most.
    let submission = submission.map(submission_of).transpose()?;
    let engine = state.engine()?;
    let values: Vec<SignalValue> = items.iter().map(|i| i.value.clone()).collect();
    let results: Vec<LookupResult> = blocking(move || {
        let opts = LookupOptions {
            banks,
            ..LookupOptions::default()
        };
        values
            .iter()
            .map(|v| engine.lookup(v, &opts).map_err(ApiError::from))
            .collect()
    })
    .await?;
    for m in results.iter().flat_map(|r| &r.matches) {
        state
            .0
            .metrics
            .matches
            .get_or_create(&crate::metrics::BankLabels {
                bank: m.bank.clone(),
            })
            .inc();
    }

    let mut matched_values = Vec::new();
    let mut seen = HashSet::new();
    let list: Vec<Value> = items
        .iter()
        .zip(&results)
        .map(|(item, r)| {
            // An allow-list hit suppresses the others and is not itself a match to act on.
            let hit = r.matches.iter().any(|m| !m.allow_list);
            if hit && seen.insert(item.value.to_text()) {
                matched_values.push(item.value.clone());
            }
            json!({
                "url": item.given,
                "canonical": item.canonical.as_str(),
                "matched": hit,
                "matches": r.matches.iter().map(crate::v1::match_json).collect::<Vec<_>>(),
                "suppressed_by_allow_list": r.suppressed,
            })
        })
        .collect();
    let matched = !matched_values.is_empty();
    let mut body = json!({ list_name: list, "matched": matched });
    if let (Some(mut s), true) = (submission, matched) {
        // The policy acts on the item as a whole; a message with more listed links than a
        // submission holds signals is still acted on, through its first ones.
        matched_values.truncate(MAX_SUBMISSION_SIGNALS);
        s.signals = matched_values;
        s.validate().map_err(ApiError::from)?;
        let recorded = crate::action::process(state, s, None).await?;
        body["submission"] = recorded.body;
        body["replayed"] = json!(recorded.replayed);
    }
    Ok(Json(body))
}
