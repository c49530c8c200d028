//! The SQLite write path: one connection (`rusqlite`) owned by one thread per database file,
//! which runs whole store steps sent to it as messages, and commits concurrent writes
//! together (group commit).
//!
//! Why: sqlx's SQLite driver runs each connection on a thread of its own and makes every
//! statement a message to it and back, so a refresh of a few statements cost ~50 context
//! switches; its pooled connections contended for SQLite's one write lock, whose busy handler
//! sleeps up to 100 ms; and every rotation paid an fsync of its own. Here a step is one
//! message (one hop to this thread and one back), its statements are prepared once and
//! cached, and writes that arrive while a commit is under way wait for the next one, which
//! takes all of them in one transaction and one fsync. Reads by key do not queue behind
//! writes: [`Readers`] runs them on read-only connections on the calling thread.
//!
//! Semantics are those of one transaction per write: each write runs in a savepoint of the
//! batch's transaction, so a write that fails (or decides to change nothing) is rolled back
//! alone and answered as it would have been alone; the others commit. No write is answered
//! before its batch is durable (`synchronous=FULL`, as the rest of the store), and if the
//! commit fails, every write of the batch is answered with that error and none of them
//! happened.
//!
//! A step keeps running when its caller goes away (a client disconnecting mid-request): it
//! is a message already sent, and its answer is dropped. Nothing is left half-done.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use ostiary_core::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

/// At most this many writes share a transaction (bounds the latency one batch adds).
const MAX_BATCH: usize = 256;

/// A write sent to the thread: run once inside its savepoint, then answered once the batch's
/// fate is known.
trait WriteStep: Send {
    /// Runs the step; `true` if its changes are to be kept.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller: the step's outcome if the batch committed, the batch's error if
    /// not (then nothing of it happened).
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Step<T, F> {
    write: Option<F>,
    keep: fn(&T) -> bool,
    outcome: Option<Result<T, StoreError>>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteStep for Step<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        // A step that panics is answered as failed and rolled back; the thread goes on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(connection)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a store step panicked".into())));
        let kept = outcome.as_ref().is_ok_and(self.keep);
        self.outcome = Some(outcome);
        kept
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (committed, self.outcome) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        // The caller may have gone away; the step is done either way.
        let _ = self.answer.send(answer);
    }
}

/// The handle to a database's writer thread. Cloning shares the thread; it ends when the
/// last handle is dropped, after finishing what was sent.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn WriteStep>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Opens the database file (which must exist with Ostiary's schema: sqlx migrated it)
    /// and starts its thread.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let connection = connect(path).map_err(|e| e.to_string())?;
        let (jobs, incoming) = mpsc::channel();
        std::thread::Builder::new()
            .name("ostiary-sqlite-writer".into())
            .spawn(move || run(connection, incoming))
            .map_err(|e| e.to_string())?;
        Ok(Self { jobs })
    }

    /// Runs `write` in the next batch, in a savepoint of its own: its changes are kept if it
    /// returns `Ok` and `keep` of that value is true, and rolled back alone otherwise. The
    /// answer comes once the batch committed (or failed: then nothing of it happened).
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        keep: fn(&T) -> bool,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.send(Box::new(Step {
            write: Some(write),
            keep,
            outcome: None,
            answer,
        }))?;
        answered.await.map_err(|_| gone())?
    }

    fn send(&self, job: Box<dyn WriteStep>) -> Result<(), StoreError> {
        self.jobs.send(job).map_err(|_| gone())
    }
}

/// Read-only connections to the same file, for point lookups run on the calling thread: a
/// lookup of a few pages costs less than the two thread switches of a message to the writer
/// (WAL readers never wait for the writer). At most [`MAX_IDLE_READERS`] are kept.
pub(crate) struct Readers {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
}

/// How many idle read connections are kept for reuse.
const MAX_IDLE_READERS: usize = 8;

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readers")
    }
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: std::sync::Mutex::default(),
        }
    }

    /// Runs `read` on a read-only connection, here and now. Only for reads of a few rows by
    /// key: it blocks the calling thread while it runs.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match taken {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(unavailable)?;
                connection
                    .busy_handler(Some(wait_for_lock))
                    .map_err(unavailable)?;
                connection
            }
        };
        let outcome = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(connection);
        }
        outcome
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".into())
}

/// A driver error as [`StoreError::Unavailable`] (the message is the database's own).
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    tracing::debug!(error = ?e, "database error");
    match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => StoreError::Unavailable(message),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // WAL is a property of the file (sqlx set it); these are per connection.
    // Savepoints' statement journals stay in memory (a temporary file each otherwise), and
    // the pages the refresh grant touches stay cached (64 MiB).
    connection.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -65536;",
    )?;
    connection.busy_handler(Some(wait_for_lock))?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// While another connection (sqlx's pool, the CLI) holds the write lock: wait in short
/// steps, not SQLite's default ones of up to 100 ms, for about 5 s in all.
fn wait_for_lock(attempt: i32) -> bool {
    let step = if attempt < 100 {
        Duration::from_micros(50)
    } else {
        Duration::from_millis(1)
    };
    if attempt > 5_100 {
        return false;
    }
    std::thread::sleep(step);
    true
}

fn run(connection: Connection, incoming: mpsc::Receiver<Box<dyn WriteStep>>) {
    // Whatever queued while the last batch committed is the next batch.
    while let Ok(first) = incoming.recv() {
        let mut writes = vec![first];
        while writes.len() < MAX_BATCH {
            match incoming.try_recv() {
                Ok(write) => writes.push(write),
                Err(_) => break,
            }
        }
        commit(&connection, writes);
    }
}

/// Runs `writes` in one transaction, each in a savepoint, and answers each after the commit.
fn commit(connection: &Connection, mut writes: Vec<Box<dyn WriteStep>>) {
    // One write alone needs no savepoint: rolling back the transaction undoes it.
    let alone = writes.len() == 1;
    let run = |statement: &str| connection.prepare_cached(statement)?.execute([]).map(drop);
    let batch = (|| {
        run("BEGIN IMMEDIATE")?;
        for write in &mut writes {
            if alone {
                if !write.run(connection) {
                    return run("ROLLBACK");
                }
                continue;
            }
            run("SAVEPOINT step")?;
            if write.run(connection) {
                run("RELEASE step")?;
            } else {
                run("ROLLBACK TO step")?;
                run("RELEASE step")?;
            }
        }
        run("COMMIT")
    })();
    let committed = batch.map_err(|e| {
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        let message = match unavailable(e) {
            StoreError::Unavailable(message) => message,
            other => other.to_string(),
        };
        tracing::error!(error = %message, writes = writes.len(), "a batch of writes failed; none of it happened");
        message
    });
    for write in writes {
        write.answer(committed.clone().map_err(StoreError::Unavailable));
    }
}
