//! One session advisory lock per pipeline and env, with its holder's
//! details in `stagecraft_lock_holders`: the lock lives as long as the
//! server session that took it, so a runner that dies, or whose connection
//! is cut, loses it with its session.

use sha2::{Digest, Sha256};

use super::{Database, StateError, failure};
use crate::state::{Holder, Timestamp};

/// What [`Database::try_lock`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locking {
    /// This session holds the env's lock now. `previous` is the holder
    /// recorded before, whose session ended without releasing it (a runner
    /// that died or lost its connection): its release may need recovering.
    Acquired {
        /// The holder whose session ended holding the lock, if any.
        previous: Option<Holder>,
    },
    /// Another session holds the lock; its holder, if it recorded itself
    /// already.
    Held(Option<Holder>),
}

/// The advisory lock key of env `env` of pipeline `pipeline`: the first
/// eight bytes, big-endian, of the SHA-256 of
/// `stagecraft-lock\0<pipeline>\0<env>`, as a signed 64-bit integer. The
/// same names give the same key on every machine and every version.
#[must_use]
pub fn lock_key(pipeline: &str, env: &str) -> i64 {
    let mut hash = Sha256::new();
    hash.update(b"stagecraft-lock\0");
    hash.update(pipeline.as_bytes());
    hash.update(b"\0");
    hash.update(env.as_bytes());
    let digest = hash.finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The live holder of a lock: its row, if its session holds the advisory
/// lock of that key in this database now.
const LIVE_HOLDER: &str = "
SELECT h.pid, h.host, h.workflow, h.started_at
FROM stagecraft_lock_holders h
WHERE h.pipeline = $1 AND h.env = $2 AND EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.pid = h.backend_pid
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = $3
)";

impl Database {
    /// Tries to take the lock of env `env` of pipeline `pipeline` for this
    /// session, without waiting, and records `holder` as its holder. The
    /// schema must be migrated ([`Database::migrate`]). A lock this
    /// connection holds already is `Held` (by itself), as a second lock of
    /// a file is refused.
    pub fn try_lock(&mut self, pipeline: &str, env: &str, holder: &Holder) -> Result<Locking, StateError> {
        let key = lock_key(pipeline, env);
        if self.held.contains(&key) {
            return Ok(Locking::Held(self.holder(pipeline, env)?));
        }
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(self.fail("lock an env in"))?;
        if !row.get::<_, bool>(0) {
            return Ok(Locking::Held(self.holder(pipeline, env)?));
        }
        match self.record_holder(pipeline, env, key, holder) {
            Ok(previous) => {
                self.held.insert(key);
                Ok(Locking::Acquired { previous })
            }
            Err(error) => {
                // Do not keep a lock whose holder is unknown; the session
                // may be gone already, which releases it too.
                let _ = self.client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
                Err(error)
            }
        }
    }

    /// The live holder of the lock of env `env` of pipeline `pipeline`, if
    /// a session holds it and has recorded itself.
    pub fn holder(&mut self, pipeline: &str, env: &str) -> Result<Option<Holder>, StateError> {
        let key = lock_key(pipeline, env);
        let row = self
            .client
            .query_opt(LIVE_HOLDER, &[&pipeline, &env, &key])
            .map_err(self.fail("read the lock holders of"))?;
        Ok(row.map(|row| holder_of(&row, env)))
    }

    /// Releases the lock of env `env` of pipeline `pipeline` taken by this
    /// session, and forgets its holder. Closing the connection releases it
    /// too.
    pub fn unlock(&mut self, pipeline: &str, env: &str) -> Result<(), StateError> {
        let key = lock_key(pipeline, env);
        self.held.remove(&key);
        let target = self.target.clone();
        let mut transaction = self
            .client
            .transaction()
            .map_err(failure(&target, "unlock an env in"))?;
        transaction
            .execute(
                "DELETE FROM stagecraft_lock_holders
                 WHERE pipeline = $1 AND env = $2 AND backend_pid = pg_backend_pid()",
                &[&pipeline, &env],
            )
            .map_err(failure(&target, "unlock an env in"))?;
        transaction.commit().map_err(failure(&target, "unlock an env in"))?;
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .map_err(failure(&target, "unlock an env in"))?;
        Ok(())
    }

    /// Ends an earlier session of `holder` itself (the same process, host
    /// and start) that still holds the lock of env `env` of pipeline
    /// `pipeline` because the server has not noticed yet that its
    /// connection was cut: what a run whose recording failed does before
    /// taking the lock again. Waits up to 5 seconds for it to end.
    pub(crate) fn end_own_session(&mut self, pipeline: &str, env: &str, holder: &Holder) -> Result<(), StateError> {
        let pid = i64::from(holder.pid);
        let started_at = i64::try_from(holder.started_at.as_millis()).unwrap_or(i64::MAX);
        self.client
            .execute(
                "SELECT pg_terminate_backend(backend_pid, 5000) FROM stagecraft_lock_holders
                 WHERE pipeline = $1 AND env = $2 AND pid = $3 AND host = $4 AND started_at = $5
                   AND backend_pid <> pg_backend_pid()",
                &[&pipeline, &env, &pid, &holder.host, &started_at],
            )
            .map_err(self.fail("lock an env in"))?;
        Ok(())
    }

    /// Records `holder` for the lock this session just took, returning the
    /// holder recorded before (whose session ended holding it).
    fn record_holder(
        &mut self,
        pipeline: &str,
        env: &str,
        key: i64,
        holder: &Holder,
    ) -> Result<Option<Holder>, StateError> {
        let target = self.target.clone();
        let fail = || failure(&target, "lock an env in");
        let mut transaction = self.client.transaction().map_err(fail())?;
        let previous = transaction
            .query_opt(
                "SELECT pid, host, workflow, started_at FROM stagecraft_lock_holders
                 WHERE pipeline = $1 AND env = $2 FOR UPDATE",
                &[&pipeline, &env],
            )
            .map_err(fail())?
            .map(|row| holder_of(&row, env));
        let pid = i64::from(holder.pid);
        let started_at = i64::try_from(holder.started_at.as_millis()).unwrap_or(i64::MAX);
        transaction
            .execute(
                "INSERT INTO stagecraft_lock_holders
                     (pipeline, env, lock_key, backend_pid, pid, host, workflow, started_at)
                 VALUES ($1, $2, $3, pg_backend_pid(), $4, $5, $6, $7)
                 ON CONFLICT (pipeline, env) DO UPDATE SET
                     lock_key = EXCLUDED.lock_key, backend_pid = EXCLUDED.backend_pid,
                     pid = EXCLUDED.pid, host = EXCLUDED.host,
                     workflow = EXCLUDED.workflow, started_at = EXCLUDED.started_at",
                &[&pipeline, &env, &key, &pid, &holder.host, &holder.workflow, &started_at],
            )
            .map_err(fail())?;
        transaction.commit().map_err(fail())?;
        Ok(previous)
    }
}

/// A holder from a row of `pid, host, workflow, started_at`.
fn holder_of(row: &postgres::Row, env: &str) -> Holder {
    let pid: i64 = row.get(0);
    let started_at: i64 = row.get(3);
    Holder {
        pid: u32::try_from(pid).unwrap_or(0),
        host: row.get(1),
        workflow: row.get(2),
        env: Some(env.to_owned()),
        started_at: Timestamp::from_millis(u64::try_from(started_at).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn the_key_is_fixed_by_both_names() {
        assert_eq!(lock_key("shop", "prod"), lock_key("shop", "prod"));
        assert_ne!(lock_key("shop", "prod"), lock_key("shop", "staging"));
        assert_ne!(lock_key("shop", "prod"), lock_key("shopprod", ""));
        // Pinned: the key must not change between versions, or two
        // stagecraft versions would not exclude each other.
        assert_eq!(lock_key("shop", "prod"), PINNED);
    }

    /// The first eight bytes of SHA-256 of `stagecraft-lock\0shop\0prod`.
    const PINNED: i64 = 3_568_249_161_159_102_399;
}
