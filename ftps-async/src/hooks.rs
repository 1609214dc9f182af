//! The server's side of [`Hooks`]: sessions queue what happened, and one task of the
//! server's delivers it, in order, each call on the runtime's blocking pool — so a slow
//! hook delays the hooks after it and never a session. The queue holds
//! [`HOOK_QUEUE`] events; past it, new events are dropped with a warning.

use crate::runtime::Runtime;
use ftps_backend::{Actor, HOOK_QUEUE, Hooks, Transferred};
use ftps_proto::server::StorageRequest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What happened, for one of the [`Hooks`] methods.
#[derive(Debug)]
pub(crate) enum HookEvent {
    Login,
    UploadFinished(Transferred),
    DownloadFinished(Transferred),
    Deleted(String),
    Renamed { from: String, to: String },
    DirMade(String),
    DirRemoved(String),
}

impl HookEvent {
    /// What a storage request does that hooks are told of once it succeeded, if anything.
    pub(crate) fn of_request(request: &StorageRequest) -> Option<HookEvent> {
        let path = |p: &ftps_proto::VirtualPath| p.as_str().to_owned();
        Some(match request {
            StorageRequest::RemoveFile(p) => HookEvent::Deleted(path(p)),
            StorageRequest::Rename { from, to } => HookEvent::Renamed {
                from: path(from),
                to: path(to),
            },
            StorageRequest::MakeDir(p) => HookEvent::DirMade(path(p)),
            StorageRequest::RemoveDir(p) => HookEvent::DirRemoved(path(p)),
            _ => return None,
        })
    }

    fn deliver(&self, hooks: &dyn Hooks, actor: &Actor) {
        match self {
            HookEvent::Login => hooks.login(actor),
            HookEvent::UploadFinished(t) => hooks.upload_finished(actor, t),
            HookEvent::DownloadFinished(t) => hooks.download_finished(actor, t),
            HookEvent::Deleted(p) => hooks.deleted(actor, p),
            HookEvent::Renamed { from, to } => hooks.renamed(actor, from, to),
            HookEvent::DirMade(p) => hooks.dir_made(actor, p),
            HookEvent::DirRemoved(p) => hooks.dir_removed(actor, p),
        }
    }
}

type Queued = (Actor, HookEvent);

/// The delivering task's end of the queue, and the hooks it calls.
type Delivery = (async_channel::Receiver<Queued>, Arc<dyn Hooks>);

/// The queue of events for an application's [`Hooks`], and the task that delivers them.
pub(crate) struct HookQueue {
    tx: async_channel::Sender<Queued>,
    /// What the delivering task needs, until the first `serve` starts it (a task can only
    /// be spawned from within the runtime, and the builder may run outside it).
    waiting: Mutex<Option<Delivery>>,
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
}

impl HookQueue {
    /// A queue for `hooks`; nothing is delivered until [`start`](Self::start).
    pub(crate) fn new(hooks: Arc<dyn Hooks>) -> Self {
        let (tx, rx) = async_channel::bounded(HOOK_QUEUE);
        HookQueue {
            tx,
            waiting: Mutex::new(Some((rx, hooks))),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the delivering task, once; it ends when the server and its sessions are gone.
    pub(crate) fn start<R: Runtime>(&self) {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((rx, hooks)) = waiting {
            R::spawn_detached(deliver::<R>(rx, hooks));
        }
    }

    /// Queues `event`, done by `actor`; never waits.
    pub(crate) fn push(&self, actor: Actor, event: HookEvent) {
        if self.tx.try_send((actor, event)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // 1, 2, 4, 8, ...: the log says it without a line per event.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "hooks fell behind: events dropped");
            }
        }
    }
}

/// Delivers the queued events in order, each on the blocking pool; a hook that panics is
/// logged and the next event delivered.
async fn deliver<R: Runtime>(rx: async_channel::Receiver<Queued>, hooks: Arc<dyn Hooks>) {
    while let Ok((actor, event)) = rx.recv().await {
        let hooks = hooks.clone();
        let delivered = R::unblock(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                event.deliver(&*hooks, &actor);
            }))
            .is_ok()
        })
        .await;
        if !delivered {
            tracing::warn!("a hook panicked");
        }
    }
}
