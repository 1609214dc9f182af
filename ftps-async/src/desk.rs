//! [`DataDesk`]: a session's bookkeeping of its data connections: which file each
//! transfer opened, which channel reaches each data task, and what to tell it for each of
//! the core's data actions.

use crate::order::{Job, Order, Work};
use crate::release::ReleaseEmpty;
use ftps_backend::{OpenedFile, Storage};
use ftps_proto::boundary::DataId;
use ftps_proto::server::StorageRequest;
use ftps_proto::tls::DataTls;
use std::collections::{HashMap, HashSet};

/// The channel to one data task.
pub(crate) type Orders<S> = async_channel::Sender<Order<S>>;

/// A session's files and data-task channels.
pub(crate) struct DataDesk<S: Storage> {
    files: HashMap<DataId, OpenedFile<S>>,
    tasks: HashMap<DataId, Orders<S>>,
    /// The connections opened for uploads (which end with `FinishUpload`).
    uploads: HashSet<DataId>,
}

impl<S: Storage> Default for DataDesk<S> {
    fn default() -> Self {
        DataDesk {
            files: HashMap::new(),
            tasks: HashMap::new(),
            uploads: HashSet::new(),
        }
    }
}

/// Why an order could not be delivered: report `DataFailed` to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskGone;

/// The data connection an open request of the core names, if any (the file it opens is
/// kept for that connection).
pub(crate) fn opened_for(request: &StorageRequest) -> Option<DataId> {
    use StorageRequest as R;
    match request {
        R::OpenRead { id, .. } | R::OpenWrite { id, .. } | R::OpenListing { id, .. } => Some(*id),
        _ => None,
    }
}

impl<S: Storage> DataDesk<S> {
    /// Keeps the file a storage request opened for transfer `id`.
    pub(crate) fn file_opened(&mut self, id: DataId, file: OpenedFile<S>) {
        self.files.insert(id, file);
    }

    /// Records the channel to the task of connection `id`.
    pub(crate) fn attach(&mut self, id: DataId, task: Orders<S>) {
        self.tasks.insert(id, task);
    }

    /// An `OpenData` action: the job of connection `id`, with the file opened for it.
    pub(crate) fn job(&mut self, id: DataId, tls: Option<DataTls>, ascii: bool) -> Job<S> {
        let work = Work::of(self.files.remove(&id));
        if work.is_upload() {
            self.uploads.insert(id);
        }
        Job { tls, work, ascii }
    }

    /// Delivers `order` to connection `id`.
    pub(crate) fn send(&mut self, id: DataId, order: Order<S>) -> Result<(), TaskGone> {
        match self.tasks.get(&id) {
            Some(task) if task.try_send(order).is_ok() => Ok(()),
            _ => Err(TaskGone),
        }
    }

    /// A `FinishUpload` action: the verdict, after which the connection is forgotten.
    pub(crate) fn finish(&mut self, id: DataId, commit: bool) -> Result<(), TaskGone> {
        let sent = self.send(id, Order::FinishUpload { commit });
        self.forget(id);
        sent
    }

    /// Connection `id` reported `DataEnded`: whether its task is over (a download's is;
    /// an upload's waits for `FinishUpload`). A finished download is forgotten.
    pub(crate) fn ended(&mut self, id: DataId) -> bool {
        if self.uploads.contains(&id) {
            return false;
        }
        self.forget(id);
        true
    }

    /// An `AbortData` action: forgets the connection (dropping its channel stops the task)
    /// and gives back the file opened for it, if any (dropping an upload discards it).
    pub(crate) fn abort(&mut self, id: DataId) -> Option<OpenedFile<S>> {
        self.forget(id);
        self.files.remove(&id)
    }

    fn forget(&mut self, id: DataId) {
        self.tasks.remove(&id);
        self.uploads.remove(&id);
    }

    /// Gives back the allocations of its empty tables (see [`ReleaseEmpty`]).
    pub(crate) fn release_if_empty(&mut self) {
        self.files.release_if_empty();
        self.tasks.release_if_empty();
        self.uploads.release_if_empty();
    }

    /// Forgets every connection (the session is closing).
    pub(crate) fn clear(&mut self) {
        self.tasks.clear();
        self.files.clear();
        self.uploads.clear();
    }
}
