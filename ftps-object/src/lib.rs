//! An object store as the storage of an ftps server: Amazon S3 and every S3-compatible
//! service (Garage, MinIO, Ceph, ...) through [Apache OpenDAL](https://opendal.apache.org),
//! whose other services (GCS, Azure Blob, ...) plug in as an [`opendal::Operator`].
//!
//! How FTP maps onto objects:
//!
//! - each user's [home](ftps_backend::User::home) is a key prefix (`home/`), and every
//!   path beneath it a key (`home/dir/file`);
//! - directories are prefixes: `MKD` writes an empty marker object `dir/`, a directory
//!   exists while its marker or any key beneath it does, and `RMD` removes the marker of
//!   an empty one;
//! - an upload goes up as a multipart upload (parts of [`PART_SIZE`]; a small file as one
//!   `PUT`) and becomes visible only when it is committed on the 226; an aborted or
//!   failed transfer aborts it, so no partial object is ever seen. The parts being
//!   gathered are held in memory the store bounds ([`UPLOAD_MEMORY`]). With S3's 10,000
//!   parts, an upload is at most about 78 GiB;
//! - objects are written whole: no restarted uploads (REST + STOR), no APPE, no MFMT
//!   ([`StorageCapabilities::whole_objects`](ftps_proto::server::StorageCapabilities::whole_objects));
//!   the server refuses those and leaves them out of FEAT. Restarted downloads (REST +
//!   RETR) are ranged reads;
//! - a file is renamed by copy and delete; directories are not renamed (550);
//! - listings are read page by page from the service as the data connection takes them.
//!
//! The store runs OpenDAL on a small tokio runtime of its own, so it serves every
//! runtime's server (the storage calls come from the server's blocking pool).

#![forbid(unsafe_code)]

mod address;
mod keys;
mod store;
mod transfer;

pub use address::{Address, AddressError};
pub use store::{IO_TIMEOUT, ObjectStore, PART_SIZE, REQUEST_TIMEOUT, RETRIES, UPLOAD_MEMORY};
pub use transfer::{ObjectReader, ObjectUpload};
