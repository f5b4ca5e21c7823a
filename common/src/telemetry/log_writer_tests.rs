use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::*;

/// A destination whose first write waits until the test opens its gate, as a pipe whose reader is
/// late; it keeps what it was given and counts the writes.
struct Gated {
    gate: Option<Receiver<()>>,
    written: Arc<Mutex<Vec<u8>>>,
    writes: Arc<AtomicUsize>,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            gate.recv().ok();
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.written
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The test's side of a [`Gated`] destination: the gate to open, and what the destination was given.
struct Test {
    open: Sender<()>,
    written: Arc<Mutex<Vec<u8>>>,
    writes: Arc<AtomicUsize>,
}

impl Test {
    fn written(&self) -> Vec<u8> {
        self.written.lock().expect("lock").clone()
    }
}

/// A queued writer to a [`Gated`] destination whose gate is still shut.
fn gated() -> (Test, QueuedWriter, LogGuard) {
    let (open, gate) = channel();
    let written = Arc::new(Mutex::new(Vec::new()));
    let writes = Arc::new(AtomicUsize::new(0));
    let (writer, guard) = queued(Gated {
        gate: Some(gate),
        written: written.clone(),
        writes: writes.clone(),
    });
    let test = Test {
        open,
        written,
        writes,
    };
    (test, writer, guard)
}

#[test]
fn lines_queue_while_the_destination_waits_and_all_come_out_in_order_in_fewer_writes() {
    let (test, mut writer, guard) = gated();
    let lines: Vec<String> = (0..500).map(|i| format!("{{\"line\":{i}}}\n")).collect();
    for line in &lines {
        // Each call returns with the destination still shut: the line waits in the queue.
        writer.write_all(line.as_bytes()).expect("queued");
    }
    assert_eq!(
        test.writes.load(Ordering::SeqCst),
        0,
        "nothing reached the destination yet"
    );
    test.open.send(()).expect("the writer thread waits at the gate");
    drop(guard);
    let out = String::from_utf8(test.written()).expect("utf-8");
    assert_eq!(out, lines.concat(), "every line, whole and in order");
    let writes = test.writes.load(Ordering::SeqCst);
    assert!(
        writes < lines.len() / 10,
        "the queued lines went out in batches, not one write each: {writes} writes"
    );
}

#[test]
fn dropping_the_guard_writes_out_what_is_still_queued() {
    let (test, mut writer, guard) = gated();
    writer.write_all(b"last words\n").expect("queued");
    test.open.send(()).expect("the writer thread waits at the gate");
    drop(guard);
    assert_eq!(test.written(), b"last words\n");
}

#[test]
fn a_destination_that_stopped_reading_does_not_keep_the_guard_from_returning() {
    // The gate stays shut until the end of the test: the writer thread stays stuck in its first write.
    let (test, mut writer, guard) = gated();
    writer.write_all(b"stuck\n").expect("queued");
    writer.write_all(b"behind it\n").expect("queued");
    drop(guard);
    assert!(test.written().is_empty(), "the destination took nothing");
    test.open.send(()).ok();
}
