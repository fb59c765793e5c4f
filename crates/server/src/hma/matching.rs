//! HMA's matching routes: `/m/lookup`, `/m/raw_lookup`, `/m/compare`, `/m/index/status`.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use safeguard_engine::{LookupOptions, SignalType, SignalValue};

use super::hashing::{hash_url, hma_hash_signals, upload_file};
use super::{hma_bad, hma_missing, HmaResult};
use crate::coinflip;
use crate::error::{ApiError, HmaError};
use crate::extract::{short, UploadForm};
use crate::media::{split_list, vpdq_thresholds};
use crate::state::{blocking, cpu, AppState};

/// Routes needing the `match` scope.
pub fn match_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/m/lookup",
            get(lookup_get)
                .post(lookup_post)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/m/raw_lookup", get(raw_lookup))
        .route("/m/compare", post(compare))
        .route("/m/index/status", get(index_status))
}

fn parse_signal(signal_type: &str, signal: &str) -> Result<SignalValue, ApiError> {
    let t = SignalType::parse(signal_type).map_err(|_| {
        ApiError::bad_request(
            "unknown_signal_type",
            format!("No such SignalType '{}'", short(signal_type)),
        )
    })?;
    SignalValue::parse(t, signal)
        .map_err(|e| ApiError::bad_request("invalid_signal", format!("invalid signal: {e}")))
}

/// HMA's string distance of a match: the number for PDQ (and PhotoDNA's Euclidean distance,
/// rounded), `"-"` for exact types, and for vPDQ python-threatexchange's
/// `VPDQSimilarityInfo.pretty_str()`, `"<q>%[<c>%]"`.
fn hma_distance(m: &safeguard_engine::LookupMatch) -> String {
    match m.vpdq {
        Some(p) => p.pretty(),
        None if m.signal_type.is_fuzzy() || m.signal_type == SignalType::PhotoDna => {
            m.distance.to_string()
        }
        None => "-".to_string(),
    }
}

/// One match as HMA shows it, plus the two vPDQ percentages as numbers for vPDQ matches.
fn hma_match(m: &safeguard_engine::LookupMatch) -> Value {
    let mut v = json!({"bank_content_id": m.content_id, "distance": hma_distance(m)});
    if let (Some(p), Value::Object(o)) = (m.vpdq, &mut v) {
        o.insert("query_match_percent".into(), json!(p.query_match_percent));
        o.insert(
            "compared_match_percent".into(),
            json!(p.compared_match_percent),
        );
    }
    v
}

/// `{BANK: [{bank_content_id, distance}]}` with HMA's string distances.
fn bank_map(matches: &[safeguard_engine::LookupMatch]) -> Value {
    let mut out = Map::new();
    for m in matches {
        let entry = out
            .entry(m.bank.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(hma_match(m));
        }
    }
    Value::Object(out)
}

async fn lookup_one(
    state: &AppState,
    value: SignalValue,
    opts: LookupOptions,
) -> Result<Value, ApiError> {
    let res = crate::state::lookup(state, value, opts).await?;
    Ok(bank_map(&res.matches))
}

#[derive(Debug, Deserialize)]
struct LookupQuery {
    url: Option<String>,
    content_type: Option<String>,
    types: Option<String>,
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
    seed: Option<String>,
    bypass_coinflip: Option<String>,
    #[serde(flatten)]
    vpdq: VpdqQuery,
}

/// Per-lookup vPDQ thresholds (a Safeguard extension; unset ones take the configured values).
#[derive(Debug, Default, Deserialize)]
struct VpdqQuery {
    vpdq_frame_distance: Option<String>,
    vpdq_frame_quality: Option<String>,
    vpdq_query_match_percent: Option<String>,
    vpdq_compared_match_percent: Option<String>,
}

impl VpdqQuery {
    fn thresholds(&self, state: &AppState) -> Result<safeguard_engine::VpdqMatchConfig, ApiError> {
        fn num<T: std::str::FromStr>(
            name: &str,
            v: &Option<String>,
        ) -> Result<Option<T>, ApiError> {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim().parse::<T>().map_err(|_| {
                        ApiError::bad_request(
                            "invalid_vpdq_threshold",
                            format!("{name} is not a valid number: {}", short(s)),
                        )
                    })
                })
                .transpose()
        }
        vpdq_thresholds(
            state,
            num("vpdq_frame_distance", &self.vpdq_frame_distance)?,
            num("vpdq_frame_quality", &self.vpdq_frame_quality)?,
            num("vpdq_query_match_percent", &self.vpdq_query_match_percent)?,
            num(
                "vpdq_compared_match_percent",
                &self.vpdq_compared_match_percent,
            )?,
        )
    }
}

impl LookupQuery {
    fn options(&self, state: &AppState, allow_bypass: bool) -> Result<LookupOptions, ApiError> {
        let coinflip = if allow_bypass && self.bypass_coinflip.as_deref() == Some("true") {
            Some(0.0)
        } else {
            self.seed.as_deref().map(coinflip::seeded)
        };
        Ok(LookupOptions {
            banks: split_list(self.banks.as_deref()),
            coinflip,
            vpdq: Some(self.vpdq.thresholds(state)?),
            ..LookupOptions::default()
        })
    }
}

/// Looks up every hashed signal; a low-quality PDQ (`""`) is an invalid signal, as in HMA.
async fn lookup_signals(
    state: &AppState,
    signals: BTreeMap<String, String>,
    q: &LookupQuery,
    allow_bypass: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let opts = q.options(state, allow_bypass)?;
    for (name, value) in signals {
        // A video without a single hashable frame has an empty vPDQ: it matches nothing.
        if name == "vpdq" && value == "[]" {
            out.insert(name, json!({}));
            continue;
        }
        let v = parse_signal(&name, &value)?;
        out.insert(name, lookup_one(state, v, opts.clone()).await?);
    }
    Ok(out)
}

async fn lookup_get(
    State(state): State<AppState>,
    Query(q): Query<LookupQuery>,
) -> HmaResult<Json<Value>> {
    if let Some(url) = q.url.as_deref().filter(|u| !u.is_empty()) {
        let signals = hash_url(&state, url, q.content_type.as_deref(), q.types.as_deref()).await?;
        let mut by_type = lookup_signals(&state, signals, &q, false).await?;
        if let Some(t) = q.signal_type.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Json(by_type.remove(t).unwrap_or_else(|| json!({}))));
        }
        return Ok(Json(Value::Object(by_type)));
    }
    let (Some(signal), Some(signal_type)) = (
        q.signal.as_deref().filter(|s| !s.is_empty()),
        q.signal_type.as_deref().filter(|s| !s.is_empty()),
    ) else {
        return Err(hma_bad(
            "Either url or both signal and signal_type are required",
        ));
    };
    let v = parse_signal(signal_type, signal)?;
    Ok(Json(
        lookup_one(&state, v, q.options(&state, false)?).await?,
    ))
}

async fn lookup_post(
    State(state): State<AppState>,
    Query(q): Query<LookupQuery>,
    UploadForm(mp): UploadForm,
) -> HmaResult<Json<Value>> {
    let (ct, bytes) = upload_file(&state, mp, q.content_type.as_deref()).await?;
    let types = split_list(q.types.as_deref());
    let signals = hma_hash_signals(&state, ct, bytes, types.as_deref()).await?;
    Ok(Json(Value::Object(
        lookup_signals(&state, signals, &q, true).await?,
    )))
}

#[derive(Debug, Deserialize)]
struct RawLookupQuery {
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
    include_distance: Option<String>,
    #[serde(flatten)]
    vpdq: VpdqQuery,
}

fn py_bool(s: Option<&str>) -> Result<bool, ApiError> {
    match s.map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                format!("not a boolean: {}", short(&v)),
            )),
        },
    }
}

async fn raw_lookup(
    State(state): State<AppState>,
    Query(q): Query<RawLookupQuery>,
) -> HmaResult<Json<Value>> {
    let signal = q.signal.ok_or_else(|| hma_missing("signal"))?;
    let signal_type = q.signal_type.ok_or_else(|| hma_missing("signal_type"))?;
    let with_distance = py_bool(q.include_distance.as_deref())?;
    let v = parse_signal(&signal_type, &signal)?;
    let banks = split_list(q.banks.as_deref());
    let thresholds = q.vpdq.thresholds(&state)?;
    let engine = state.engine()?;
    let matches =
        blocking(move || Ok(engine.raw_lookup_with(&v, banks.as_deref(), Some(&thresholds))?))
            .await?;
    let list: Vec<Value> = matches
        .iter()
        .map(|m| {
            if with_distance {
                hma_match(m)
            } else {
                json!(m.content_id)
            }
        })
        .collect();
    Ok(Json(json!({ "matches": list })))
}

/// Most frames one vPDQ hash of `/m/compare` may have. The comparison is brute force, every
/// frame of one side against every frame of the other: 10,000 a side is at most 10^8 PDQ
/// distances, a fraction of a second on one core, where the parser's own limit (100,000
/// frames) would allow 10^10. Ten thousand frames is close to three hours at one frame a
/// second, more than python-threatexchange's default sampling gives for most videos.
pub const MAX_COMPARE_FRAMES: usize = 10_000;

/// `POST /m/compare`. Parsing and comparing run on the CPU pool: a vPDQ pair costs the
/// product of its frame counts.
async fn compare(State(state): State<AppState>, body: Bytes) -> HmaResult<Json<Value>> {
    let cfg = state.0.config.vpdq_match();
    let out = cpu(&state, move || Ok(compare_all(&body, &cfg))).await??;
    Ok(Json(Value::Object(out)))
}

/// The comparisons of one `/m/compare` body, as HMA answers them.
fn compare_all(
    body: &[u8],
    cfg: &safeguard_vpdq::VpdqMatchConfig,
) -> HmaResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        hma_bad("The browser (or proxy) sent a request that this server could not understand.")
    })?;
    let Value::Object(obj) = v else {
        return Err(hma_bad("Request input was not a dict"));
    };
    let mut out = Map::new();
    for (st, pair) in obj {
        let Value::Array(items) = pair else {
            return Err(hma_bad(format!(
                "Comparison hashes for {} was not a list",
                short(&st)
            )));
        };
        if items.len() != 2 {
            return Err(hma_bad("Comparison hash list length must be exactly 2"));
        }
        let t = SignalType::parse(&st).map_err(|_| {
            HmaError(ApiError::bad_request(
                "unknown_signal_type",
                format!("No such SignalType '{}'", short(&st)),
            ))
        })?;
        let mut vals = Vec::with_capacity(2);
        for item in &items {
            let s = item.as_str().unwrap_or_default();
            vals.push(SignalValue::parse(t, s).map_err(|e| {
                HmaError(ApiError::bad_request(
                    "invalid_signal",
                    format!("Invalid {st} hash: {e}"),
                ))
            })?);
        }
        for v in &vals {
            if let SignalValue::Vpdq(frames) = v {
                if frames.len() > MAX_COMPARE_FRAMES {
                    return Err(HmaError(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_frames",
                        format!(
                            "a vpdq hash to compare has {} frames, over the limit of \
                             {MAX_COMPARE_FRAMES}",
                            frames.len()
                        ),
                    )));
                }
            }
        }
        let result = match (&vals[0], &vals[1]) {
            (SignalValue::Pdq(a), SignalValue::Pdq(b)) => {
                let d = a.distance(b);
                json!([d <= safeguard_pdq::DEFAULT_MATCH_DISTANCE, {"distance": d}])
            }
            // python-threatexchange's VPDQSignal.compare_hash: the first value is the query.
            (SignalValue::Vpdq(a), SignalValue::Vpdq(b)) => {
                let m = safeguard_vpdq::compare(a, b, cfg);
                json!([m.is_match(cfg), {
                    "query_match_percent": m.query_match_percent,
                    "compared_match_percent": m.compared_match_percent,
                }])
            }
            (a, b) => json!([a == b, {}]),
        };
        out.insert(st, result);
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct IndexStatusQuery {
    signal_type: Option<String>,
}

async fn index_status(
    State(state): State<AppState>,
    Query(q): Query<IndexStatusQuery>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let st = engine.index_status();
    let wanted = match q.signal_type.as_deref() {
        Some(t) => Some(SignalType::parse(t).map_err(|_| {
            HmaError(ApiError::bad_request(
                "unknown_signal_type",
                format!("No such signal type '{}'", short(t)),
            ))
        })?),
        None => None,
    };
    let mut out = Map::new();
    for (t, n) in st.entries {
        if wanted.is_some_and(|w| w != t) {
            continue;
        }
        let entry = json!({"built_to": st.updated_at, "present": true, "size": n});
        // HMA's clients know the MD5 index as `video_md5`; Safeguard's own name is `md5`.
        // Unfiltered, both keys; filtered, the name the caller asked for.
        let names = match (t, q.signal_type.as_deref()) {
            (SignalType::Md5, Some(asked)) => vec![asked],
            (SignalType::Md5, None) => vec![t.name(), "video_md5"],
            _ => vec![t.name()],
        };
        for name in names {
            out.insert(name.to_string(), entry.clone());
        }
    }
    Ok(Json(Value::Object(out)))
}
