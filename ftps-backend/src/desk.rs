//! [`DataDesk`]: a session's bookkeeping of its data connections, the same for every
//! runtime: which file each transfer opened, which channel reaches each data task or
//! thread, and what to tell it for each of the core's data actions.

use crate::server::DataOrder;
use crate::storage::{Opened, OpenedFile, Storage};
use ftps_proto::server::DataId;
use ftps_proto::tls::DataTls;
use std::collections::HashMap;

/// Something that delivers orders to one data task or thread (a channel's sender).
pub trait OrderSender<S: Storage> {
    /// Delivers `order`; false if the receiver is gone.
    fn deliver(&self, order: DataOrder<S>) -> bool;
}

/// A session's files and data-connection channels.
pub struct DataDesk<S: Storage, T> {
    files: HashMap<DataId, OpenedFile<S>>,
    tasks: HashMap<DataId, T>,
}

impl<S: Storage, T> Default for DataDesk<S, T> {
    fn default() -> Self {
        DataDesk {
            files: HashMap::new(),
            tasks: HashMap::new(),
        }
    }
}

/// Why an order could not be delivered: report `DataFailed` to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskGone;

impl<S: Storage, T: OrderSender<S>> DataDesk<S, T> {
    /// Keeps the file a storage request opened for transfer `id`.
    pub fn file_opened(&mut self, id: DataId, file: OpenedFile<S>) {
        self.files.insert(id, file);
    }

    /// Records the channel to the task or thread of connection `id`.
    pub fn attach(&mut self, id: DataId, task: T) {
        self.tasks.insert(id, task);
    }

    /// What an `OpenData` action starts the connection with: its TLS configurations
    /// (under PROT P) and, for an upload, its file, so the upload starts reading the
    /// moment the connection is up.
    pub fn open(
        &mut self,
        id: DataId,
        tls: Option<DataTls>,
        upload: bool,
        ascii: bool,
    ) -> (Option<DataTls>, Option<(S::Upload, bool)>) {
        let early = match (upload, self.files.remove(&id)) {
            (true, Some(Opened::Write(up))) => Some((up, ascii)),
            (_, Some(other)) => {
                self.files.insert(id, other);
                None
            }
            _ => None,
        };
        (tls, early)
    }

    /// Delivers `order` to connection `id`.
    pub fn send(&mut self, id: DataId, order: DataOrder<S>) -> Result<(), TaskGone> {
        match self.tasks.get(&id) {
            Some(task) if task.deliver(order) => Ok(()),
            _ => Err(TaskGone),
        }
    }

    /// A `Transfer` action: the payload, or the file opened for it.
    pub fn transfer(
        &mut self,
        id: DataId,
        payload: Option<Vec<u8>>,
        ascii: bool,
    ) -> Result<(), TaskGone> {
        let file = self.files.remove(&id);
        self.send(
            id,
            DataOrder::Transfer {
                payload,
                file,
                ascii,
            },
        )
    }

    /// A `FinishTransfer` action: the verdict, after which the connection is forgotten.
    pub fn finish(&mut self, id: DataId, commit: bool) -> Result<(), TaskGone> {
        let sent = self.send(id, DataOrder::Finish { commit });
        self.tasks.remove(&id);
        sent
    }

    /// An `AbortData` action: forgets the connection (dropping its channel stops the task)
    /// and gives back the file opened for it, if any (dropping an upload discards it).
    pub fn abort(&mut self, id: DataId) -> Option<OpenedFile<S>> {
        self.tasks.remove(&id);
        self.files.remove(&id)
    }

    /// Forgets every connection (the session is closing).
    pub fn clear(&mut self) {
        self.tasks.clear();
        self.files.clear();
    }
}
