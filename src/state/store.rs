//! Writing one env of one pipeline, under that env's lock ([`Store`]).
//!
//! Opening takes `pipelines/<pipeline>/envs/<env>/lock`, so runs in other
//! envs (and of other pipelines) go on at once; reads the end of the env's
//! index only (its newest id, its live state, its current release, a run
//! that died); and repairs that run. A release starts with a `Reserved`
//! line in the env's index, then its log (created only if no other run,
//! of any env, took its id), then a `Started` line; it ends with a
//! `Finished` line that carries the env's live state after it.
//! `spec/state.md` documents the formats and the durability rules.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::backward::{self, Tail};
use super::boot;
use super::clock::Clock;
use super::dir::{PipelineDir, StateDir};
use super::durable::{append, create_atomic, create_dir, cut_torn_tail, open_append};
use super::error::StateError;
use super::format::{self, IndexLine, LogLine, head_line, line, store_live};
use super::id::ReleaseId;
use super::journal::{Journal, read_log};
use super::legacy;
use super::live::{Live, advance};
use super::lock::{Holder, Lock, Wait};
use super::orphans::{self, Orphan};
use super::query::{ReleaseSummary, is_deployment};
use super::recovery::{Recovered, interrupt_events};
use super::release::{Release, ReleaseHeader, ReleaseMeta};
use crate::engine::{DEFAULT_GRACE, Event, Plan};

/// One env of one pipeline under its lock: what a run writes through.
///
/// Opening it takes the env's lock, creates what is missing and recovers
/// the env's release left unfinished by a run that died. It is then the
/// env's only writer until dropped.
#[derive(Debug)]
pub struct Store {
    dir: PipelineDir,
    env: String,
    clock: Clock,
    index_path: PathBuf,
    index: File,
    /// The newest id the env's index (or the legacy index) names.
    newest: Option<ReleaseId>,
    /// What is live in the env now.
    live: Live,
    /// The env's current release.
    current: Option<ReleaseSummary>,
    // Declared last: dropped (unlocked) after the files are closed.
    lock: Lock,
}

impl Store {
    /// Locks env `env` of pipeline `pipeline` in the state directory at
    /// `path` (creating what is missing), then recovers the env's release
    /// left unfinished by a run that died: [`open_with`](Self::open_with)
    /// with a grace of [`DEFAULT_GRACE`].
    ///
    /// # Errors
    ///
    /// See [`open_with`](Self::open_with).
    pub fn open(
        path: &Path,
        pipeline: &str,
        env: &str,
        holder: &Holder,
        wait: Wait,
        clock: Clock,
    ) -> Result<(Self, Vec<Recovered>), StateError> {
        let reap = Reap {
            grace: DEFAULT_GRACE,
            notice: &|_| {},
        };
        Self::open_with(path, pipeline, env, holder, wait, clock, &reap)
    }

    /// [`open`](Self::open), where the commands a dead run left running
    /// get `reap.grace` between `SIGTERM` and `SIGKILL` (see *Recovery* in
    /// `spec/state.md`), and `reap.notice` is told before they are
    /// signalled. Script files a dead run left in the env's
    /// [`script_dir`](Self::script_dir) are removed.
    ///
    /// # Errors
    ///
    /// [`StateError::Locked`] if another run of the env holds the lock
    /// (after `wait`); [`StateError::StillRunning`] if commands of a dead
    /// run of the env still run after `SIGKILL`; a file cannot be read or
    /// written, or is corrupt.
    pub fn open_with(
        path: &Path,
        pipeline: &str,
        env: &str,
        holder: &Holder,
        wait: Wait,
        clock: Clock,
        reap: &Reap<'_>,
    ) -> Result<(Self, Vec<Recovered>), StateError> {
        let dir = StateDir::new(path).pipeline(pipeline);
        let lock = Lock::acquire(&dir.env_dir(env), holder, wait)?;
        create_dir(&dir.path().join("releases"))?;
        let index_path = dir.index_path(env);
        if !index_path.exists() {
            create_atomic(&index_path, head_line().as_bytes())?;
        }
        let tail = backward::tail(&index_path)?;
        if let Some(complete) = tail.torn {
            cut_torn_tail(&index_path, complete)?;
        }
        let newest = tail.newest.max(legacy::newest(path)?);
        let mut store = Self {
            live: dir.live(env)?,
            current: dir.current(env)?,
            index: open_append(&index_path)?,
            index_path,
            env: env.to_owned(),
            dir,
            clock,
            newest,
            lock,
        };
        let recovered = store.recover(&tail, reap)?;
        remove_scripts(&store.script_dir());
        Ok((store, recovered))
    }

    /// Where the env's runs write long commands' script files:
    /// `envs/<env>/scripts/`, emptied each time the env is opened (nothing
    /// else of the env runs then), so that a run killed outright leaves
    /// none behind for long.
    #[must_use]
    pub fn script_dir(&self) -> PathBuf {
        self.dir.env_dir(&self.env).join("scripts")
    }

    /// The pipeline's state, to read.
    #[must_use]
    pub fn dir(&self) -> &PipelineDir {
        &self.dir
    }

    /// The env.
    #[must_use]
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The clock the store takes times from.
    #[must_use]
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The lock held.
    #[must_use]
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// What is live in the env now.
    #[must_use]
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The env's current release: its newest deploy or rollback, whatever
    /// its status.
    #[must_use]
    pub fn current(&self) -> Option<&ReleaseSummary> {
        self.current.as_ref()
    }

    /// The id the next release gets (nothing is written): the clock's id,
    /// or the successor of the env's newest id if that is not greater,
    /// skipping ids another env's run took (their log exists).
    #[must_use]
    pub fn next_id(&self) -> ReleaseId {
        let mut id = ReleaseId::allocate(self.clock.now(), self.newest);
        while self.dir.id_taken(id) {
            id = id.successor();
        }
        id
    }

    /// Starts release `id` (from [`next_id`](Self::next_id)) running
    /// `plan`: reserves the id in the env's index, creates its log
    /// (atomically, never replacing one), writes its `Started` line, and
    /// returns the journal the executor records into. `previous` is the
    /// env's current release for a deploy or rollback.
    ///
    /// # Errors
    ///
    /// [`StateError::IdTaken`] if a run of another env created a log with
    /// this id first: ask [`next_id`](Self::next_id) again, plan again (the
    /// plan holds `{{release}}`) and begin again. Also: `id` is not newer
    /// than the env's newest; the plan is of another pipeline or env; a
    /// write failed.
    pub fn begin(&mut self, id: ReleaseId, plan: &Plan, meta: ReleaseMeta) -> Result<Journal<'_>, StateError> {
        let release = self.start(id, plan, meta)?;
        Journal::open(self, self.dir.log_path(id), release)
    }

    /// [`begin`](Self::begin) with the next id, planned by `plan_for` (the
    /// plan holds `{{release}}`): on [`StateError::IdTaken`], takes the next
    /// id, plans again and begins again. Returns the journal and the plan.
    ///
    /// # Errors
    ///
    /// `plan_for` failed, or see [`begin`](Self::begin).
    pub fn begin_with<E: From<StateError>>(
        &mut self,
        meta: &ReleaseMeta,
        mut plan_for: impl FnMut(ReleaseId) -> Result<Plan, E>,
    ) -> Result<(Journal<'_>, Plan), E> {
        loop {
            let id = self.next_id();
            let plan = plan_for(id)?;
            match self.start(id, &plan, meta.clone()) {
                Ok(release) => return Ok((Journal::open(self, self.dir.log_path(id), release)?, plan)),
                Err(StateError::IdTaken { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Writes what starts a release (see [`begin`](Self::begin)).
    fn start(&mut self, id: ReleaseId, plan: &Plan, meta: ReleaseMeta) -> Result<Release, StateError> {
        let path = self.dir.log_path(id);
        if plan.pipeline != self.dir.name() || plan.env != self.env {
            let error = std::io::Error::other(format!(
                "the plan is of pipeline `{}` env `{}`, the store of `{}` `{}`",
                plan.pipeline,
                plan.env,
                self.dir.name(),
                self.env
            ));
            return Err(StateError::io("create", path)(error));
        }
        if self.newest.is_some_and(|newest| newest >= id) {
            let error = std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "release id is not newer than the newest",
            );
            return Err(StateError::io("create", path)(error));
        }
        let previous = if is_deployment(&plan.workflow) {
            self.current.as_ref().map(|s| s.id)
        } else {
            None
        };
        let (release, head) = planned_release(id, plan, previous, meta, &self.clock);
        self.append_index(&IndexLine::Reserved { id })?;
        self.newest = Some(id);
        create_atomic(&path, format!("{}{}", head_line(), line(&head)).as_bytes()).map_err(|error| match error {
            StateError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                StateError::IdTaken { id }
            }
            other => other,
        })?;
        self.index_started(&release)?;
        Ok(release)
    }

    fn append_index(&mut self, entry: &IndexLine) -> Result<(), StateError> {
        append(&self.index, &self.index_path, line(entry).as_bytes())
    }

    fn index_started(&mut self, release: &Release) -> Result<(), StateError> {
        self.append_index(&IndexLine::started(&release.header))?;
        if release.is_deployment() {
            let mut summary = ReleaseSummary::from(release);
            summary.finished_at = None;
            self.current = Some(summary);
        }
        Ok(())
    }

    /// Records in the index that `release` finished, with the env's live
    /// state after it for a deploy or rollback.
    pub(crate) fn finished(&mut self, release: &Release) -> Result<(), StateError> {
        let Some(at) = release.finished_at else {
            return Ok(());
        };
        let status = release.status();
        let live = release.is_deployment().then(|| advance(&self.live, release));
        self.append_index(&IndexLine::Finished {
            id: release.id,
            at,
            status,
            live: live.as_ref().map(store_live),
        })?;
        if let Some(live) = live {
            self.live = live;
            let mut summary = ReleaseSummary::from(release);
            summary.live = Some(self.live.clone());
            self.current = Some(summary);
        }
        Ok(())
    }

    /// Closes a release, the one way every release ends (a run that
    /// finishes, one interrupted, one recovered): applies `events` (those
    /// that end it; none when every instance is done), marks it finished
    /// now, has `write` append their lines and the finish line to its log
    /// (and make them durable), then records the end in the index.
    ///
    /// # Errors
    ///
    /// An event is illegal, an instance is still pending or running, or a
    /// write failed.
    pub(crate) fn close_release(
        &mut self,
        release: &mut Release,
        events: &[Event],
        write: impl FnOnce(&str) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let at = self.clock.now();
        release.apply(events, at)?;
        release.finish(at)?;
        let mut text = String::new();
        format::event_lines(events, at, &mut text);
        text.push_str(&line(&LogLine::Finished { at }));
        write(&text)?;
        self.finished(release)
    }

    /// Finishes the env's release whose run died: the one the index shows
    /// unfinished, or one whose log exists but whose `Started` line was
    /// never written (the run died between the two).
    fn recover(&mut self, tail: &Tail, reap: &Reap<'_>) -> Result<Vec<Recovered>, StateError> {
        let mut unfinished = tail.unfinished;
        for &id in &tail.reserved {
            let path = self.dir.log_path(id);
            if !path.exists() {
                continue;
            }
            let log = read_log(&path)?;
            if log.release.env == self.env && log.release.pipeline == self.dir.name() {
                self.index_started(&log.release)?;
                unfinished = Some(id);
            }
        }
        let Some(id) = unfinished else {
            return Ok(Vec::new());
        };
        let path = self.dir.log_path(id);
        let log = read_log(&path)?;
        if let Some(complete) = log.torn {
            cut_torn_tail(&path, complete)?;
        }
        let mut release = log.release;
        if release.is_finished() {
            // Only the index's finish line was lost.
            self.finished(&release)?;
            return Ok(Vec::new());
        }
        let lost = boot::may_have_lost_writes(log.boot.as_deref(), boot::current().as_deref());
        // Processes do not outlive the machine: in another boot (or an
        // unknown one) nothing recorded can still run.
        let stopped = if lost {
            Vec::new()
        } else {
            stop_orphans(&release, &self.env, reap)?
        };
        let (events, mut report) = interrupt_events(&release, lost);
        report.stopped = stopped;
        self.close_release(&mut release, &events, |text| {
            append(&open_append(&path)?, &path, text.as_bytes())
        })?;
        Ok(vec![report])
    }
}

/// Release `id` about to run `plan` (every instance pending, with its
/// command and `finally` flag), and its log's header line: what both
/// backends record first.
pub(crate) fn planned_release(
    id: ReleaseId,
    plan: &Plan,
    previous: Option<ReleaseId>,
    meta: ReleaseMeta,
    clock: &Clock,
) -> (Release, LogLine) {
    // The undo commands are recorded only for a run that undoes a failure
    // (recovery reads them).
    let undo: Vec<Option<String>> = if meta.undo_on_failure && plan.instances.iter().any(|p| p.undo.is_some()) {
        plan.instances.iter().map(|p| p.undo.clone()).collect()
    } else {
        Vec::new()
    };
    let header = header(id, plan, previous, meta, clock);
    let mut release = Release::new(header, plan.instances.iter().map(|p| p.id.to_string()));
    let commands: Vec<Option<String>> = plan.instances.iter().map(|p| p.command.clone()).collect();
    release.set_commands(commands.clone());
    let finally: Vec<usize> = (0..plan.instances.len())
        .filter(|&i| plan.instances[i].is_finally())
        .collect();
    release.set_finally(&finally);
    release.set_undo(undo.clone());
    let instances = release.instances().iter().map(|i| i.id().to_owned()).collect();
    let head = LogLine::release(&release.header, instances, commands, finally, undo, boot::current());
    (release, head)
}

/// Stops the process groups `release`'s dead run left running (see
/// `orphans`).
pub(crate) fn stop_orphans(release: &Release, env: &str, reap: &Reap<'_>) -> Result<Vec<orphans::Stopped>, StateError> {
    let orphans: Vec<Orphan> = release
        .instances()
        .iter()
        .filter_map(|instance| {
            instance.running_process().map(|process| Orphan {
                instance: instance.id().to_owned(),
                process,
            })
        })
        .collect();
    let live = orphans::still_running(orphans);
    if !live.is_empty() {
        let groups: Vec<String> = live
            .iter()
            .map(|(orphan, _)| format!("{} (process group {})", orphan.instance, orphan.process.group))
            .collect();
        (reap.notice)(&format!(
            "stopping {}, left running by release {} whose run died: `SIGTERM`, then `SIGKILL` after {}",
            groups.join(", "),
            release.id,
            seconds(reap.grace)
        ));
    }
    orphans::stop(live, reap.grace).map_err(|running| StateError::StillRunning {
        id: release.id,
        env: env.to_owned(),
        running,
    })
}

/// How [`Store::open_with`] stops the commands a dead run left running.
pub struct Reap<'a> {
    /// How long they get between `SIGTERM` and `SIGKILL`.
    pub grace: Duration,
    /// Told what is about to be stopped (the CLI prints it as a note).
    pub notice: &'a dyn Fn(&str),
}

impl std::fmt::Debug for Reap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reap")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// `10s`, `1.5s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// Removes the script files in `dir` (a missing directory has none).
pub(crate) fn remove_scripts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // One that cannot be removed stays for the next time.
        let _ = std::fs::remove_file(entry.path());
    }
}

/// The header of release `id` running `plan`.
fn header(id: ReleaseId, plan: &Plan, previous: Option<ReleaseId>, meta: ReleaseMeta, clock: &Clock) -> ReleaseHeader {
    let ReleaseMeta {
        rollback_of,
        commit,
        services,
        versions,
        mut set_keys,
        digest,
        user,
        undo_on_failure: _,
        resumes,
        set_digests,
    } = meta;
    set_keys.sort();
    set_keys.dedup();
    ReleaseHeader {
        id,
        pipeline: plan.pipeline.clone(),
        workflow: plan.workflow.clone(),
        env: plan.env.clone(),
        version: plan.version.clone(),
        previous,
        rollback_of,
        started_at: clock.now(),
        commit,
        services,
        versions,
        set_keys,
        digest,
        user,
        resumes,
        set_digests,
    }
}
