//! A thread of its own with a message loop (topmost windows, the consent panel, the demo
//! player's window, hot keys): started and waited for until it is ready, then ended with
//! `WM_QUIT` and joined when dropped. One place for what each of those did alike.

use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

use windows_sys::Win32::UI::WindowsAndMessaging::{PostThreadMessageW, WM_QUIT};

use crate::Win32Error;

/// A running message-loop thread; ended (and waited for) on drop.
#[derive(Debug)]
pub(crate) struct UiThread {
    id: u32,
    thread: Option<JoinHandle<()>>,
}

impl UiThread {
    /// Runs `body` on a new thread named `name` and returns once it says it is ready: the
    /// value it sent, whose thread id `id_of` reads, or the error that stopped it (the
    /// thread then joined). `spawn_call` and `early_call` name the failures to start it and
    /// of a thread that ended without a word.
    pub(crate) fn start<R: Send + 'static>(
        name: &str,
        spawn_call: &'static str,
        early_call: &'static str,
        id_of: impl FnOnce(&R) -> u32,
        body: impl FnOnce(Sender<Result<R, Win32Error>>) + Send + 'static,
    ) -> Result<(UiThread, R), Win32Error> {
        let (ready_tx, ready_rx) = channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(ready_tx))
            .map_err(|_| Win32Error {
                call: spawn_call,
                code: 0,
            })?;
        match ready_rx.recv() {
            Ok(Ok(ready)) => Ok((
                UiThread {
                    id: id_of(&ready),
                    thread: Some(thread),
                },
                ready,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Win32Error {
                    call: early_call,
                    code: 0,
                })
            }
        }
    }

    /// The thread's id, for `PostThreadMessageW`.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

impl Drop for UiThread {
    fn drop(&mut self) {
        // SAFETY: posting to a thread takes no pointer; fails harmlessly if it already ended.
        unsafe { PostThreadMessageW(self.id, WM_QUIT, 0, 0) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
