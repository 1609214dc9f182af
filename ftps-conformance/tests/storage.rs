//! The storage suite (`ftps_conformance::storage`) against every back-end: `LocalFs` on a
//! temporary directory and the object store on a real Garage node on loopback.

use ftps_backend::{LocalFs, User};
use ftps_conformance::garage::Garage;
use ftps_conformance::memory::MemoryStorage;
use ftps_conformance::storage::Blocked;
use ftps_object::{Address, ObjectStore};
use ftps_proto::VirtualPath;

fn users() -> (User, User) {
    let home = |h: &str| VirtualPath::root().resolve(h);
    (
        User::new("u1").with_home(home("homes/u1")),
        User::new("u2").with_home(home("homes/u2")),
    )
}

#[test]
fn local_fs_passes_the_storage_suite() {
    let root = std::env::temp_dir().join(format!("ftps-storage-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for h in ["homes/u1", "homes/u2"] {
        std::fs::create_dir_all(root.join(h)).expect("home");
    }
    let storage = LocalFs::new(&root).expect("root");
    let (u1, u2) = users();
    let result = ftps_conformance::storage::run(&storage, &u1, &u2, 1100);
    let _ = std::fs::remove_dir_all(&root);
    result.expect("LocalFs");
}

/// A native async storage (in memory), through the async trait: its own reads and
/// writes, its default HASH.
#[test]
fn an_async_storage_passes_the_storage_suite() {
    let memory = MemoryStorage::new();
    for h in ["/homes", "/homes/u1", "/homes/u2"] {
        memory.make(h);
    }
    let (u1, u2) = users();
    let storage = Blocked(std::sync::Arc::new(memory));
    ftps_conformance::storage::run(&storage, &u1, &u2, 1100).expect("MemoryStorage");
}

#[test]
fn object_store_on_garage_passes_the_storage_suite() {
    let Some(garage) = Garage::start("suite") else {
        return;
    };
    let mut address = Address::parse(&garage.address("ftp")).expect("address");
    address.access_key_id = Some(garage.key_id.clone());
    address.secret_access_key = Some(garage.secret.clone());
    let storage = ObjectStore::s3(&address).expect("store");
    storage.check().expect("the bucket answers");
    let (u1, u2) = users();
    ftps_conformance::storage::run(&storage, &u1, &u2, 1100)
        .unwrap_or_else(|e| panic!("object store: {e}\n{}", garage.log()));
}

#[test]
fn object_store_refuses_wrong_credentials_at_the_check() {
    let Some(garage) = Garage::start("creds") else {
        return;
    };
    let mut address = Address::parse(&garage.address("")).expect("address");
    address.access_key_id = Some(garage.key_id.clone());
    address.secret_access_key = Some("0".repeat(64));
    let storage = ObjectStore::s3(&address).expect("store");
    let e = storage.check().expect_err("a wrong secret was taken");
    assert!(
        e.contains("PermissionDenied") || e.contains("403") || e.contains("signature"),
        "not refused for the credentials: {e}"
    );
}
