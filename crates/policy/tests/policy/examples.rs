//! docs/policy.md: every TOML block parses, and the worked-examples table holds.

use safeguard_policy::{
    AccountAge, Decision, ItemFacts, Kind, Policy, Priority, Rule, RuleRef, RuleSet, Surface,
    Verdict,
};

use crate::common::*;

const DOC: &str = include_str!("../../../../docs/policy.md");

fn toml_blocks() -> Vec<&'static str> {
    DOC.split("```toml\n")
        .skip(1)
        .map(|rest| {
            rest.split("```")
                .next()
                .expect("split yields at least one part")
        })
        .collect()
}

fn worked_policy() -> Policy {
    let block = toml_blocks()
        .into_iter()
        .find(|b| b.contains("id = \"csam-child-account\""))
        .expect("the worked-examples policy is on the page");
    let set = RuleSet::parse_toml(block).unwrap();
    Policy::compile(set.rules.into_iter().map(|s| Rule::new(s, 1)).collect()).unwrap()
}

fn by(id: &str) -> Option<RuleRef> {
    Some(RuleRef {
        id: id.into(),
        version: 1,
    })
}

#[test]
fn every_toml_block_parses() {
    let blocks = toml_blocks();
    assert!(blocks.len() >= 3, "found {}", blocks.len());
    for b in blocks {
        let set = RuleSet::parse_toml(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
        assert!(!set.rules.is_empty());
    }
}

fn csam() -> M {
    M::default().bank("NCMEC_CSAM").kind("csam").distance(12.0)
}

fn terror() -> M {
    let mut m = M::default().bank("TERROR_DB").distance(28.0);
    m.tags = vec!["terror".into()];
    m
}

#[test]
fn a_and_b_csam_by_account_age() {
    let p = worked_policy();
    let d = eval(&p, &item(), &[csam()]);
    assert_eq!(d.rule, by("csam"));
    assert_eq!(
        (
            d.verdict,
            d.queue.as_deref(),
            d.priority,
            d.report_candidate
        ),
        (Verdict::Block, Some("csam"), Priority::High, true)
    );
    assert_eq!(d.matched, [0]);
    let child = ItemFacts {
        account_age: AccountAge::Child,
        ..item()
    };
    let d = eval(&p, &child, &[csam()]);
    assert_eq!(d.rule, by("csam-child-account"));
    assert_eq!(
        (
            d.verdict,
            d.queue.as_deref(),
            d.priority,
            d.report_candidate
        ),
        (Verdict::Block, Some("csam-child"), Priority::Urgent, true)
    );
    assert_eq!(d.labels, ["child-account"]);
}

#[test]
fn c_and_d_terror_by_distance_of_one_match() {
    let p = worked_policy();
    let md5 = terror().signal("md5").distance(0.0);
    let d = eval(&p, &item(), &[terror(), md5]);
    assert_eq!(d.rule, by("terror-close"));
    assert_eq!(
        (d.verdict, d.queue.as_deref()),
        (Verdict::Block, Some("terror"))
    );
    assert_eq!(d.matched, [1]);
    let d = eval(&p, &item(), &[terror()]);
    assert_eq!(d.rule, by("terror-far"));
    assert_eq!(
        (d.verdict, d.queue.as_deref(), d.priority),
        (Verdict::Hold, Some("terror"), Priority::Normal)
    );
}

#[test]
fn e_and_f_memes_by_surface() {
    let p = worked_policy();
    let meme = M::default().bank("MEMES").distance(4.0);
    let private = ItemFacts {
        surface: Some(Surface::Private),
        ..item()
    };
    let d = eval(&p, &private, std::slice::from_ref(&meme));
    assert_eq!(d.rule, by("memes-private"));
    assert_eq!((d.verdict, d.queue.as_deref()), (Verdict::Allow, None));
    assert_eq!(d.labels, ["meme"]);
    let d = eval(&p, &item(), &[meme]);
    assert_eq!(d.rule, by("builtin.match"));
    assert_eq!(
        (d.verdict, d.queue.as_deref()),
        (Verdict::Review, Some("default"))
    );
}

#[test]
fn g_video_trial_only_records() {
    let p = worked_policy();
    let video = ItemFacts {
        kind: Kind::Video,
        ..item()
    };
    let d: Decision = eval(&p, &video, &[M::default().bank("VIDEOS").vpdq(60.0, 40.0)]);
    assert_eq!(d.rule, by("builtin.match"));
    assert_eq!(d.verdict, Verdict::Review);
    assert_eq!(d.shadow.len(), 1);
    assert_eq!(d.shadow[0].rule, by("video-trial").unwrap());
    assert_eq!(
        (d.shadow[0].verdict, d.shadow[0].queue.as_deref()),
        (Verdict::Block, Some("video"))
    );
}

#[test]
fn h_no_match() {
    let d = eval(&worked_policy(), &item(), &[]);
    assert_eq!((d.verdict, d.rule), (Verdict::Allow, None));
}
