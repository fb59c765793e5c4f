//! Page tests against the DOM contract the browser tests and `console.js` rely on. A small tag
//! scanner stands in for an HTML parser: maud always quotes attributes and escapes `<` in
//! text, so tags can be read off the string directly.

use super::*;
use crate::exposure::{Cap, ExposurePolicy, ExposureState, ExposureTotals};
use crate::role::Roles;
use crate::settings::ViewSettings;

const HOSTILE: &str = "<script>alert(1)</script>\"'&";

#[derive(Debug)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    end: bool,
}

impl El {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn has_class(&self, c: &str) -> bool {
        self.attr("class")
            .is_some_and(|v| v.split_whitespace().any(|x| x == c))
    }
    /// Matches `tag#id.class[attr][attr=value]` (every part optional).
    fn matches(&self, sel: &str) -> bool {
        if self.end {
            return false;
        }
        let (head, conds) = match sel.find('[') {
            Some(i) => (&sel[..i], &sel[i..]),
            None => (sel, ""),
        };
        let mut parts = Vec::new();
        let mut cur = String::new();
        for ch in head.chars() {
            if (ch == '#' || ch == '.') && !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            cur.push(ch);
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
        for p in parts {
            let ok = if let Some(id) = p.strip_prefix('#') {
                self.attr("id") == Some(id)
            } else if let Some(c) = p.strip_prefix('.') {
                self.has_class(c)
            } else {
                self.name == p
            };
            if !ok {
                return false;
            }
        }
        for cond in conds.split(']').filter(|c| !c.is_empty()) {
            let cond = cond.trim_start_matches('[');
            let ok = match cond.split_once('=') {
                Some((k, v)) => self.attr(k) == Some(v),
                None => self.attr(cond).is_some(),
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

fn scan(html: &str) -> Vec<El> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off + 1;
        if b[i] == b'!' {
            i += html[i..].find('>').unwrap();
            continue;
        }
        let end = b[i] == b'/';
        if end {
            i += 1;
        }
        let start = i;
        while !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        let name = html[start..i].to_string();
        let mut attrs = Vec::new();
        loop {
            while b[i].is_ascii_whitespace() || b[i] == b'/' {
                i += 1;
            }
            if b[i] == b'>' {
                break;
            }
            let s = i;
            while !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
                i += 1;
            }
            let key = html[s..i].to_string();
            let mut value = String::new();
            if b[i] == b'=' {
                assert_eq!(b[i + 1], b'"', "unquoted attribute {key}");
                let vs = i + 2;
                let ve = vs + html[vs..].find('"').unwrap();
                value = html[vs..ve].to_string();
                i = ve + 1;
            }
            attrs.push((key, value));
        }
        out.push(El { name, attrs, end });
    }
    out
}

fn all<'a>(els: &'a [El], sel: &str) -> Vec<&'a El> {
    els.iter().filter(|e| e.matches(sel)).collect()
}

fn has(html: &str, sel: &str) -> bool {
    !all(&scan(html), sel).is_empty()
}

fn position(html: &str, sel: &str) -> usize {
    scan(html)
        .iter()
        .position(|e| e.matches(sel))
        .unwrap_or_else(|| panic!("{sel} missing"))
}

fn assert_has(html: &str, sels: &[&str]) {
    for s in sels {
        assert!(has(html, s), "{s} missing in\n{html}");
    }
}

/// Rules for every page: CSRF in every form and in the meta tag, no style attributes, no
/// inline script, no unescaped hostile text.
fn assert_page_rules(html: &str, csrf: &str) {
    let els = scan(html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(all(&els, "meta[name=csrf-token]")
        .iter()
        .all(|m| m.attr("content") == Some(csrf)));
    assert!(
        !els.iter().any(|e| e.attr("style").is_some()),
        "style attribute"
    );
    assert!(!html.contains(" style="));
    for e in &els {
        for (k, _) in &e.attrs {
            assert!(!k.starts_with("on"), "inline handler {k} on {}", e.name);
        }
    }
    for (i, _) in html.match_indices("<script") {
        let rest = &html[i..];
        let close = rest.find('>').unwrap();
        assert!(rest[..close].contains(" src=\""), "script without src");
        assert!(
            rest[close + 1..].starts_with("</script>"),
            "script with a body"
        );
    }
    assert!(!html.contains("<script>alert"), "unescaped hostile text");
    // Every form that posts carries the token.
    let mut in_form = false;
    let mut in_get = false;
    let mut saw_csrf = false;
    for e in &els {
        if e.name == "form" && !e.end {
            // A form either changes state (POST, with the token) or only chooses what to
            // show (GET, to a console page, never carrying the token into a URL).
            let method = e.attr("method");
            assert!(
                matches!(method, Some("post") | Some("get")),
                "form without an explicit method"
            );
            in_form = method == Some("post");
            in_get = method == Some("get");
            saw_csrf = false;
        } else if e.name == "form" && e.end {
            assert!(!in_form || saw_csrf, "a POST form without csrf");
            in_form = false;
            in_get = false;
        } else if in_get && e.matches("input[name=csrf]") {
            panic!("a GET form would put the csrf token into a URL");
        } else if in_form && e.matches("input[type=hidden][name=csrf]") {
            assert_eq!(e.attr("value"), Some(csrf));
            saw_csrf = true;
        }
    }
}

fn viewer(roles: &str) -> Viewer {
    Viewer {
        name: "alice".into(),
        roles: Roles::parse(roles).unwrap(),
        csrf: "tok-123".into(),
        flash: None,
        break_due: false,
    }
}

fn case_view() -> CaseView {
    CaseView {
        id: 42,
        queue: "csam".into(),
        state: "in_review".into(),
        priority: 5,
        account: "acct-9".into(),
        opened_at: 1_000,
        now_ms: 3_600_000,
        labels: vec!["csam".into()],
        matches: vec![EvidenceMatch {
            object_id: "obj-1".into(),
            bank: "iwf".into(),
            distance: Some(12),
            source: "IWF".into(),
            classification: Some("A1".into()),
            hotline_id: Some("IWF-7".into()),
        }],
        uploader_items: vec![UploaderItem {
            case_id: Some(41),
            object_id: "obj-0".into(),
            at: 500,
            outcome: "decided: not_csam".into(),
        }],
        earlier_decisions: vec![EarlierDecision {
            case_id: 41,
            decision: "not_csam".into(),
            decided_by: "bob".into(),
            at: 600,
        }],
        history: vec![HistoryLine {
            at: 1_000,
            actor: "console:alice".into(),
            action: "state".into(),
            from_state: Some("open".into()),
            to_state: Some("in_review".into()),
            note: Some("claimed".into()),
            decision: None,
        }],
        media: vec![
            MediaItem {
                object_id: "obj-1".into(),
                kind: MediaKind::Image,
                url: Some("/console/media/obj-1?exp=9&sig=SECRETSIG".into()),
                classification: Some("A2".into()),
                annotations: vec!["animeDrawingVirtualHentai".into()],
            },
            MediaItem {
                object_id: "obj-2".into(),
                kind: MediaKind::Video,
                url: Some("/console/media/obj-2?exp=9&sig=SECRETSIG".into()),
                classification: None,
                annotations: vec![],
            },
        ],
        settings: ViewSettings::default(),
        reveal_allowed: true,
        lease: Some(LeaseView {
            holder: "alice".into(),
            held_by_viewer: true,
            expires_at: 3_900_000,
        }),
        decision: None,
    }
}

fn home_view(state: ExposureState) -> HomeView {
    HomeView {
        now_ms: 10_000_000,
        queues: vec![QueueRow {
            name: "csam urgent/1".into(),
            open: 12,
            in_review: 3,
            oldest_opened_at: Some(1_000),
            can_claim: true,
        }],
        exposure: Some(ExposureSummary {
            totals: ExposureTotals {
                reveals: 3,
                visible_ms: 40_000,
                review_ms: 600_000,
            },
            policy: ExposurePolicy::default(),
            state,
        }),
    }
}

fn approval_rows() -> Vec<ApprovalRow> {
    vec![
        ApprovalRow {
            case_id: 7,
            queue: "csam".into(),
            decided_by: "bob".into(),
            decided_by_viewer: false,
            decided_at: 1_000,
            decision: "confirmed".into(),
        },
        ApprovalRow {
            case_id: 8,
            queue: "csam".into(),
            decided_by: "alice".into(),
            decided_by_viewer: true,
            decided_at: 2_000,
            decision: "confirmed".into(),
        },
    ]
}

fn users() -> Vec<UserRow> {
    vec![UserRow {
        id: 3,
        name: "carol".into(),
        roles: "reviewer".into(),
        disabled: false,
        locked_until: None,
        setup_pending: true,
        created_at: 0,
    }]
}

fn every_page(v: &Viewer) -> Vec<(&'static str, String)> {
    let mut decided = case_view();
    decided.state = "decided".into();
    decided.lease = None;
    decided.decision = Some(DecisionView {
        decision: "confirmed".into(),
        decided_by: "bob".into(),
        decided_by_viewer: false,
        decided_at: 2_000,
        approved_by: None,
    });
    let setup = SetupView {
        token: "setup-tok".into(),
        name: "carol".into(),
        secret_base32: "GEZDGNBV".into(),
        otpauth_uri: "otpauth://totp/x:carol?secret=GEZDGNBV".into(),
        sealed_secret: "c2VhbGVk".into(),
        error: Some("codes did not match".into()),
    };
    let created = CreatedUser {
        name: "dave".into(),
        setup_url: "https://x/console/setup?token=abc".into(),
    };
    let team = TeamAggregate {
        from_ms: 0,
        to_ms: 86_400_000,
        people: 4,
        reveals: 90,
        visible_ms: 600_000,
        review_ms: 7_200_000,
    };
    vec![
        (
            "login",
            login_page(&v.csrf, Some("wrong name, password or code")),
        ),
        ("setup", setup_page(&v.csrf, &setup)),
        ("home", home_page(v, &home_view(ExposureState::BreakDue))),
        ("case", case_page(v, &case_view())),
        ("decided", case_page(v, &decided)),
        ("approvals", approvals_page(v, &approval_rows())),
        ("team", team_page(v, &team)),
        ("users", users_page(v, &users(), Some(&created), 0)),
        (
            "settings",
            settings_page(
                v,
                "org",
                &[("org".into(), "Organisation".into())],
                &ViewSettings::default(),
                Some("blur too low"),
            ),
        ),
        (
            "my-view",
            my_settings_page(v, &ViewSettings::default(), None),
        ),
        ("error", error_page(Some(v), 404, "No such case.")),
        (
            "error-anon",
            error_page(None, 500, "Internal error (request 1)."),
        ),
    ]
}

#[test]
fn every_page_keeps_the_rules() {
    for roles in [
        "reviewer",
        "senior",
        "admin",
        "auditor",
        "admin,senior,reviewer,auditor",
    ] {
        let v = viewer(roles);
        for (name, html) in every_page(&v) {
            if name == "error-anon" {
                assert_page_rules(&html, "");
            } else {
                assert_page_rules(&html, &v.csrf);
            }
        }
    }
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let mut v = viewer("senior,admin");
    v.name = HOSTILE.into();
    v.flash = Some(HOSTILE.into());
    let mut c = case_view();
    c.queue = HOSTILE.into();
    c.account = HOSTILE.into();
    c.media[0].object_id = HOSTILE.into();
    c.matches[0].bank = HOSTILE.into();
    c.history[0].note = Some(HOSTILE.into());
    let mut h = home_view(ExposureState::Ok);
    h.queues[0].name = HOSTILE.into();
    let mut u = users();
    u[0].name = HOSTILE.into();
    let pages = [
        case_page(&v, &c),
        home_page(&v, &h),
        users_page(&v, &u, None, 0),
        error_page(Some(&v), 400, HOSTILE),
        login_page("t", Some(HOSTILE)),
    ];
    for html in pages {
        assert!(!html.contains(HOSTILE));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_page_rules(
            &html,
            if html.contains("name=\"csrf-token\" content=\"t\"") {
                "t"
            } else {
                &v.csrf
            },
        );
    }
    // Queue names are also percent-encoded in the claim URL.
    let html = home_page(&viewer("reviewer"), &home_view(ExposureState::Ok));
    assert!(
        has(
            &html,
            "form.claim[action=/console/queues/csam%20urgent%2F1/claim]"
        ),
        "{html}"
    );
}

#[test]
fn login_and_setup_contract() {
    let html = login_page("t", Some("Wrong name, password or code."));
    assert_has(
        &html,
        &[
            "form#login[method=post][action=/console/login]",
            "input[name=username]",
            "input[type=password][name=password]",
            "input[name=totp][inputmode=numeric][autocomplete=one-time-code]",
            "button#login-submit",
            "p.error",
        ],
    );
    assert!(!has(&html, "nav"), "no navigation before login");
    let html = setup_page(
        "t",
        &SetupView {
            token: "setup-tok".into(),
            name: "carol".into(),
            secret_base32: "GEZDGNBV".into(),
            otpauth_uri: "otpauth://totp/x".into(),
            sealed_secret: "c2VhbGVk".into(),
            error: None,
        },
    );
    assert_has(
        &html,
        &[
            "form#setup[method=post][action=/console/setup]",
            "input[type=hidden][name=token][value=setup-tok]",
            "code#totp-secret",
            "input[name=password]",
            "input[name=password2]",
            "input[name=totp][autocomplete=one-time-code]",
            "button#setup-submit",
        ],
    );
    assert!(html.contains(">GEZDGNBV</code>"));
    assert!(!has(&html, "p.error"));
}

#[test]
fn home_contract_and_lead_columns() {
    let html = home_page(&viewer("reviewer"), &home_view(ExposureState::Ok));
    assert_has(
        &html,
        &[
            "table#queues",
            "tr[data-queue=csam urgent/1]",
            "form.claim",
            "button.claim-next",
            "section#exposure",
        ],
    );
    assert!(
        !has(&html, "td.depth") && !has(&html, "td.oldest"),
        "reviewers do not see depth"
    );
    assert!(!has(&html, ".notice"));
    let html = home_page(&viewer("senior"), &home_view(ExposureState::Ok));
    assert_has(&html, &["td.depth", "td.oldest"]);
    assert!(html.contains("12 open, 3 in review"));
    let html = home_page(&viewer("reviewer"), &home_view(ExposureState::BreakDue));
    assert_has(&html, &["p.notice.break-due", "button.claim-next"]);
    let html = home_page(
        &viewer("reviewer"),
        &home_view(ExposureState::CapReached { what: Cap::Reveals }),
    );
    assert_has(&html, &["p.notice.cap-reached"]);
    assert!(!has(&html, "button.claim-next"), "no claiming past a cap");
    let empty = HomeView {
        now_ms: 0,
        queues: vec![],
        exposure: None,
    };
    assert_has(&home_page(&viewer("admin"), &empty), &["p.empty"]);
}

#[test]
fn case_contract_for_the_lease_holder() {
    let html = case_page(&viewer("reviewer"), &case_view());
    assert_has(
        &html,
        &[
            "section#evidence",
            "tr.match[data-object=obj-1]",
            "td.bank",
            "td.distance",
            "td.source",
            "td.classification",
            "td.hotline",
            "ol#history",
            "li.history-line",
            "section#media",
            "figure.media[data-object=obj-1][data-case=42]",
            "img.media-img.blurred.blur-16.greyscale.thumb.thumb-160",
            "figure.media[data-object=obj-2][data-case=42]",
            "video.media-video.blurred.blur-16.greyscale.thumb[muted][preload=metadata]",
            "button.frame-back",
            "button.frame-fwd",
            "select.speed",
            "button.reveal",
            "span.reveal-status",
            "#lease",
            "form#renew[action=/console/cases/42/renew]",
            "form#skip[action=/console/cases/42/skip]",
            "input[name=reason][required]",
            "form#decide[action=/console/cases/42/decide]",
            "select[name=decision]",
            "option[value=confirmed]",
            "option[value=not_csam]",
            "option[value=escalate]",
            "option[value=second_opinion]",
            "select[name=class:obj-1]",
            "select[name=class:obj-2]",
            "input[name=annot:obj-1][value=animeDrawingVirtualHentai]",
            "textarea[name=note]",
            "button#decide-submit",
        ],
    );
    for class in ["", "A1", "A2", "B1", "B2"] {
        assert!(
            has(&html, &format!("option[value={class}]")),
            "class {class:?}"
        );
    }
    assert!(
        has(&html, "option[value=A2][selected]"),
        "prefilled classification"
    );
    assert!(position(&html, "section#evidence") < position(&html, "section#media"));
    assert!(position(&html, "section#media") < position(&html, "form#decide"));
    let els = scan(&html);
    assert!(all(&els, "video")
        .iter()
        .all(|v| v.attr("autoplay").is_none()));
    assert!(!has(&html, "form#approve"));
}

#[test]
fn case_settings_change_classes() {
    let mut c = case_view();
    c.settings = crate::settings::resolve(
        None,
        None,
        None,
        Some(&crate::settings::ViewOverrides {
            greyscale: Some(false),
            blur_px: Some(24),
            thumb_px: Some(240),
            reduced_detail: Some(true),
        }),
    );
    let html = case_page(&viewer("reviewer"), &c);
    assert!(has(
        &html,
        "img.media-img.blurred.blur-24.thumb-240.reduced-detail"
    ));
    assert!(!has(&html, "img.greyscale"));
    c.reveal_allowed = false;
    let html = case_page(&viewer("reviewer"), &c);
    assert!(has(&html, "button.reveal[disabled]"));
    assert!(has(&html, "p.notice.cap-reached"));
}

#[test]
fn media_absent_for_roles_that_do_not_see_it() {
    for roles in ["admin", "auditor", "admin,auditor"] {
        let html = case_page(&viewer(roles), &case_view());
        assert_has(&html, &["section#evidence", "p.media-hidden"]);
        for sel in [
            "img",
            "video",
            "figure.media",
            "button.reveal",
            "form#decide",
        ] {
            assert!(!has(&html, sel), "{roles}: {sel}");
        }
        assert!(
            !html.contains("/console/media/") && !html.contains("SECRETSIG"),
            "{roles}: media URL"
        );
    }
    let html = case_page(&viewer("reviewer"), &case_view());
    assert!(!has(&html, "p.media-hidden"));
}

#[test]
fn case_not_held_by_viewer_has_no_actions() {
    let mut c = case_view();
    c.lease = Some(LeaseView {
        holder: "bob".into(),
        held_by_viewer: false,
        expires_at: 4_000_000,
    });
    let html = case_page(&viewer("reviewer"), &c);
    assert_has(&html, &["#lease"]);
    for sel in ["form#renew", "form#skip", "form#decide"] {
        assert!(!has(&html, sel), "{sel}");
    }
}

#[test]
fn approve_only_for_other_seniors() {
    let mut c = case_view();
    c.state = "decided".into();
    c.lease = None;
    c.decision = Some(DecisionView {
        decision: "confirmed".into(),
        decided_by: "bob".into(),
        decided_by_viewer: false,
        decided_at: 2_000,
        approved_by: None,
    });
    let html = case_page(&viewer("senior"), &c);
    assert_has(
        &html,
        &[
            "form#approve[action=/console/cases/42/approve]",
            "button.approve",
            "p.decision",
        ],
    );
    assert!(!has(&html, "form#decide"));
    assert!(
        !has(&case_page(&viewer("reviewer"), &c), "form#approve"),
        "reviewers do not approve"
    );
    let own = DecisionView {
        decided_by_viewer: true,
        ..c.decision.clone().unwrap()
    };
    c.decision = Some(own);
    let html = case_page(&viewer("senior"), &c);
    assert!(!has(&html, "form#approve") && !has(&html, "button.approve"));
    assert_has(&html, &["span.own-decision"]);
    let approved = DecisionView {
        decided_by_viewer: false,
        approved_by: Some("erin".into()),
        ..c.decision.clone().unwrap()
    };
    c.decision = Some(approved);
    assert!(
        !has(&case_page(&viewer("senior"), &c), "form#approve"),
        "already approved"
    );

    let html = approvals_page(&viewer("senior"), &approval_rows());
    let els = scan(&html);
    assert_has(
        &html,
        &[
            "table#approvals",
            "form.approve[action=/console/cases/7/approve]",
        ],
    );
    assert_eq!(
        all(&els, "button.approve").len(),
        1,
        "no button on the viewer's own decision"
    );
    assert!(!has(&html, "form.approve[action=/console/cases/8/approve]"));
    assert_eq!(all(&els, "span.own-decision").len(), 1);
}

#[test]
fn admin_pages_contract() {
    let v = viewer("admin");
    let created = CreatedUser {
        name: "dave".into(),
        setup_url: "https://x/console/setup?token=abc".into(),
    };
    let html = users_page(&v, &users(), Some(&created), 0);
    assert_has(
        &html,
        &[
            "table#users",
            "tr[data-user=3]",
            "form.set-roles[action=/console/users/3/roles]",
            "form.reset-user[action=/console/users/3/reset]",
            "form.disable-user[action=/console/users/3/disable]",
            "input[type=hidden][name=disabled][value=true]",
            "form#create-user[action=/console/users]",
            "input[name=name]",
            "input[name=roles]",
            "#setup-link",
        ],
    );
    assert!(html.contains("https://x/console/setup?token=abc"));
    assert!(!has(&users_page(&v, &users(), None, 0), "#setup-link"));

    let html = settings_page(
        &v,
        "org",
        &[("org".into(), "Organisation".into())],
        &ViewSettings::default(),
        None,
    );
    assert_has(
        &html,
        &[
            "form#settings[action=/console/settings]",
            "input[type=checkbox][name=greyscale][checked]",
            "select[name=blur_px]",
            "option[value=16][selected]",
            "select[name=thumb_px]",
            "input[type=checkbox][name=reduced_detail]",
            "button#settings-submit",
        ],
    );
    assert!(!has(&html, "option[value=8]"));

    let html = team_page(
        &v,
        &TeamAggregate {
            from_ms: 0,
            to_ms: 1,
            people: 4,
            reveals: 90,
            visible_ms: 60_000,
            review_ms: 0,
        },
    );
    assert_has(
        &html,
        &["section#team", "dd.people", "dd.reveals", "dd.visible"],
    );
}

#[test]
fn layout_navigation_dialogs_and_break_prompt() {
    let mut v = viewer("reviewer");
    let html = home_page(&v, &home_view(ExposureState::Ok));
    assert_has(
        &html,
        &[
            "body[data-break-due=false]",
            "dialog#shortcuts",
            "form#logout[action=/console/logout]",
            "a[href=/console]",
        ],
    );
    assert!(!has(&html, "dialog#break-prompt"));
    assert!(!has(&html, "a[href=/console/users]") && !has(&html, "a[href=/console/approvals]"));
    assert!(has(
        &html,
        &format!(
            "link[rel=stylesheet][href=/console/assets/{}]",
            crate::assets::css_name()
        )
    ));
    assert!(has(
        &html,
        &format!(
            "script[src=/console/assets/{}][defer]",
            crate::assets::js_name()
        )
    ));
    v.break_due = true;
    v.flash = Some("Case 12 decided.".into());
    let html = home_page(&v, &home_view(ExposureState::BreakDue));
    assert_has(
        &html,
        &[
            "body[data-break-due=true]",
            "dialog#break-prompt",
            "p.flash",
        ],
    );
    let html = home_page(&viewer("senior,admin"), &home_view(ExposureState::Ok));
    assert_has(
        &html,
        &[
            "a[href=/console/users]",
            "a[href=/console/approvals]",
            "a[href=/console/team]",
            "a[href=/console/settings]",
        ],
    );
    for key in ["j / k", "r", "c", "d", "?"] {
        assert!(
            html.contains(&format!("<kbd>{key}</kbd>")),
            "shortcut {key}"
        );
    }
}

#[test]
fn scanner_refuses_what_is_not_there() {
    let html = login_page("t", None);
    assert!(!has(&html, "form#nope"));
    assert!(!has(&html, "form#login[action=/elsewhere]"));
    assert!(!has(&html, "input.nope[name=username]"));
    assert!(has(&html, "input#username[name=username][required]"));
}

#[test]
#[ignore = "writes every page and the assets under $CONSOLE_DUMP_DIR for screenshots"]
fn dump() {
    let dir = std::path::PathBuf::from(std::env::var("CONSOLE_DUMP_DIR").unwrap());
    let assets = dir.join("console/assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join(crate::assets::css_name()), crate::assets::CSS).unwrap();
    std::fs::write(assets.join(crate::assets::js_name()), crate::assets::JS).unwrap();
    let mut v = viewer("senior,admin");
    v.break_due = false;
    for (name, html) in every_page(&v) {
        std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
    }
}

/// The fields a form posts, as a browser would send them with each select on its selected
/// (or first) option and checked boxes only.
fn form_pairs(html: &str, form_sel: &str) -> Vec<(String, String)> {
    let els = scan(html);
    let start = els.iter().position(|e| e.matches(form_sel)).unwrap();
    let mut out = Vec::new();
    let mut select: Option<(String, Option<String>)> = None;
    for e in &els[start + 1..] {
        match (e.name.as_str(), e.end) {
            ("form", true) => break,
            ("input", false) => {
                let checkbox = e.attr("type") == Some("checkbox");
                if let Some(name) = e.attr("name") {
                    if !checkbox || e.attr("checked").is_some() {
                        out.push((name.to_string(), e.attr("value").unwrap_or("").to_string()));
                    }
                }
            }
            ("textarea", false) => out.push((e.attr("name").unwrap().to_string(), String::new())),
            ("select", false) => select = Some((e.attr("name").unwrap().to_string(), None)),
            ("option", false) => {
                if let Some((_, chosen)) = &mut select {
                    if chosen.is_none() || e.attr("selected").is_some() {
                        *chosen = Some(e.attr("value").unwrap().to_string());
                    }
                }
            }
            ("select", true) => {
                let (name, chosen) = select.take().unwrap();
                out.push((name, chosen.unwrap_or_default()));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn rendered_forms_read_back() {
    let c = case_view();
    let html = case_page(&viewer("reviewer"), &c);
    let mut pairs = form_pairs(&html, "form#decide");
    assert!(pairs.iter().any(|(n, v)| n == "csrf" && v == "tok-123"));
    for (n, v) in &mut pairs {
        if n == "decision" {
            *v = "confirmed".into();
        }
    }
    let ids: Vec<String> = c.media.iter().map(|m| m.object_id.clone()).collect();
    let f = crate::decision::DecideForm::from_pairs(&pairs, &ids).unwrap();
    assert_eq!(f.items[0].classification.as_deref(), Some("A2"));
    assert_eq!(f.items[0].annotations, ["animeDrawingVirtualHentai"]);
    assert_eq!(f.items[1].classification, None);

    let org = ViewSettings {
        greyscale: false,
        blur_px: 20,
        thumb_px: 240,
        reduced_detail: true,
        ..Default::default()
    };
    let html = settings_page(
        &viewer("admin"),
        "org",
        &[("org".into(), "Organisation".into())],
        &org,
        None,
    );
    let o = crate::settings::ViewOverrides::from_form(&form_pairs(&html, "form#settings")).unwrap();
    assert_eq!(crate::settings::resolve(Some(&o), None, None, None), org);
}
