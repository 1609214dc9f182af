//! The one place that answers the protocol core's storage requests with a [`Storage`].

use crate::runtime::Runtime;
use ftps_backend::{ListingReader, Opened, OpenedFile, STAT_ENTRIES, Storage, User, now_utc};
use ftps_proto::server::{StorageError, StorageReply, StorageRequest};

/// Answers one storage request of the core. For `OpenRead`, `OpenWrite` and
/// `OpenListing` it also returns the file, for the session to hand to the data connection.
pub(crate) async fn execute<R: Runtime, S: Storage>(
    storage: &S,
    user: &User,
    request: StorageRequest,
) -> (Result<StorageReply, StorageError>, Option<OpenedFile<S>>) {
    let done = |r: Result<(), StorageError>| (r.map(|()| StorageReply::Done), None);
    match request {
        StorageRequest::Stat(p) => (
            storage.stat(user, &p).await.map(StorageReply::Metadata),
            None,
        ),
        // STAT over the control connection: a reply held whole, so a bounded one; the
        // entries pulled on the pool (their `next` may block).
        StorageRequest::List(p) => {
            let answer = match storage.list_entries(user, &p).await {
                Ok(entries) => {
                    R::unblock(move || {
                        Ok(StorageReply::Entries {
                            entries: entries.take(STAT_ENTRIES).collect::<Result<_, _>>()?,
                            now: now_utc(),
                        })
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            (answer, None)
        }
        StorageRequest::MakeDir(p) => done(storage.make_dir(user, &p).await),
        StorageRequest::RemoveDir(p) => done(storage.remove_dir(user, &p).await),
        StorageRequest::RemoveFile(p) => done(storage.remove_file(user, &p).await),
        StorageRequest::Rename { from, to } => done(storage.rename(user, &from, &to).await),
        StorageRequest::SetModified { path, modified } => {
            done(storage.set_modified(user, &path, modified).await)
        }
        StorageRequest::OpenListing { path, format, .. } => {
            match storage.list_entries(user, &path).await {
                Ok(entries) => (
                    Ok(StorageReply::Opened { path, size: 0 }),
                    Some(Opened::Listing(ListingReader::new(
                        entries,
                        format,
                        now_utc(),
                    ))),
                ),
                Err(e) => (Err(e), None),
            }
        }
        StorageRequest::OpenRead { path, offset, .. } => {
            match storage.open_read(user, &path, offset).await {
                Ok((reader, size)) => (
                    Ok(StorageReply::Opened { path, size }),
                    Some(Opened::Read(reader)),
                ),
                Err(e) => (Err(e), None),
            }
        }
        StorageRequest::OpenWrite {
            path,
            offset,
            append,
            unique,
            create_new,
            ..
        } => {
            let opened = if create_new && (offset > 0 || append || unique) {
                Err(StorageError::PermissionDenied)
            } else if create_new {
                storage.open_write_new(user, &path).await
            } else {
                storage
                    .open_write(user, &path, offset, append, unique)
                    .await
            };
            match opened {
                Ok((upload, path)) => (
                    Ok(StorageReply::Opened { path, size: 0 }),
                    Some(Opened::Write(upload)),
                ),
                Err(e) => (Err(e), None),
            }
        }
        StorageRequest::Hash {
            path,
            algorithm,
            start,
            end,
        } => {
            let range = match end {
                Some(end) => Some((start, end)),
                None if start == 0 => None,
                // To the end from `start`: not a request the core makes.
                None => return (Err(StorageError::InvalidOffset), None),
            };
            let hashed = storage.hash(user, &path, algorithm, range).await;
            (
                hashed.map(|h| StorageReply::Hash {
                    hex: h.hex,
                    bytes: h.bytes,
                }),
                None,
            )
        }
        _ => (
            Err(StorageError::Other("unsupported storage request".into())),
            None,
        ),
    }
}

/// The error of a storage call that did not answer within `limit` (451 to the client).
pub(crate) fn timed_out(limit: std::time::Duration) -> StorageError {
    StorageError::Other(format!(
        "the storage did not answer within {} s",
        limit.as_secs()
    ))
}

/// Whether `request` changes the tree (so that, abandoned, it may still happen).
pub(crate) fn changes(request: &StorageRequest) -> bool {
    matches!(
        request,
        StorageRequest::MakeDir(_)
            | StorageRequest::RemoveDir(_)
            | StorageRequest::RemoveFile(_)
            | StorageRequest::Rename { .. }
            | StorageRequest::SetModified { .. }
    )
}
