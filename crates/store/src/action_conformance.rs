//! The conformance suite of [`ActionStore`]: rules, submissions, cases, evidence, webhooks
//! and the outbox. Call [`run_all`] from an implementation's tests, like
//! [`crate::conformance::run_all`]. An `unwrap()` here asserts that the call succeeds.

use crate::action::*;
use crate::{Error, Store};

/// One check.
pub type Check = fn(&dyn Store);

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    let checks: &[(&str, Check)] = &[
        ("rules_versions", rules_versions),
        ("rules_put_and_delete", rules_put_and_delete),
        (
            "rules_put_past_the_limit_refused",
            rules_put_past_the_limit_refused,
        ),
        ("rules_duplicate_refused", rules_duplicate_refused),
        ("submission_replay_and_clash", submission_replay_and_clash),
        ("group_commit_isolates_items", group_commit_isolates_items),
        ("cases_group_by_account", cases_group_by_account),
        ("closed_case_is_not_joined", closed_case_is_not_joined),
        ("transition_compare_and_set", transition_compare_and_set),
        ("approval_compare_and_set", approval_compare_and_set),
        ("history_between_pages", history_between_pages),
        ("submissions_between_pages", submissions_between_pages),
        (
            "case_listing_filters_and_pages",
            case_listing_filters_and_pages,
        ),
        (
            "failed_events_roll_back_everything",
            failed_events_roll_back_everything,
        ),
        (
            "deliveries_follow_subscriptions",
            deliveries_follow_subscriptions,
        ),
        ("webhook_secret_is_replaced", webhook_secret_is_replaced),
        (
            "deliveries_in_order_per_endpoint",
            deliveries_in_order_per_endpoint,
        ),
        ("dead_letters_and_redrive", dead_letters_and_redrive),
        (
            "evidence_retention_and_destroy",
            evidence_retention_and_destroy,
        ),
        (
            "evidence_waits_for_a_confirmed_report",
            evidence_waits_for_a_confirmed_report,
        ),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = outcome {
            eprintln!("action conformance check {name} failed");
            std::panic::resume_unwind(e);
        }
    }
}

fn rule(id: &str, spec: &str) -> NewRule {
    NewRule {
        id: id.into(),
        spec: spec.into(),
    }
}

fn ids(rules: &[StoredRule]) -> Vec<(String, u32, u32)> {
    rules
        .iter()
        .map(|r| (r.id.clone(), r.version, r.position))
        .collect()
}

/// New rules start at version 1; a changed spec gets the next version, an unchanged one
/// keeps its version even when it moves; a removed and re-added rule continues its versions.
pub fn rules_versions(store: &dyn Store) {
    assert_eq!(store.rules().unwrap(), vec![]);
    let g0 = store.rules_generation().unwrap();
    let out = store
        .replace_rules(&[rule("a", "{\"v\":1}"), rule("b", "{}")])
        .unwrap();
    assert_eq!((out.created, out.changed, out.removed), (2, 0, 0));
    assert!(out.generation > g0);
    assert_eq!(
        ids(&out.rules),
        vec![("a".into(), 1, 0), ("b".into(), 1, 1)]
    );
    // b moves first and keeps its version; a changes.
    let out = store
        .replace_rules(&[rule("b", "{}"), rule("a", "{\"v\":2}")])
        .unwrap();
    assert_eq!(
        (out.created, out.changed, out.moved, out.unchanged),
        (0, 1, 1, 0)
    );
    assert_eq!(
        ids(&out.rules),
        vec![("b".into(), 1, 0), ("a".into(), 2, 1)]
    );
    assert_eq!(store.rules().unwrap(), out.rules);
    // Same set again: nothing changes but the generation.
    let again = store
        .replace_rules(&[rule("b", "{}"), rule("a", "{\"v\":2}")])
        .unwrap();
    assert_eq!(again.unchanged, 2);
    assert!(again.generation > out.generation);
    // Remove a, then bring it back: version 3, history keeps all.
    let out = store.replace_rules(&[rule("b", "{}")]).unwrap();
    assert_eq!(out.removed, 1);
    let out = store
        .replace_rules(&[rule("b", "{}"), rule("a", "{\"v\":2}")])
        .unwrap();
    assert_eq!(out.created, 1);
    assert_eq!(ids(&out.rules)[1], ("a".into(), 3, 1));
    let h = store.rule_history("a").unwrap();
    assert_eq!(
        h.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(store.rules_generation().unwrap(), out.generation);
}

/// Single-rule edits keep the rest of the set.
pub fn rules_put_and_delete(store: &dyn Store) {
    store.put_rule(&rule("a", "1"), None, 10).unwrap();
    store.put_rule(&rule("b", "1"), None, 10).unwrap();
    let out = store.put_rule(&rule("c", "1"), Some(0), 10).unwrap();
    assert_eq!(
        ids(&out.rules),
        vec![("c".into(), 1, 0), ("a".into(), 1, 1), ("b".into(), 1, 2)]
    );
    let out = store.put_rule(&rule("a", "2"), None, 10).unwrap();
    assert_eq!(ids(&out.rules)[1], ("a".into(), 2, 1));
    let out = store.delete_rule("c").unwrap();
    assert_eq!(
        ids(&out.rules),
        vec![("a".into(), 2, 0), ("b".into(), 1, 1)]
    );
    assert!(matches!(store.delete_rule("c"), Err(Error::NotFound(_))));
}

/// A new rule past the limit is refused and writes nothing; edits and moves of rules already
/// in the set still go through at the limit.
pub fn rules_put_past_the_limit_refused(store: &dyn Store) {
    store.put_rule(&rule("a", "1"), None, 2).unwrap();
    let full = store.put_rule(&rule("b", "1"), None, 2).unwrap();
    let r = store.put_rule(&rule("c", "1"), Some(0), 2);
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert_eq!(store.rules().unwrap(), full.rules);
    assert_eq!(store.rules_generation().unwrap(), full.generation);
    assert!(store.rule_history("c").unwrap().is_empty());
    let out = store.put_rule(&rule("b", "2"), Some(0), 2).unwrap();
    assert_eq!(
        ids(&out.rules),
        vec![("b".into(), 2, 0), ("a".into(), 1, 1)]
    );
}

/// A set naming one id twice is refused and changes nothing.
pub fn rules_duplicate_refused(store: &dyn Store) {
    store.replace_rules(&[rule("a", "1")]).unwrap();
    let r = store.replace_rules(&[rule("x", "1"), rule("x", "2")]);
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert_eq!(ids(&store.rules().unwrap()), vec![("a".into(), 1, 0)]);
}

/// A submission to record in tests.
pub fn submission(id: &str, account: Option<&str>, case: Option<(&str, i32)>) -> NewSubmission {
    NewSubmission {
        platform_id: id.into(),
        fingerprint: format!("fp-{id}"),
        account: account.map(str::to_owned),
        verdict: if case.is_some() { "block" } else { "allow" }.into(),
        rule: case.map(|_| ("r".to_owned(), 1)),
        context: "{}".into(),
        result: "{}".into(),
        case: case.map(|(queue, priority)| CaseAssignment {
            queue: queue.into(),
            priority,
            report_candidate: priority > 5,
            labels: vec![format!("l{priority}")],
        }),
        evidence: None,
        created_at: 1_000,
    }
}

fn event(id: &str, ty: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: ty.into(),
        created_at: 1,
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

fn recorded(o: SubmitOutcome) -> StoredSubmission {
    match o {
        SubmitOutcome::Recorded(s) => s,
        SubmitOutcome::Replayed(s) => panic!("expected a new record, got a replay of {s:?}"),
    }
}

/// The same id with the same fingerprint is a replay that writes nothing and builds no
/// events; with another fingerprint it is a conflict.
pub fn submission_replay_and_clash(store: &dyn Store) {
    let s = submission("c1", Some("u1"), Some(("csam", 10)));
    let first = recorded(
        store
            .record_submission(&s, &mut |_| vec![event("e1", "content.verdict")])
            .unwrap(),
    );
    assert_eq!(first.event_ids, vec!["e1".to_string()]);
    assert!(first.case_id.is_some());
    let mut called = false;
    let again = store
        .record_submission(&s, &mut |_| {
            called = true;
            vec![event("e2", "content.verdict")]
        })
        .unwrap();
    assert_eq!(again, SubmitOutcome::Replayed(first.clone()));
    assert!(!called, "events built for a replay");
    let clash = NewSubmission {
        fingerprint: "other".into(),
        ..s
    };
    let r = store.record_submission(&clash, &mut |_| vec![]);
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert_eq!(store.events_since(0, 10).unwrap().len(), 1);
    assert_eq!(store.submission("c1").unwrap(), Some(first));
    assert_eq!(store.submission("nope").unwrap(), None);
}

/// A group commit records each item as if alone: a conflicting item writes nothing (not
/// even its events) and leaves the others recorded; a repeat later in the same batch sees
/// the earlier item (a replay); one account's items in one batch share one case.
pub fn group_commit_isolates_items(store: &dyn Store) {
    store
        .record_submission(&submission("g0", None, None), &mut |_| vec![])
        .unwrap();
    let job = |s: NewSubmission, ev: &'static str| SubmissionJob {
        submission: s,
        events: Box::new(move |_: &Recorded| vec![event(ev, "content.verdict")]),
    };
    let clash = NewSubmission {
        fingerprint: "other".into(),
        ..submission("g0", None, None)
    };
    let mut batch = vec![
        job(submission("g1", Some("u1"), Some(("default", 1))), "eg1"),
        job(clash, "eg-clash"),
        job(submission("g2", Some("u1"), Some(("csam", 10))), "eg2"),
        job(
            submission("g1", Some("u1"), Some(("default", 1))),
            "eg1-again",
        ),
    ];
    let out = store.record_submissions(&mut batch).unwrap();
    assert_eq!(out.len(), 4);
    let g1 = match &out[0] {
        Ok(SubmitOutcome::Recorded(s)) => s.clone(),
        other => panic!("g1: {other:?}"),
    };
    assert!(matches!(out[1], Err(Error::Conflict(_))), "{:?}", out[1]);
    let g2 = match &out[2] {
        Ok(SubmitOutcome::Recorded(s)) => s.clone(),
        other => panic!("g2: {other:?}"),
    };
    assert_eq!(
        out[3].as_ref().unwrap(),
        &SubmitOutcome::Replayed(g1.clone())
    );
    assert_eq!(g1.case_id, g2.case_id, "one account, one case");
    let events: Vec<String> = store
        .events_since(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(events, vec!["eg1".to_string(), "eg2".to_string()]);
    assert_eq!(store.submission("g1").unwrap(), Some(g1));
    assert_eq!(
        store.submission("g0").unwrap().unwrap().fingerprint,
        "fp-g0",
        "the clash changed nothing"
    );
    assert!(store.record_submissions(&mut []).unwrap().is_empty());
}

/// Submissions of one account join its active case (priority, report flag and labels
/// merge); other accounts and submissions with no account get their own.
pub fn cases_group_by_account(store: &dyn Store) {
    let mut opened = Vec::new();
    let mut new_labels = Vec::new();
    let mut record = |s: NewSubmission| {
        let out = recorded(
            store
                .record_submission(&s, &mut |r| {
                    opened.push(r.case_opened);
                    new_labels.push(r.new_labels.clone());
                    vec![]
                })
                .unwrap(),
        );
        out.case_id
    };
    let c1 = record(submission("a1", Some("u1"), Some(("default", 1)))).unwrap();
    let c2 = record(submission("a2", Some("u1"), Some(("csam", 10)))).unwrap();
    let c3 = record(submission("a3", Some("u2"), Some(("default", 1)))).unwrap();
    let c4 = record(submission("a4", None, Some(("default", 1)))).unwrap();
    let c5 = record(submission("a5", None, Some(("default", 1)))).unwrap();
    assert_eq!(record(submission("a6", Some("u1"), None)), None);
    assert_eq!(c1, c2);
    assert_ne!(c1, c3);
    assert_ne!(c4, c5);
    // A label already on the case is not new again.
    assert_eq!(
        record(submission("a7", Some("u1"), Some(("default", 1)))),
        Some(c1)
    );
    assert_eq!(opened, vec![true, false, true, true, true, false, false]);
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        new_labels,
        vec![
            l(&["l1"]),
            l(&["l10"]),
            l(&["l1"]),
            l(&["l1"]),
            l(&["l1"]),
            l(&[]),
            l(&[])
        ]
    );
    let case = store.case(c1).unwrap().unwrap();
    assert_eq!(case.items, 3);
    assert_eq!((case.queue.as_str(), case.priority), ("csam", 10));
    assert!(case.report_candidate);
    assert_eq!(case.labels, vec!["l1".to_string(), "l10".to_string()]);
    assert_eq!(case.state, "open");
    let subs = store.case_submissions(c1).unwrap();
    assert_eq!(
        subs.iter()
            .map(|s| s.platform_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a1", "a2", "a7"]
    );
    let h = store.case_history(c1).unwrap();
    assert_eq!(
        h.iter().map(|h| h.action.as_str()).collect::<Vec<_>>(),
        vec!["opened", "item_added", "item_added"]
    );
}

/// Once an account's case is decided, a new match opens a new case.
pub fn closed_case_is_not_joined(store: &dyn Store) {
    let first = recorded(
        store
            .record_submission(
                &submission("b1", Some("u"), Some(("q", 1))),
                &mut |_| vec![],
            )
            .unwrap(),
    )
    .case_id
    .unwrap();
    for (from, to) in [("open", "in_review"), ("in_review", "decided")] {
        store
            .transition_case(
                first,
                &CaseTransition {
                    from: from.into(),
                    to: to.into(),
                    actor: "k1".into(),
                    note: None,
                    decision: (to == "decided").then(|| "confirmed".to_owned()),
                    labels: Vec::new(),
                    at: 2_000,
                },
                &mut |_| vec![],
            )
            .unwrap();
    }
    let second = recorded(
        store
            .record_submission(
                &submission("b2", Some("u"), Some(("q", 1))),
                &mut |_| vec![],
            )
            .unwrap(),
    )
    .case_id
    .unwrap();
    assert_ne!(first, second);
    let c = store.case(first).unwrap().unwrap();
    assert_eq!((c.state.as_str(), c.items), ("decided", 1));
    assert_eq!(c.decision.as_deref(), Some("confirmed"));
}

/// A transition from a state the case is no longer in is a conflict and writes nothing; an
/// unknown case is not found; a report stamps `reported_at`; events commit with it.
pub fn transition_compare_and_set(store: &dyn Store) {
    let id = recorded(
        store
            .record_submission(
                &submission("t1", Some("u"), Some(("q", 1))),
                &mut |_| vec![],
            )
            .unwrap(),
    )
    .case_id
    .unwrap();
    let t = |from: &str, to: &str| CaseTransition {
        from: from.into(),
        to: to.into(),
        actor: "k".into(),
        note: Some("n".into()),
        decision: None,
        labels: Vec::new(),
        at: 5_000,
    };
    let r = store.transition_case(id, &t("in_review", "decided"), &mut |_| vec![]);
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let r = store.transition_case(999_999, &t("open", "in_review"), &mut |_| vec![]);
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    for (from, to) in [
        ("open", "in_review"),
        ("in_review", "decided"),
        ("decided", "reported"),
    ] {
        let c = store
            .transition_case(id, &t(from, to), &mut |c| {
                vec![event(&format!("ev-{}", c.state), "case.updated")]
            })
            .unwrap();
        assert_eq!(c.state, to);
    }
    let c = store.case(id).unwrap().unwrap();
    assert_eq!(c.reported_at, Some(5_000));
    let evs: Vec<String> = store
        .events_since(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(evs, vec!["ev-in_review", "ev-decided", "ev-reported"]);
    let h = store.case_history(id).unwrap();
    assert_eq!(h.len(), 4);
    assert_eq!(h[3].from_state.as_deref(), Some("decided"));
    assert_eq!(h[3].to_state.as_deref(), Some("reported"));
    assert_eq!(h[3].actor, "k");
}

/// Filters by state, queue and account, and pages newest first.
pub fn case_listing_filters_and_pages(store: &dyn Store) {
    for i in 0..5 {
        let q = if i % 2 == 0 { "even" } else { "odd" };
        let acc = format!("u{i}");
        store
            .record_submission(
                &submission(&format!("p{i}"), Some(&acc), Some((q, 1))),
                &mut |_| vec![],
            )
            .unwrap();
    }
    let all = store
        .cases(&CaseFilter {
            limit: 100,
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "not newest first"
    );
    let even = store
        .cases(&CaseFilter {
            queue: Some("even".into()),
            limit: 100,
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(even.len(), 3);
    let page1 = store
        .cases(&CaseFilter {
            limit: 2,
            ..CaseFilter::default()
        })
        .unwrap();
    let page2 = store
        .cases(&CaseFilter {
            limit: 2,
            before: Some(page1[1].id),
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(page2.len(), 2);
    assert_eq!(page2[0].id, all[2].id);
    let by_acc = store
        .cases(&CaseFilter {
            account: Some("u3".into()),
            state: Some("open".into()),
            limit: 10,
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(by_acc.len(), 1);
    assert_eq!(by_acc[0].account.as_deref(), Some("u3"));
    // By a history line's action: only the cases that have one, with the other filters.
    // Newest first, `all` is u4 (even), u3 (odd), u2 (even), u1 (odd), u0 (even).
    for (k, action) in [(1, "nca_api"), (2, "nca_api"), (3, "nca_api"), (0, "other")] {
        store
            .note_case(all[k].id, "k1", action, "{}", 10 + k as i64)
            .unwrap();
    }
    let sent = |queue: Option<&str>, state: Option<&str>, before: Option<i64>| -> Vec<i64> {
        store
            .cases(&CaseFilter {
                with_history: Some("nca_api".into()),
                queue: queue.map(str::to_string),
                state: state.map(str::to_string),
                before,
                limit: 10,
                ..CaseFilter::default()
            })
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect()
    };
    let ids = |ks: &[usize]| -> Vec<i64> { ks.iter().map(|&k| all[k].id).collect() };
    assert_eq!(sent(None, None, None), ids(&[1, 2, 3]));
    assert_eq!(sent(Some("even"), None, None), ids(&[2]));
    assert_eq!(sent(Some("odd"), None, None), ids(&[1, 3]));
    assert_eq!(sent(None, Some("open"), Some(all[1].id)), ids(&[2, 3]));
    assert_eq!(sent(None, Some("decided"), None), ids(&[]));
}

/// An event that cannot be written (its id is taken) rolls back the submission, its case
/// and its evidence: the outbox and the records never disagree.
pub fn failed_events_roll_back_everything(store: &dyn Store) {
    store
        .record_submission(&submission("x1", Some("u"), Some(("q", 1))), &mut |_| {
            vec![event("dup", "content.verdict")]
        })
        .unwrap();
    let mut s = submission("x2", Some("v"), Some(("q", 1)));
    s.evidence = Some(NewEvidence {
        object_id: "obj-x2".into(),
        blob_key: "b".into(),
        wrapped_key: vec![1, 2, 3],
        key_fingerprint: "f".into(),
        sha256: "00".into(),
        md5: "00".into(),
        size: 3,
        media_kind: "image".into(),
    });
    let r = store.record_submission(&s, &mut |_| vec![event("dup", "content.verdict")]);
    assert!(r.is_err());
    assert_eq!(store.submission("x2").unwrap(), None);
    assert_eq!(store.evidence("obj-x2").unwrap(), None);
    let cases = store
        .cases(&CaseFilter {
            account: Some("v".into()),
            limit: 10,
            ..CaseFilter::default()
        })
        .unwrap();
    assert!(cases.is_empty(), "case left behind: {cases:?}");
    assert_eq!(store.events_since(0, 10).unwrap().len(), 1);
}

fn hook(store: &dyn Store, types: &[&str]) -> Webhook {
    store
        .create_webhook(&NewWebhook {
            url: "http://127.0.0.1:9/hook".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            sealed_secret: vec![7; 40],
        })
        .unwrap()
}

fn emit(store: &dyn Store, id: &str, ty: &str) {
    let mut s = submission(id, None, None);
    s.created_at = 10;
    store
        .record_submission(&s, &mut |_| vec![event(id, ty)])
        .unwrap();
}

/// Each enabled endpoint gets a delivery of each event of a type it takes (`*`: all).
pub fn deliveries_follow_subscriptions(store: &dyn Store) {
    let all = hook(store, &["*"]);
    let verdicts = hook(store, &["content.verdict"]);
    let off = hook(store, &["*"]);
    store
        .set_webhook_enabled(off.id, false, Some("test"))
        .unwrap();
    emit(store, "v1", "content.verdict");
    emit(store, "o1", "case.opened");
    let due = store.due_deliveries(10, 100).unwrap();
    let mut got: Vec<(i64, String)> = due
        .iter()
        .map(|d| (d.webhook_id, d.event_id.clone()))
        .collect();
    got.sort();
    assert_eq!(got, vec![(all.id, "v1".into()), (verdicts.id, "v1".into())]);
    assert_eq!(store.outbox_counts().unwrap().pending, 3);
    assert_eq!(store.outbox_counts().unwrap().disabled_webhooks, 1);
    let w = store.webhook(off.id).unwrap().unwrap();
    assert!(!w.enabled);
    assert_eq!(w.disabled_reason.as_deref(), Some("test"));
    assert_eq!(store.webhooks().unwrap().len(), 3);
    store.delete_webhook(verdicts.id).unwrap();
    assert_eq!(store.outbox_counts().unwrap().pending, 2);
    assert!(matches!(
        store.delete_webhook(verdicts.id),
        Err(Error::NotFound(_))
    ));
}

/// A rotation replaces the sealed secrets; the next due delivery carries the new ones.
pub fn webhook_secret_is_replaced(store: &dyn Store) {
    let w = hook(store, &["*"]);
    emit(store, "r1", "content.verdict");
    // A rotation that read something else than what is stored changes nothing.
    assert!(matches!(
        store.set_webhook_secret(w.id, &[8; 40], &[9; 48]),
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.webhook(w.id).unwrap().unwrap().sealed_secret,
        vec![7; 40]
    );
    let rotated = store.set_webhook_secret(w.id, &[7; 40], &[9; 48]).unwrap();
    assert_eq!(rotated.sealed_secret, vec![9; 48]);
    assert!(rotated.updated_at >= w.updated_at);
    assert_eq!(rotated.url, w.url);
    assert_eq!(rotated.enabled, w.enabled);
    assert_eq!(
        store.webhook(w.id).unwrap().unwrap().sealed_secret,
        vec![9; 48]
    );
    let due = store.due_deliveries(10, 100).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].sealed_secret, vec![9; 48]);
    // The second of two rotations that read the same value is refused.
    assert!(matches!(
        store.set_webhook_secret(w.id, &[7; 40], &[10; 48]),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.set_webhook_secret(w.id + 1000, &[9; 48], &[1; 48]),
        Err(Error::NotFound(_))
    ));
}

/// Only the head of an endpoint's queue is due; a retry holds back what follows it; the
/// failure run starts with the first failure and ends with a success.
pub fn deliveries_in_order_per_endpoint(store: &dyn Store) {
    let w = hook(store, &["*"]);
    for i in 0..3 {
        emit(store, &format!("e{i}"), "content.verdict");
    }
    let attempt = |at: i64, status: u16| DeliveryAttempt {
        at,
        status: Some(status),
        latency_ms: 3,
        response_excerpt: "x".into(),
        error: None,
    };
    let due = store.due_deliveries(10, 100).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, "e0");
    assert_eq!(due[0].sealed_secret, vec![7; 40]);
    store
        .record_delivery_attempt(
            due[0].delivery_id,
            &attempt(20, 500),
            DeliveryNext::RetryAt(100),
        )
        .unwrap();
    assert_eq!(
        store.webhook(w.id).unwrap().unwrap().failing_since,
        Some(20)
    );
    assert!(
        store.due_deliveries(50, 100).unwrap().is_empty(),
        "e1 overtook e0"
    );
    assert_eq!(store.next_delivery_at().unwrap(), Some(100));
    let due = store.due_deliveries(100, 100).unwrap();
    assert_eq!((due[0].event_id.as_str(), due[0].attempts), ("e0", 1));
    assert_eq!(due[0].first_attempt_at, Some(20));
    store
        .record_delivery_attempt(
            due[0].delivery_id,
            &attempt(110, 200),
            DeliveryNext::Delivered,
        )
        .unwrap();
    assert_eq!(store.webhook(w.id).unwrap().unwrap().failing_since, None);
    let log = store.delivery_attempts(due[0].delivery_id).unwrap();
    assert_eq!(
        log.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(500), Some(200)]
    );
    let due = store.due_deliveries(110, 100).unwrap();
    assert_eq!(due[0].event_id, "e1");
    let c = store.outbox_counts().unwrap();
    assert_eq!((c.events, c.pending, c.delivered, c.dead), (3, 2, 1, 0));
    assert!(matches!(
        store.record_delivery_attempt(999_999, &attempt(1, 200), DeliveryNext::Delivered),
        Err(Error::NotFound(_))
    ));
}

/// A dead delivery lets the next one go; redrive makes it the head again, in its original
/// place; `dead_letter_pending` gives up everything waiting.
pub fn dead_letters_and_redrive(store: &dyn Store) {
    let w = hook(store, &["*"]);
    for i in 0..3 {
        emit(store, &format!("d{i}"), "content.verdict");
    }
    let fail = DeliveryAttempt {
        at: 30,
        status: None,
        latency_ms: 1,
        response_excerpt: String::new(),
        error: Some("connection refused".into()),
    };
    let due = store.due_deliveries(10, 10).unwrap();
    store
        .record_delivery_attempt(due[0].delivery_id, &fail, DeliveryNext::Dead)
        .unwrap();
    let dead = store.dead_letters(w.id).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, "d0");
    assert_eq!(dead[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(store.due_deliveries(30, 10).unwrap()[0].event_id, "d1");
    assert_eq!(store.redrive(w.id, None, 40).unwrap(), 1);
    let due = store.due_deliveries(40, 10).unwrap();
    assert_eq!((due[0].event_id.as_str(), due[0].attempts), ("d0", 0));
    assert!(store.dead_letters(w.id).unwrap().is_empty());
    assert_eq!(store.dead_letter_pending(w.id, 50).unwrap(), 3);
    let dead = store.dead_letters(w.id).unwrap();
    assert_eq!(dead.len(), 3);
    let only = [dead[2].delivery_id];
    assert_eq!(store.redrive(w.id, Some(&only), 60).unwrap(), 1);
    assert_eq!(store.due_deliveries(60, 10).unwrap()[0].event_id, "d2");
    // Disabling dead-letters what is pending and keeps the first reason; a late retry of a
    // dead delivery does not bring it back; enabling clears the reason.
    assert_eq!(store.disable_webhook(w.id, "gone", 70).unwrap(), 1);
    assert_eq!(store.disable_webhook(w.id, "later", 71).unwrap(), 0);
    let hook_now = store.webhook(w.id).unwrap().unwrap();
    assert_eq!(
        (hook_now.enabled, hook_now.disabled_reason.as_deref()),
        (false, Some("gone"))
    );
    let late = store.dead_letters(w.id).unwrap()[0].delivery_id;
    store
        .record_delivery_attempt(late, &fail, DeliveryNext::RetryAt(80))
        .unwrap();
    assert_eq!(store.dead_letters(w.id).unwrap().len(), 3);
    assert_eq!(
        store.dead_letters(w.id).unwrap()[0].first_attempt_at,
        Some(30)
    );
    let (on, was) = store.set_webhook_enabled(w.id, true, None).unwrap();
    assert!(on.enabled && on.disabled_reason.is_none());
    assert!(!was, "it was disabled before");
    let (_, was) = store.set_webhook_enabled(w.id, true, None).unwrap();
    assert!(was, "enabling an enabled endpoint reports it was enabled");
    assert!(matches!(
        store.redrive(999_999, None, 1),
        Err(Error::NotFound(_))
    ));
}

/// Evidence expires on the clock its case is on, never under a legal hold; destroying it
/// drops the data key and logs the deletion.
/// Records submission `id` of `account` at 1,000 with evidence `obj-{id}`; its case.
fn with_evidence(store: &dyn Store, id: &str, account: &str) -> CaseId {
    let mut s = submission(id, Some(account), Some(("q", 1)));
    s.created_at = 1_000;
    s.evidence = Some(NewEvidence {
        object_id: format!("obj-{id}"),
        blob_key: format!("blob/{id}"),
        wrapped_key: vec![9; 72],
        key_fingerprint: "fp".into(),
        sha256: "ab".repeat(32),
        md5: "cd".repeat(16),
        size: 10,
        media_kind: "image".into(),
    });
    recorded(store.record_submission(&s, &mut |_| vec![]).unwrap())
        .case_id
        .unwrap()
}

/// Evidence of a case decided `confirmed` and not reported yet is off the unreported clock
/// (its report, waiting for a second approval or a hotline that is down, needs the files);
/// other decisions are on it, and closing the confirmed case puts it back on it.
pub fn evidence_waits_for_a_confirmed_report(store: &dyn Store) {
    let move_case = |case, from: &str, to: &str, decision: Option<&str>, at| {
        let t = CaseTransition {
            from: from.into(),
            to: to.into(),
            actor: "k".into(),
            note: None,
            decision: decision.map(str::to_owned),
            labels: Vec::new(),
            at,
        };
        store.transition_case(case, &t, &mut |_| vec![]).unwrap();
    };
    let confirmed = with_evidence(store, "w1", "u1");
    let annotated = with_evidence(store, "w2", "u2");
    let not_csam = with_evidence(store, "w3", "u3");
    for (case, decision) in [
        (confirmed, "confirmed"),
        (annotated, "Confirmed: apparent A1"),
        (not_csam, "not_csam"),
    ] {
        move_case(case, "open", "in_review", None, 1_100);
        move_case(case, "in_review", "decided", Some(decision), 1_200);
    }
    let due = || -> Vec<String> {
        store
            .expired_evidence(5_000, 10_000, 100, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect()
    };
    assert_eq!(due(), vec!["obj-w3"]);
    assert!(matches!(
        store.destroy_evidence("obj-w1", 5_000, 10_000, 100, "retention_expired"),
        Err(Error::Conflict(_))
    ));
    move_case(confirmed, "decided", "closed", None, 5_100);
    assert_eq!(due(), vec!["obj-w1", "obj-w3"]);
    store
        .destroy_evidence("obj-w1", 5_200, 10_000, 100, "retention_expired")
        .unwrap();
}

pub fn evidence_retention_and_destroy(store: &dyn Store) {
    let with_evidence = |id: &str, account: &str| with_evidence(store, id, account);
    let plain = with_evidence("r1", "u1");
    let reported = with_evidence("r2", "u2");
    let held = with_evidence("r3", "u3");
    let report = |case, at| {
        for (from, to) in [
            ("open", "in_review"),
            ("in_review", "decided"),
            ("decided", "reported"),
        ] {
            store
                .transition_case(
                    case,
                    &CaseTransition {
                        from: from.into(),
                        to: to.into(),
                        actor: "k".into(),
                        note: None,
                        decision: None,
                        labels: Vec::new(),
                        at,
                    },
                    &mut |_| vec![],
                )
                .unwrap();
        }
    };
    report(reported, 2_000);
    assert!(
        store
            .set_legal_hold(held, true, "k", 1_500)
            .unwrap()
            .legal_hold
    );
    // A held case's evidence is not destroyed, even by a caller that read it as due before
    // the hold was placed.
    assert!(matches!(
        store.destroy_evidence("obj-r3", 1_600, 10_000, 100, "retention_expired"),
        Err(Error::Conflict(_))
    ));
    assert!(store
        .evidence("obj-r3")
        .unwrap()
        .unwrap()
        .deleted_at
        .is_none());
    let ev = store.case_evidence(plain).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].wrapped_key.as_deref(), Some(&[9u8; 72][..]));
    // Unreported: 100 ms after storing; reported: 10,000 ms after the report.
    let due = |now| -> Vec<String> {
        store
            .expired_evidence(now, 10_000, 100, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect()
    };
    assert!(due(1_099).is_empty());
    assert_eq!(due(1_100), vec!["obj-r1"]);
    assert_eq!(due(12_000), vec!["obj-r1", "obj-r2"]);
    // A period too long to add to a time (never, in effect) selects nothing by its own rule
    // and still selects by the other (on PostgreSQL the sum overflowed a bigint and failed).
    let only = |after_report: i64, unreported: i64| -> Vec<String> {
        store
            .expired_evidence(12_000, after_report, unreported, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect()
    };
    assert_eq!(only(i64::MAX, 100), vec!["obj-r1"]);
    assert_eq!(only(10_000, i64::MAX), vec!["obj-r2"]);
    let gone = store
        .destroy_evidence("obj-r1", 12_001, 10_000, 100, "retention_expired")
        .unwrap();
    assert_eq!(gone.wrapped_key, None);
    assert_eq!(gone.deleted_at, Some(12_001));
    assert_eq!(gone.deletion_reason.as_deref(), Some("retention_expired"));
    let again = store
        .destroy_evidence("obj-r1", 13_000, 10_000, 100, "x")
        .unwrap();
    assert_eq!(again.deleted_at, Some(12_001));
    assert_eq!(due(1_000_000), vec!["obj-r2"]);
    // The destroyed record's blob is left until marked deleted; a live record's blob is
    // the evidence and cannot be marked.
    let left = |limit| -> Vec<String> {
        store
            .evidence_blobs_left(limit)
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect()
    };
    assert_eq!(left(10), vec!["obj-r1"]);
    assert_eq!(left(0), Vec::<String>::new());
    assert!(matches!(
        store.mark_blob_deleted("obj-r2", 12_500),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.mark_blob_deleted("nope", 12_500),
        Err(Error::NotFound(_))
    ));
    store.mark_blob_deleted("obj-r1", 12_500).unwrap();
    store.mark_blob_deleted("obj-r1", 12_600).unwrap();
    assert!(left(10).is_empty());
    let log = store.access_log("obj-r1").unwrap();
    assert_eq!(
        log,
        vec![(
            12_001,
            "system".to_string(),
            "destroy:retention_expired".to_string()
        )]
    );
    store.log_access("k9", "read", "obj-r2", 14_000).unwrap();
    assert_eq!(store.access_log("obj-r2").unwrap()[0].1, "k9");
    let lifted = store.set_legal_hold(held, false, "k", 20_000).unwrap();
    assert!(!lifted.legal_hold);
    // A note is a history line that changes nothing else.
    let before = store.case(held).unwrap().unwrap();
    store
        .note_case(held, "k", "referral", "nca", 21_000)
        .unwrap();
    let line = store.case_history(held).unwrap().pop().unwrap();
    assert_eq!(
        (
            line.at,
            line.actor.as_str(),
            line.action.as_str(),
            line.note.as_deref(),
            line.from_state.as_deref(),
            line.to_state.as_deref()
        ),
        (21_000, "k", "referral", Some("nca"), None, None)
    );
    assert_eq!(store.case(held).unwrap().unwrap(), before);
    assert!(matches!(
        store.note_case(9_999_999, "k", "referral", "nca", 1),
        Err(Error::NotFound(_))
    ));
    assert_eq!(due(1_000_000), vec!["obj-r2", "obj-r3"]);
    assert!(matches!(
        store.destroy_evidence("nope", 1, 10_000, 100, "x"),
        Err(Error::NotFound(_))
    ));
    // Found due unreported, then reported before the destruction: the report's clock keeps
    // it, even against a caller that read it as due.
    let late = with_evidence("r4", "u4");
    assert!(due(1_000_000).contains(&"obj-r4".to_string()));
    report(late, 1_500);
    assert!(matches!(
        store.destroy_evidence("obj-r4", 1_600, 10_000, 100, "retention_expired"),
        Err(Error::Conflict(_))
    ));
    assert!(store
        .evidence("obj-r4")
        .unwrap()
        .unwrap()
        .deleted_at
        .is_none());
    // Not yet due at all: refused the same way.
    assert!(matches!(
        store.destroy_evidence("obj-r4", 11_499, 10_000, 100, "retention_expired"),
        Err(Error::Conflict(_))
    ));
    let gone = store
        .destroy_evidence("obj-r4", 11_500, 10_000, 100, "retention_expired")
        .unwrap();
    assert_eq!(gone.deleted_at, Some(11_500));
}

/// An approval is recorded only on a decided case whose `updated_at` the approver saw; it
/// moves `updated_at`, so a second approval on the same view is refused; the decision made
/// on entering `decided` is kept on that history line.
pub fn approval_compare_and_set(store: &dyn Store) {
    let id = recorded(
        store
            .record_submission(
                &submission("a1", Some("u"), Some(("q", 1))),
                &mut |_| vec![],
            )
            .unwrap(),
    )
    .case_id
    .unwrap();
    let approval = |seen: i64, at: i64| CaseApproval {
        actor: "senior".into(),
        seen_updated_at: seen,
        note: Some("ok".into()),
        at,
    };
    let r = store.approve_case(id, &approval(1_000, 2_000), &mut |_| vec![]);
    assert!(
        matches!(r, Err(Error::Conflict(_))),
        "open case approved: {r:?}"
    );
    let r = store.approve_case(999_999, &approval(1_000, 2_000), &mut |_| vec![]);
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    for (from, to, decision) in [
        ("open", "in_review", None),
        ("in_review", "decided", Some("confirmed")),
    ] {
        store
            .transition_case(
                id,
                &CaseTransition {
                    from: from.into(),
                    to: to.into(),
                    actor: "reviewer".into(),
                    note: None,
                    decision: decision.map(str::to_owned),
                    labels: Vec::new(),
                    at: 3_000,
                },
                &mut |_| vec![],
            )
            .unwrap();
    }
    let r = store.approve_case(id, &approval(1_000, 4_000), &mut |_| vec![]);
    assert!(
        matches!(r, Err(Error::Conflict(_))),
        "stale view approved: {r:?}"
    );
    let c = store
        .approve_case(id, &approval(3_000, 4_000), &mut |c| {
            vec![event(&format!("approved-{}", c.id), "case.updated")]
        })
        .unwrap();
    assert_eq!((c.state.as_str(), c.updated_at), ("decided", 4_000));
    let r = store.approve_case(id, &approval(3_000, 5_000), &mut |_| vec![]);
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let h = store.case_history(id).unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.note.as_deref()
        ),
        ("approved", "senior", Some("ok"))
    );
    assert_eq!(h[2].decision.as_deref(), Some("confirmed"));
    assert_eq!(h[2].to_state.as_deref(), Some("decided"));
    let evs = store.events_since(0, 10).unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].id, format!("approved-{id}"));
}

/// History lines of every case in a period, in write order, paged by row id; the bounds
/// are `from <= at < to`.
pub fn history_between_pages(store: &dyn Store) {
    let mut cases = Vec::new();
    for (i, at) in [(0, 1_000), (1, 2_000), (2, 3_000)] {
        let mut s = submission(&format!("h{i}"), Some(&format!("u{i}")), Some(("q", 1)));
        s.created_at = at;
        let r = recorded(store.record_submission(&s, &mut |_| vec![]).unwrap());
        cases.push(r.case_id.unwrap());
    }
    store
        .transition_case(
            cases[0],
            &CaseTransition {
                from: "open".into(),
                to: "in_review".into(),
                actor: "k".into(),
                note: None,
                decision: None,
                labels: Vec::new(),
                at: 2_500,
            },
            &mut |_| vec![],
        )
        .unwrap();
    let all = store.case_history_between(0, i64::MAX, 0, 100).unwrap();
    let seen: Vec<(i64, &str, i64)> = all
        .iter()
        .map(|r| (r.case_id, r.entry.action.as_str(), r.entry.at))
        .collect();
    assert_eq!(
        seen,
        vec![
            (cases[0], "opened", 1_000),
            (cases[1], "opened", 2_000),
            (cases[2], "opened", 3_000),
            (cases[0], "state", 2_500),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let period: Vec<i64> = store
        .case_history_between(2_000, 3_000, 0, 100)
        .unwrap()
        .iter()
        .map(|r| r.entry.at)
        .collect();
    assert_eq!(period, vec![2_000, 2_500]);
    let first = store.case_history_between(0, i64::MAX, 0, 2).unwrap();
    assert_eq!(first.len(), 2);
    let rest = store
        .case_history_between(0, i64::MAX, first[1].id, 2)
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].id, all[2].id);
}

/// Submissions of a period in (`created_at`, id) order, paged by that pair, bounds
/// `from <= created_at < to`; equal times page correctly.
pub fn submissions_between_pages(store: &dyn Store) {
    for (id, at) in [
        ("s1", 500),
        ("s2", 1_000),
        ("s3", 1_000),
        ("s4", 1_000),
        ("s5", 2_000),
    ] {
        let mut s = submission(id, None, None);
        s.created_at = at;
        store.record_submission(&s, &mut |_| vec![]).unwrap();
    }
    let names = |v: &[StoredSubmission]| -> Vec<String> {
        v.iter().map(|s| s.platform_id.clone()).collect()
    };
    let all = store.submissions_between(0, i64::MAX, None, 100).unwrap();
    assert_eq!(names(&all), vec!["s1", "s2", "s3", "s4", "s5"]);
    let period = store.submissions_between(1_000, 2_000, None, 100).unwrap();
    assert_eq!(names(&period), vec!["s2", "s3", "s4"]);
    let p1 = store.submissions_between(1_000, 2_000, None, 2).unwrap();
    assert_eq!(names(&p1), vec!["s2", "s3"]);
    let last = p1.last().unwrap();
    let p2 = store
        .submissions_between(1_000, 2_000, Some((last.created_at, last.id)), 2)
        .unwrap();
    assert_eq!(names(&p2), vec!["s4"]);
    assert!(store
        .submissions_between(3_000, 4_000, None, 10)
        .unwrap()
        .is_empty());
}
