//! Who may try a password now: the sign-in and enrolment throttles, and the bound on
//! concurrent argon2 runs.
//!
//! The rules, for a classroom network where students will try things:
//!
//! - **Checked and recorded in one step.** [`LoginGate::begin`] checks every limit and, under
//!   the same lock, counts the attempt as a failure *before* the password is verified. A
//!   success or a plain "enter your code" question gives it back. So a hundred concurrent
//!   requests cannot all pass the check before the first failure is counted.
//! - **Per address.** Failures from one client address, whatever the user names, lock that
//!   address out for a while ([`ADDR_MAX_FAILURES`] in [`WINDOW`] → [`ADDR_LOCKOUT`]); at
//!   most [`ADDR_MAX_IN_FLIGHT`] verifications run at once for one address.
//! - **Per account, per address.** Failures for one account name lock out that name *from
//!   that address only* ([`NAME_MAX_FAILURES`] → [`NAME_LOCKOUT`]). A student guessing
//!   `admin` from their PC locks themselves out, never the admin at their own tablet: a third
//!   party cannot use the lock-out to keep an account shut. Guessing from many addresses is
//!   bounded by the per-address limits and defeated by the password rule and two-factor login.
//! - **argon2 is bounded.** Every argon2 run (checking and making password hashes) goes to
//!   [`ARGON2_PARALLEL`] long-lived worker threads; a request that cannot get one within
//!   [`ARGON2_WAIT`] is answered 503 with `Retry-After` and is not counted as a failure. Each
//!   run takes about 19 MiB and a core for tens of milliseconds. The threads are dedicated,
//!   not the runtime's blocking pool, because glibc keeps freed memory in a per-thread arena:
//!   argon2 spread over the blocking pool's many threads left hundreds of megabytes behind
//!   after a burst of sign-ins (measured by the hostile-network benchmark), while two threads
//!   that reuse their own arena keep it to two runs' worth.
//!
//! - **A known teacher is not queued behind a storm.** An account name that signed in from
//!   an address in the last [`KNOWN_FOR`] has a lane of its own there: [`KNOWN_LANE`] more
//!   argon2 permits, on the same threads, so its check waits for at most the run in progress
//!   instead of every attacker's in the queue (a storm of sign-ins with random names from
//!   sixteen addresses kept a teacher waiting past [`ARGON2_WAIT`] on a loaded machine). The
//!   lane is keyed by name *and* address, like the lock-outs: guessing `admin` from another
//!   PC never gets it, and what it speeds up is a check of a password that already worked
//!   there. A teacher at a new address waits in the common queue.
//!
//! Memory is bounded: each map keeps at most [`MAX_TRACKED`] keys, dropping expired ones first
//! and then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

pub const WINDOW: Duration = Duration::from_secs(10 * 60);
pub const NAME_MAX_FAILURES: u32 = 5;
pub const NAME_LOCKOUT: Duration = Duration::from_secs(5 * 60);
pub const ADDR_MAX_FAILURES: u32 = 30;
pub const ADDR_LOCKOUT: Duration = Duration::from_secs(5 * 60);
pub const ADDR_MAX_IN_FLIGHT: u32 = 2;
pub const ARGON2_PARALLEL: usize = 2;
pub const ARGON2_WAIT: Duration = Duration::from_millis(1500);
/// Argon2 permits kept for known (name, address) pairs, on top of [`ARGON2_PARALLEL`].
pub const KNOWN_LANE: usize = 1;
/// How long a successful sign-in makes its (name, address) pair known.
pub const KNOWN_FOR: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_TRACKED: usize = 20_000;

/// Why an attempt may not even start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures; try again after this long.
    LockedOut(Duration),
    /// Too many verifications from this address right now.
    Busy,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// The first failure of the current window.
    since: Instant,
    /// The latest failure (the lock-out runs from it).
    last: Instant,
}

impl Failures {
    fn locked(&self, max: u32, lockout: Duration, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        (self.count >= max && elapsed < lockout).then(|| lockout - elapsed)
    }

    fn expired(&self, lockout: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= WINDOW.max(lockout)
    }
}

#[derive(Default)]
struct State {
    by_addr: HashMap<IpAddr, Failures>,
    by_name: HashMap<(String, IpAddr), Failures>,
    in_flight: HashMap<IpAddr, u32>,
    /// When each (name, address) pair last signed in successfully.
    known: HashMap<(String, IpAddr), Instant>,
}

fn add_failure<K: Eq + Hash + Clone>(
    map: &mut HashMap<K, Failures>,
    key: &K,
    now: Instant,
    lockout: Duration,
) {
    if map.len() >= MAX_TRACKED && !map.contains_key(key) {
        map.retain(|_, f| !f.expired(lockout, now));
        if map.len() >= MAX_TRACKED {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
    let f = map.entry(key.clone()).or_insert(Failures {
        count: 0,
        since: now,
        last: now,
    });
    if now.saturating_duration_since(f.since) >= WINDOW
        && f.locked(u32::MAX, lockout, now).is_none()
    {
        *f = Failures {
            count: 0,
            since: now,
            last: now,
        };
    }
    f.count += 1;
    f.last = now;
}

fn remove_failure<K: Eq + Hash>(map: &mut HashMap<K, Failures>, key: &K) {
    if let Some(f) = map.get_mut(key) {
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            map.remove(key);
        }
    }
}

/// An argon2 run for a worker thread.
type Job = Box<dyn FnOnce() + Send>;

/// The sign-in and enrolment gate, shared by every request.
#[derive(Clone)]
pub struct LoginGate {
    state: Arc<Mutex<State>>,
    argon2: Arc<Semaphore>,
    /// The known pairs' lane (see the module's rules).
    known_lane: Arc<Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginGate {
    pub fn new() -> Self {
        // The two semaphores admit at most ARGON2_PARALLEL + KNOWN_LANE jobs, so the queue
        // never holds more.
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(ARGON2_PARALLEL + KNOWN_LANE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..ARGON2_PARALLEL {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        // Every gate is gone: the thread ends with it.
                        Err(_) => return,
                    };
                    job();
                })
                .expect("starting an argon2 thread");
        }
        LoginGate {
            state: Arc::new(Mutex::new(State::default())),
            argon2: Arc::new(Semaphore::new(ARGON2_PARALLEL)),
            known_lane: Arc::new(Semaphore::new(KNOWN_LANE)),
            jobs,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an attempt for `name` from `addr`: checks every limit and counts the attempt as
    /// a failure in the same step. The returned [`Attempt`] gives it back on success.
    pub fn begin(&self, addr: IpAddr, name: &str, now: Instant) -> Result<Attempt, Refused> {
        let mut s = self.lock();
        if let Some(left) = s
            .by_addr
            .get(&addr)
            .and_then(|f| f.locked(ADDR_MAX_FAILURES, ADDR_LOCKOUT, now))
        {
            return Err(Refused::LockedOut(left));
        }
        let key = (name.to_string(), addr);
        if let Some(left) = s
            .by_name
            .get(&key)
            .and_then(|f| f.locked(NAME_MAX_FAILURES, NAME_LOCKOUT, now))
        {
            return Err(Refused::LockedOut(left));
        }
        let n = s.in_flight.get(&addr).copied().unwrap_or(0);
        if n >= ADDR_MAX_IN_FLIGHT {
            return Err(Refused::Busy);
        }
        if s.in_flight.len() >= MAX_TRACKED && n == 0 {
            // Every tracked address has a verification running: that is the argon2 queue's
            // job to bound; refuse rather than grow.
            return Err(Refused::Busy);
        }
        s.in_flight.insert(addr, n + 1);
        add_failure(&mut s.by_addr, &addr, now, ADDR_LOCKOUT);
        add_failure(&mut s.by_name, &key, now, NAME_LOCKOUT);
        Ok(Attempt {
            gate: self.clone(),
            addr,
            name: name.to_string(),
        })
    }

    /// Runs `f` (an argon2 hash or check) on one of the argon2 threads, waiting at most
    /// [`ARGON2_WAIT`] for one to be free; `None` when the box is too busy (answer 503 with
    /// `Retry-After`).
    pub async fn run_argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.run_argon2_in(&self.argon2, f).await
    }

    /// Whether `name` signed in successfully from `addr` within [`KNOWN_FOR`].
    fn is_known(&self, name: &str, addr: IpAddr, now: Instant) -> bool {
        self.lock()
            .known
            .get(&(name.to_string(), addr))
            .is_some_and(|&at| now.saturating_duration_since(at) < KNOWN_FOR)
    }

    async fn run_argon2_in<T: Send + 'static>(
        &self,
        lane: &Arc<Semaphore>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = tokio::time::timeout(ARGON2_WAIT, lane.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = tx.send(f());
        });
        // Never blocks: the permit guarantees room in the queue.
        self.jobs.try_send(job).ok()?;
        rx.await.ok()
    }
}

/// One sign-in attempt in progress; counted as a failure unless told otherwise.
pub struct Attempt {
    gate: LoginGate,
    addr: IpAddr,
    name: String,
}

impl Attempt {
    /// The password was right: the provisional failure is given back and the name's count
    /// from this address starts again.
    pub fn succeeded(self) {
        let now = Instant::now();
        let mut s = self.gate.lock();
        remove_failure(&mut s.by_addr, &self.addr);
        let key = (self.name.clone(), self.addr);
        s.by_name.remove(&key);
        if s.known.len() >= MAX_TRACKED && !s.known.contains_key(&key) {
            s.known
                .retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
            if s.known.len() >= MAX_TRACKED {
                if let Some(oldest) = s
                    .known
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                {
                    s.known.remove(&oldest);
                }
            }
        }
        s.known.insert(key, now);
    }

    /// Runs `f` (this attempt's password check) like [`LoginGate::run_argon2`], in the known
    /// pairs' lane when this name signed in from this address before.
    pub async fn run_argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let lane = if self.gate.is_known(&self.name, self.addr, Instant::now()) {
            &self.gate.known_lane
        } else {
            &self.gate.argon2
        };
        self.gate.run_argon2_in(lane, f).await
    }

    /// Not a failure after all (the password was right and a second factor is asked for,
    /// or the box was too busy to check): the provisional failure is given back.
    pub fn not_a_failure(self) {
        let mut s = self.gate.lock();
        remove_failure(&mut s.by_addr, &self.addr);
        remove_failure(&mut s.by_name, &(self.name.clone(), self.addr));
    }

    /// A real failure: it stays counted.
    pub fn failed(self) {}
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // Whatever happened (even a cancelled request), the verification is over; an
        // attempt dropped without an outcome stays counted as a failure.
        let mut s = self.gate.lock();
        if let Some(n) = s.in_flight.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.in_flight.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn attempts_count_as_failures_from_the_moment_they_start() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        // Attempts are counted when they start: ones still running, or dropped without an
        // outcome (a cancelled request), already count towards the lock-out.
        let mut held = Vec::new();
        for i in 0..NAME_MAX_FAILURES {
            if held.len() == ADDR_MAX_IN_FLIGHT as usize {
                held.clear();
            }
            let a = g
                .begin(ip(1), "admin", t0)
                .unwrap_or_else(|e| panic!("{i}: {e:?}"));
            held.push(a);
        }
        drop(held);
        assert!(matches!(
            g.begin(ip(1), "admin", t0),
            Err(Refused::LockedOut(_))
        ));
    }

    #[test]
    fn a_student_locking_admin_out_does_not_lock_the_admin_at_another_address() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        for _ in 0..NAME_MAX_FAILURES {
            g.begin(ip(66), "admin", t0).unwrap().failed();
        }
        assert!(matches!(
            g.begin(ip(66), "admin", t0),
            Err(Refused::LockedOut(_))
        ));
        let a = g
            .begin(ip(10), "admin", t0)
            .expect("the admin's own tablet");
        a.succeeded();
        // After the lock-out the student may try again.
        assert!(g
            .begin(ip(66), "admin", t0 + NAME_LOCKOUT + Duration::from_secs(1))
            .is_ok());
    }

    #[test]
    fn random_names_from_one_address_lock_that_address_out() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        for i in 0..ADDR_MAX_FAILURES {
            g.begin(ip(7), &format!("user{i}"), t0).unwrap().failed();
        }
        assert!(matches!(
            g.begin(ip(7), "someone-new", t0),
            Err(Refused::LockedOut(_))
        ));
        assert!(g.begin(ip(8), "someone-new", t0).is_ok());
    }

    #[test]
    fn at_most_two_verifications_per_address_at_once() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        let a = g.begin(ip(3), "a", t0).unwrap();
        let b = g.begin(ip(3), "b", t0).unwrap();
        assert_eq!(g.begin(ip(3), "c", t0).err(), Some(Refused::Busy));
        drop(a);
        let c = g.begin(ip(3), "c", t0).unwrap();
        drop((b, c));
    }

    #[test]
    fn success_and_questions_give_the_provisional_failure_back() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        for _ in 0..20 {
            g.begin(ip(4), "prof", t0).unwrap().not_a_failure();
        }
        for _ in 0..NAME_MAX_FAILURES - 1 {
            g.begin(ip(4), "prof", t0).unwrap().failed();
        }
        g.begin(ip(4), "prof", t0).unwrap().succeeded();
        // The success reset the name's count: four more failures are still allowed.
        for _ in 0..NAME_MAX_FAILURES - 1 {
            g.begin(ip(4), "prof", t0).unwrap().failed();
        }
        assert!(g.begin(ip(4), "prof", t0).is_ok());
    }

    #[tokio::test]
    async fn argon2_runs_are_bounded_and_waiting_is_bounded() {
        let g = LoginGate::new();
        // Fill every argon2 thread with a run that waits for a signal.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let mut busy = Vec::new();
        for _ in 0..ARGON2_PARALLEL {
            let (g, hold) = (g.clone(), hold.clone());
            busy.push(tokio::spawn(async move {
                g.run_argon2(move || {
                    let _ = hold.lock().unwrap().recv();
                    std::thread::current().name().map(str::to_string)
                })
                .await
            }));
        }
        // All threads are taken: a further run waits ARGON2_WAIT, then gives up.
        while g.argon2.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let t0 = std::time::Instant::now();
        assert_eq!(
            g.run_argon2(|| 1).await,
            None,
            "no thread while all are busy"
        );
        assert!(t0.elapsed() >= ARGON2_WAIT, "it waited for one first");
        for _ in 0..ARGON2_PARALLEL {
            release.send(()).unwrap();
        }
        for b in busy {
            let name = b.await.unwrap().expect("ran").expect("a named thread");
            assert!(name.starts_with("argon2-"), "{name}");
        }
        assert_eq!(g.run_argon2(|| 2).await, Some(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_known_at_its_address_is_checked_before_a_storm_of_others() {
        let g = LoginGate::new();
        // "prof" signed in from the tablet (.5) before; the storm comes from elsewhere.
        g.begin(ip(5), "prof", Instant::now()).unwrap().succeeded();
        let order = Arc::new(Mutex::new(Vec::<String>::new()));
        // Every argon2 thread busy with a run that waits for a signal.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let mut runs = Vec::new();
        for _ in 0..ARGON2_PARALLEL {
            let (g, hold) = (g.clone(), hold.clone());
            runs.push(tokio::spawn(async move {
                g.run_argon2(move || {
                    let _ = hold.lock().unwrap().recv();
                })
                .await
                .is_some()
            }));
        }
        while g.argon2.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // Ten guesses from other addresses queue for the common lane, among them "prof"
        // guessed from a student's PC (.9): not known there.
        for i in 0..10u8 {
            let (g, order) = (g.clone(), order.clone());
            let (addr, name) = if i == 0 {
                (ip(9), "prof".to_string())
            } else {
                (ip(100 + i), format!("guess{i}"))
            };
            runs.push(tokio::spawn(async move {
                let a = g.begin(addr, &name, Instant::now()).unwrap();
                let r = a.run_argon2(move || order.lock().unwrap().push(name)).await;
                a.failed();
                r.is_some()
            }));
        }
        // (They wait on the common lane's permits; give them time to get in line.)
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The teacher, last to ask, from the tablet.
        let teacher = {
            let (g, order) = (g.clone(), order.clone());
            tokio::spawn(async move {
                let a = g.begin(ip(5), "prof", Instant::now()).unwrap();
                let r = a
                    .run_argon2(move || order.lock().unwrap().push("teacher".into()))
                    .await;
                a.succeeded();
                r.is_some()
            })
        };
        // Its run is queued for the threads before any of theirs can be.
        while g.known_lane.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..ARGON2_PARALLEL {
            release.send(()).unwrap();
        }
        assert!(teacher.await.unwrap(), "the teacher's check ran");
        for r in runs {
            assert!(r.await.unwrap(), "every queued run ran in time");
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 11, "{order:?}");
        assert_eq!(order[0], "teacher", "{order:?}");
        // Never the lane for the same name from another address.
        assert!(!g.is_known("prof", ip(9), Instant::now()));
        assert!(g.is_known("prof", ip(5), Instant::now()));
        assert!(!g.is_known("prof", ip(5), Instant::now() + KNOWN_FOR));
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let g = LoginGate::new();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(i as u128));
            g.begin(addr, "x", t0).unwrap().failed();
        }
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(i as u128));
            g.begin(addr, "y", t0).unwrap().succeeded();
        }
        let s = g.lock();
        assert!(s.by_addr.len() <= MAX_TRACKED && s.by_name.len() <= MAX_TRACKED);
        assert!(s.known.len() <= MAX_TRACKED);
        assert!(s.in_flight.is_empty());
    }
}
