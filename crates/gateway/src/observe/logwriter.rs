//! The log writer: lines gathered in memory and written to stdout by a
//! thread of their own, in one `write` every [`GATHER`] at most, so a
//! request's log line costs its formatting and a copy, not a system call
//! (nor, on a pipe, waking the reader) per request.
//!
//! Nothing is dropped: a writer that finds the buffer at [`CAP`] (stdout
//! slower than the logs) writes it out itself. Lines at WARN and above are
//! written at once, with whatever was gathered before them. The flusher
//! sleeps while nothing is gathered (an idle gateway does not wake it) and
//! is woken once a gathering, by the first line. [`LogGuard`] writes what is
//! left when the process ends.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long lines are gathered before they are written.
pub const GATHER: Duration = Duration::from_millis(50);

/// The most gathered before a writer writes them itself.
const CAP: usize = 1 << 20;

struct Shared {
    buf: Mutex<Gathered>,
    wake: Condvar,
    /// Where lines go (stdout); one writer at a time, so lines never
    /// interleave.
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Gathered {
    lines: Vec<u8>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes `bytes` out (errors ignored: nowhere to report them).
    fn emit(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut out = lock(&self.out);
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// Takes what is gathered and writes it; the buffer's allocation is
    /// handed back for the next gathering.
    fn drain(&self, spare: &mut Vec<u8>) {
        spare.clear();
        std::mem::swap(&mut lock(&self.buf).lines, spare);
        self.emit(spare);
    }
}

/// The `MakeWriter` of the gateway's log layer.
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes what is left when dropped (the end of `main`).
#[derive(Debug)]
pub struct LogGuard {
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        lock(&self.shared.buf).closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        self.shared.drain(&mut Vec::new());
    }
}

/// The writer to stdout and its guard; starts the flusher thread (falling
/// back to writing each line at once if no thread can be started).
pub fn start() -> (LogWriter, LogGuard) {
    start_with(Box::new(std::io::stdout()), GATHER)
}

/// [`start`] with another output and gathering time (tests).
fn start_with(out: Box<dyn Write + Send>, gather: Duration) -> (LogWriter, LogGuard) {
    let shared = Arc::new(Shared {
        buf: Mutex::default(),
        wake: Condvar::new(),
        out: Mutex::new(out),
    });
    let s = Arc::clone(&shared);
    let flusher = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || flush_loop(&s, gather))
        .ok();
    if flusher.is_none() {
        lock(&shared.buf).closed = true;
    }
    (
        LogWriter {
            shared: Arc::clone(&shared),
        },
        LogGuard { shared, flusher },
    )
}

fn flush_loop(s: &Shared, gather: Duration) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        {
            let mut g = lock(&s.buf);
            while g.lines.is_empty() && !g.closed {
                g = s.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            if g.closed {
                return;
            }
        }
        std::thread::sleep(gather);
        s.drain(&mut spare);
    }
}

/// One event's writer: the formatter writes a whole line in one call.
#[derive(Debug)]
pub struct Line {
    shared: Arc<Shared>,
    urgent: bool,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut g = lock(&self.shared.buf);
        if self.urgent || g.closed || g.lines.len() + bytes.len() > CAP {
            // In order: what was gathered, then this line.
            let mut before = std::mem::take(&mut g.lines);
            before.extend_from_slice(bytes);
            // The output's lock before the buffer's is released: the
            // flusher cannot write a later gathering first.
            let mut out = lock(&self.shared.out);
            drop(g);
            let _ = out.write_all(&before);
            let _ = out.flush();
            return Ok(bytes.len());
        }
        let first = g.lines.is_empty();
        g.lines.extend_from_slice(bytes);
        drop(g);
        if first {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            shared: Arc::clone(&self.shared),
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        Line {
            shared: Arc::clone(&self.shared),
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// A sink the tests can read (`Clone`: every copy writes the same bytes).
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct TestSink(pub(crate) Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl TestSink {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

#[cfg(test)]
impl Write for TestSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn lines_are_gathered_written_in_order_and_none_lost() {
        let sink = TestSink::default();
        // Gathering for 2 s: a busy machine cannot flush before the checks.
        let (w, guard) = start_with(Box::new(sink.clone()), Duration::from_secs(2));
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_target(false)
                .with_ansi(false)
                .with_writer(w),
        );
        let line = |text: &str, n: usize| {
            text.lines()
                .filter(|l| l.contains(&format!("line {n}")))
                .count()
        };
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("line 1");
            tracing::info!("line 2");
            assert!(sink.text().is_empty(), "INFO lines are gathered");
            // A warning is written at once, after what was gathered before it.
            tracing::warn!("line 3");
            let text = sink.text();
            assert!((1..=3).all(|n| line(&text, n) == 1), "{text}");
            assert!(text.find("line 2") < text.find("line 3"), "{text}");
            tracing::info!("line 4");
            // The flusher writes within a gathering.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while line(&sink.text(), 4) == 0 {
                assert!(std::time::Instant::now() < deadline, "never flushed");
                std::thread::sleep(Duration::from_millis(5));
            }
            tracing::info!("line 5");
        });
        drop(guard);
        let text = sink.text();
        assert!(
            (1..=5).all(|n| line(&text, n) == 1),
            "the guard drains: {text}"
        );
    }
}
