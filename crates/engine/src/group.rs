//! Group commit: concurrent callers share one store transaction, so a burst of writes costs
//! one durable commit (one fsync) and one turn of the single writer instead of one each.
//! Submissions ([`GroupCommit`], from [`crate::action::Actioner::record`]) and the review
//! console's claims ([`ClaimGroup`]) go through it.
//!
//! There is no background thread. The first caller to arrive while nobody is committing
//! becomes the leader: it takes the queued jobs (its own first; at most [`MAX_BATCH`]),
//! commits them together, hands every caller its own outcome, and then passes the lead to the
//! oldest caller still waiting, if any, before returning. So a caller commits at most one
//! batch besides waiting for its own, and at low load a lone caller commits alone at once:
//! grouping adds no latency, it only happens when callers already overlap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard, PoisonError};

use safeguard_store::action::{SubmissionJob, SubmitOutcome};
use safeguard_store::console::{ClaimJob, Claimed};
use safeguard_store::{Error, Store};

/// Most jobs in one transaction: enough to amortise the commit over a burst, few enough that
/// the writer lock is never held long (a submission's or a claim's writes take tens of µs).
pub const MAX_BATCH: usize = 256;

enum Reply<O> {
    // Boxed: a stored submission is large, and the hand-over message is sent far more often.
    Done(Box<Result<O, Error>>),
    /// The previous leader finished its batch; the receiver commits the next one.
    Lead,
}

struct Queue<J, O> {
    jobs: Vec<(J, SyncSender<Reply<O>>)>,
    /// Someone is committing a batch or has been told to; the queue is non-empty only while
    /// this is set, so a new caller either leads at once or is reached by a hand-over.
    leading: bool,
}

/// Groups concurrent jobs of one kind into shared transactions; [`Group::run`] is given the
/// function that commits a batch.
pub struct Group<J, O> {
    queue: Mutex<Queue<J, O>>,
    batches: AtomicU64,
    jobs: AtomicU64,
}

/// Counters of a group since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Transactions committed (or attempted).
    pub batches: u64,
    /// Jobs in them.
    pub jobs: u64,
}

impl<J, O> Default for Group<J, O> {
    fn default() -> Self {
        Group {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                leading: false,
            }),
            batches: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
        }
    }
}

impl<J, O> std::fmt::Debug for Group<J, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").finish_non_exhaustive()
    }
}

/// A copy of a store error for each caller of a failed commit (the error is not `Clone`).
fn copy(e: &Error) -> Error {
    match e {
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::Conflict(m) => Error::Conflict(m.clone()),
        Error::Corrupt(m) => Error::Corrupt(m.clone()),
        other => Error::Backend(other.to_string()),
    }
}

/// Passes the lead on (or clears it) when the leader is done, even if the store panicked,
/// so one failed batch can never leave the queue without a leader.
struct HandOver<'a, J, O>(&'a Group<J, O>);

impl<J, O> Drop for HandOver<'_, J, O> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        match q.jobs.first() {
            // The hand-over channel holds one message and its owner has none yet (it is
            // still queued), so this send cannot block.
            Some((_, next)) => {
                if next.send(Reply::Lead).is_err() {
                    // Its caller is gone (a panicked thread); nobody else will lead, so
                    // fail the queue rather than strand it.
                    for (_, tx) in q.jobs.drain(..) {
                        let _ = tx.send(Reply::Done(Box::new(Err(Error::Backend(
                            "group commit: the next leader is gone".into(),
                        )))));
                    }
                    q.leading = false;
                }
            }
            None => q.leading = false,
        }
    }
}

impl<J, O> Group<J, O> {
    fn lock(&self) -> MutexGuard<'_, Queue<J, O>> {
        // The queue's invariants hold between statements; a panic elsewhere cannot break them.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Transactions and jobs so far.
    pub fn stats(&self) -> Stats {
        Stats {
            batches: self.batches.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
        }
    }

    /// Runs `job` in a batch with whatever other jobs are being run at the same moment.
    /// `commit` commits a batch in one transaction and answers each job in order, or fails
    /// the whole batch; the caller that leads uses its own `commit`, so every caller of one
    /// group must pass the same one.
    pub fn run(
        &self,
        job: J,
        commit: impl FnOnce(&mut [J]) -> Result<Vec<Result<O, Error>>, Error>,
    ) -> Result<O, Error> {
        let (tx, rx) = sync_channel(1);
        let lead = {
            let mut q = self.lock();
            q.jobs.push((job, tx));
            !std::mem::replace(&mut q.leading, true)
        };
        if !lead {
            match recv(&rx)? {
                Reply::Done(outcome) => return *outcome,
                Reply::Lead => {}
            }
        }
        {
            let _hand_over = HandOver(self);
            let batch: Vec<_> = {
                let mut q = self.lock();
                let n = q.jobs.len().min(MAX_BATCH);
                q.jobs.drain(..n).collect()
            };
            let (mut jobs, replies): (Vec<J>, Vec<SyncSender<Reply<O>>>) =
                batch.into_iter().unzip();
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.jobs.fetch_add(
                u64::try_from(jobs.len()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            match commit(&mut jobs) {
                Ok(outcomes) => {
                    // A batch answered short (a backend bug) leaves the rest without a
                    // reply; their senders drop below and they get an error, not a hang.
                    for (outcome, reply) in outcomes.into_iter().zip(&replies) {
                        // A caller that is gone (panicked) just misses its answer.
                        let _ = reply.send(Reply::Done(Box::new(outcome)));
                    }
                }
                Err(e) => {
                    for reply in &replies {
                        let _ = reply.send(Reply::Done(Box::new(Err(copy(&e)))));
                    }
                }
            }
        }
        // The leader's own job was first in its batch, so its answer is waiting.
        match recv(&rx)? {
            Reply::Done(outcome) => *outcome,
            Reply::Lead => Err(Error::Backend(
                "group commit: lead handed to a caller already answered".into(),
            )),
        }
    }
}

fn recv<O>(rx: &Receiver<Reply<O>>) -> Result<Reply<O>, Error> {
    rx.recv().map_err(|_| {
        // The leader panicked inside the store with this job in its batch.
        Error::Backend("group commit: the committing thread failed".into())
    })
}

/// Groups concurrent submission records into shared transactions.
#[derive(Debug, Default)]
pub struct GroupCommit(Group<SubmissionJob, SubmitOutcome>);

impl GroupCommit {
    /// Transactions and submissions so far.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// Records `job` in `store`, in a transaction shared with whatever other submissions are
    /// being recorded at the same moment. The outcome is exactly what
    /// [`safeguard_store::ActionStore::record_submission`] would give for it alone.
    pub fn record(&self, store: &dyn Store, job: SubmissionJob) -> Result<SubmitOutcome, Error> {
        self.0.run(job, |jobs| store.record_submissions(jobs))
    }
}

/// Groups concurrent claims of the review console into shared transactions: with 20
/// reviewers pressing "next case" at once, SQLite's single writer commits them in a few
/// transactions instead of twenty queued ones.
#[derive(Debug, Default)]
pub struct ClaimGroup(Group<ClaimJob, Claimed>);

impl ClaimGroup {
    /// Transactions and claims so far.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// Claims for `job` in `store`, in a transaction shared with the claims made at the same
    /// moment: exactly what [`safeguard_store::ConsoleStore::claim_next`] would answer, run
    /// after the claims queued before it.
    pub fn claim(&self, store: &dyn Store, job: ClaimJob) -> Result<Claimed, Error> {
        self.0.run(job, |jobs| store.claim_next_batch(jobs))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use safeguard_store::action::{NewEvent, NewSubmission, Recorded};
    use safeguard_store::{ActionStore, SqliteStore};

    use super::*;

    fn job(id: &str, fingerprint: &str) -> SubmissionJob {
        let event = format!("evt_{id}");
        SubmissionJob {
            submission: NewSubmission {
                platform_id: id.into(),
                fingerprint: fingerprint.into(),
                account: None,
                verdict: "allow".into(),
                rule: None,
                context: "{}".into(),
                result: "{}".into(),
                case: None,
                evidence: None,
                created_at: 1,
            },
            events: Box::new(move |_: &Recorded| {
                vec![NewEvent {
                    id: event.clone(),
                    event_type: "content.verdict".into(),
                    created_at: 1,
                    body: "{}".into(),
                }]
            }),
        }
    }

    /// Many threads at once: every submission recorded exactly once with its own outcome,
    /// conflicts answered to their own caller only, and fewer transactions than callers.
    #[test]
    fn concurrent_callers_share_transactions_and_get_their_own_outcomes() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let gc = Arc::new(GroupCommit::default());
        store
            .record_submission(&job("taken", "fp-a").submission, &mut |_| vec![])
            .unwrap();
        let threads: Vec<_> = (0..64)
            .map(|t| {
                let store = Arc::clone(&store);
                let gc = Arc::clone(&gc);
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..20 {
                        let id = format!("t{t}-{i}");
                        let r = gc.record(&*store, job(&id, "fp"));
                        out.push(
                            matches!(r, Ok(SubmitOutcome::Recorded(ref s)) if s.platform_id == id),
                        );
                    }
                    let clash = gc.record(&*store, job("taken", "fp-b"));
                    (out, matches!(clash, Err(Error::Conflict(_))))
                })
            })
            .collect();
        for t in threads {
            let (out, clashed) = t.join().unwrap();
            assert!(out.iter().all(|ok| *ok), "every caller gets its own record");
            assert!(clashed, "a conflict reaches its own caller");
        }
        assert_eq!(store.events_since(0, 10_000).unwrap().len(), 64 * 20);
        for t in 0..64 {
            for i in 0..20 {
                assert!(store.submission(&format!("t{t}-{i}")).unwrap().is_some());
            }
        }
        let stats = gc.stats();
        assert_eq!(stats.jobs, 64 * 21);
        assert!(stats.batches <= stats.jobs);
        let q = gc.0.lock();
        assert!(q.jobs.is_empty() && !q.leading, "the queue is left idle");
    }

    /// A lone caller commits at once, alone.
    #[test]
    fn a_lone_caller_commits_alone() {
        let store = SqliteStore::open_in_memory().unwrap();
        let gc = GroupCommit::default();
        let r = gc.record(&store, job("one", "fp")).unwrap();
        assert!(matches!(r, SubmitOutcome::Recorded(_)));
        let r = gc.record(&store, job("one", "fp")).unwrap();
        assert!(matches!(r, SubmitOutcome::Replayed(_)));
    }

    /// Callers that arrive while a batch is being committed wait, and the next leader
    /// commits all of them in one transaction (made deterministic by posing as the leader).
    #[test]
    fn waiting_callers_are_committed_in_one_batch() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let gc = Arc::new(GroupCommit::default());
        gc.0.lock().leading = true;
        let threads: Vec<_> = (0..10)
            .map(|i| {
                let store = Arc::clone(&store);
                let gc = Arc::clone(&gc);
                std::thread::spawn(move || gc.record(&*store, job(&format!("w{i}"), "fp")))
            })
            .collect();
        while gc.0.lock().jobs.len() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The pretend leader finishes: the lead passes to the oldest waiter.
        drop(HandOver(&gc.0));
        for t in threads {
            assert!(matches!(t.join().unwrap(), Ok(SubmitOutcome::Recorded(_))));
        }
        assert_eq!(
            gc.stats(),
            Stats {
                batches: 1,
                jobs: 10
            }
        );
        assert_eq!(store.events_since(0, 100).unwrap().len(), 10);
    }

    /// Claims through the group from many threads: every case handed out once, to the
    /// caller that got it, each caller's answers in its own order, and `None` once the queue
    /// is empty.
    #[test]
    fn concurrent_claims_share_transactions_and_never_collide() {
        use safeguard_store::action::CaseAssignment;
        use safeguard_store::console::NewUser;
        use safeguard_store::ConsoleStore;

        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let mut batch: Vec<SubmissionJob> = (0..400)
            .map(|i| {
                let mut j = job(&format!("c{i}"), &format!("fp{i}"));
                j.submission.case = Some(CaseAssignment {
                    queue: "csam".into(),
                    priority: 0,
                    report_candidate: true,
                    labels: vec![],
                });
                j.events = Box::new(|_| vec![]);
                j
            })
            .collect();
        for r in store.record_submissions(&mut batch).unwrap() {
            r.unwrap();
        }
        let holders: Vec<i64> = (0..16)
            .map(|i| {
                store
                    .create_user(&NewUser {
                        name: format!("r{i}"),
                        roles: "reviewer".into(),
                        setup_token_hash: format!("t{i}"),
                        setup_expires_at: 1,
                        at: 1,
                    })
                    .unwrap()
                    .id
            })
            .collect();
        let group = Arc::new(ClaimGroup::default());
        let threads: Vec<_> = holders
            .iter()
            .map(|&h| {
                let store = Arc::clone(&store);
                let group = Arc::clone(&group);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let job = ClaimJob {
                            queues: vec!["csam".into()],
                            holder: h,
                            actor_label: format!("r {h}"),
                            now: 1_000,
                            lease_ms: 60_000,
                            events: Box::new(|_| vec![]),
                        };
                        match group.claim(&*store, job).unwrap() {
                            Some((case, lease)) => {
                                assert_eq!(lease.holder, h);
                                mine.push(case.id);
                            }
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert!(seen.insert(id), "case {id} handed out twice");
            }
        }
        assert_eq!(seen.len(), 400);
        let stats = group.stats();
        assert_eq!(
            stats.jobs,
            400 + 16,
            "every claim, and each thread's final empty one"
        );
        assert!(stats.batches <= stats.jobs);
        let q = group.0.lock();
        assert!(q.jobs.is_empty() && !q.leading, "the queue is left idle");
    }
}
