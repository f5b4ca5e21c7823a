//! Where log lines go: a writer thread of their own, not the thread that logs.
//!
//! A line is formatted where it is logged and handed over through a bounded queue. One thread writes
//! what has queued up, in as few `write`s as its buffer allows, at most every few milliseconds under
//! load (see [`write_queued`]). The activator's event loop thus never waits on standard output. A
//! container's standard output is a pipe to the runtime's shim: a write costs a system call and wakes
//! the shim, and during a burst the event loop paid both for every access-log line. A reader that
//! stopped reading would have blocked the event loop at once; here lines queue up first.
//!
//! Nothing is dropped: when [`QUEUED_LINES`] lines wait, logging waits too, as a direct write to a
//! full pipe would. The [`LogGuard`], dropped at the end of `main`, writes out what is still queued.
//!
//! Built on `std::sync::mpsc`, not on a logging crate: a new dependency of `zeroscale-common` would
//! rename every function of the activator's build, which its recorded profile and link order find by
//! name (docs/images.md, "The link order").

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for the writer thread before logging waits for it: a few hundred KiB of lines
/// of the access log's length, which only a reader that stopped fills.
pub const QUEUED_LINES: usize = 1_024;

/// Bytes the writer thread gathers before a `write`; it also writes whenever the queue runs empty.
const WRITE_BUFFER: usize = 16 * 1024;

/// How long the writer thread lets lines gather after writing a batch, before it looks for more.
/// Lines reach the log at most this much later than they would have directly.
const GATHER: Duration = Duration::from_millis(5);

/// How long dropping the [`LogGuard`] waits for the queued lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What the writer thread is handed.
enum Message {
    /// One formatted line (or several, as the formatter wrote them in one call).
    Line(Vec<u8>),
    /// Write out everything queued before this, then say so.
    Flush(SyncSender<()>),
}

/// The formatter's writer: each write queues its bytes for the writer thread.
#[derive(Clone, Debug)]
pub struct QueuedWriter {
    queue: SyncSender<Message>,
}

impl QueuedWriter {
    /// Queues one whole line (or several) for the writer thread, without copying it.
    pub fn send_line(&self, line: Vec<u8>) {
        if let Err(std::sync::mpsc::SendError(Message::Line(line))) = self.queue.send(Message::Line(line)) {
            // As `write` does when the writer thread is gone.
            io::stdout().write_all(&line).ok();
        }
    }
}

impl Write for QueuedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.queue.send(Message::Line(buf.to_vec())) {
            Ok(()) => Ok(buf.len()),
            // The writer thread is gone (it never exits while a writer remains, but if it did):
            // standard output directly rather than losing the line.
            Err(_) => io::stdout().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueuedWriter {
    type Writer = QueuedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes out the lines still queued when dropped. Hold it until `main` returns.
#[must_use = "dropping the guard writes out the log lines queued so far; hold it until main returns"]
#[derive(Debug)]
pub struct LogGuard {
    queue: SyncSender<Message>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done, written) = sync_channel(1);
        // Neither step may keep the process from exiting: a full queue means the destination stopped
        // reading, and then the lines would not be written in time anyway.
        if self.queue.try_send(Message::Flush(done)).is_ok() {
            written.recv_timeout(FLUSH_WAIT).ok();
        }
    }
}

/// A writer for the log formatter that queues each line for a thread writing to `out`, and the guard
/// that writes out the queue at exit. Without a thread (the process's limit reached) the lines go to
/// standard output as they are logged ([`QueuedWriter`]'s fallback).
pub fn queued<W: Write + Send + 'static>(out: W) -> (QueuedWriter, LogGuard) {
    let (queue, lines) = sync_channel(QUEUED_LINES);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_queued(&lines, &mut out));
    if let Err(e) = spawned {
        eprintln!("cannot start the log writer thread ({e}); logging to standard output directly");
    }
    (QueuedWriter { queue: queue.clone() }, LogGuard { queue })
}

/// The writer thread. Idle, it waits for a line. Then it writes everything queued through the buffer,
/// flushes, and lets the next lines gather for [`GATHER`] before it looks again, until a look finds
/// nothing. Under load that is one wake-up and one `write` per interval: a thread woken for every line
/// would cost the logging thread a wake-up call and the node a context switch per line, more than the
/// direct write it replaces. (A thread of its own, so its sleep holds up no task.) Write errors are
/// ignored, as the formatter ignores them.
fn write_queued(lines: &Receiver<Message>, out: &mut impl Write) {
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(bytes) => {
                    out.write_all(&bytes).ok();
                }
                Message::Flush(done) => {
                    out.flush().ok();
                    done.send(()).ok();
                }
            }
            next = lines.try_recv().ok();
            if next.is_none() {
                out.flush().ok();
                std::thread::sleep(GATHER);
                next = lines.try_recv().ok();
            }
        }
    }
}

/// Standard output as the writer thread's destination: its own handle on file descriptor 1, so a
/// batch of lines goes out in one `write` (`std::io::Stdout` writes at every line end).
pub fn stdout() -> Box<dyn Write + Send> {
    match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(File::from(fd)),
        // Without a second descriptor (the process's limit reached), through the standard handle.
        Err(_) => Box::new(io::stdout()),
    }
}

#[cfg(test)]
#[path = "log_writer_tests.rs"]
mod tests;
