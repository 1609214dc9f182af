//! [`User`]: who logged in, as the authenticator made it — what the storage receives with
//! every call and what the protocol core enforces.

use crate::quota::Quota;
use ftps_proto::VirtualPath;
use ftps_proto::server::{ControlTlsPolicy, DataTlsPolicy, Grants};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A logged-in user: its name, its home within the storage, what it may do there, its TLS
/// policies, and anything an application attaches ([`extra`](Self::extra)).
///
/// The [`Authenticator`](crate::Authenticator) makes it; the server keeps it for the
/// session and hands it to every [`Storage`](crate::Storage) call, which must confine the
/// user to [`home`](Self::home). The protocol core enforces [`grants`](Self::grants) for
/// every storage (550 for what they do not allow) and the TLS policies at login.
#[derive(Clone)]
#[non_exhaustive]
pub struct User {
    /// The user name (`anonymous` for every spelling of the anonymous user).
    pub name: String,
    /// The directory of the storage the user sees as `/` (the storage's own root when it
    /// is `/`). The storage confines the user to it, symbolic links included.
    pub home: VirtualPath,
    /// What the user may do where (relative to [`home`](Self::home)).
    pub grants: Grants,
    /// What the home may hold (the server enforces it for every storage: 552 past it).
    pub quota: Quota,
    /// Replaces the server's control channel policy for this user.
    pub control_tls: Option<ControlTlsPolicy>,
    /// Replaces the server's data channel policy for this user.
    pub data_tls: Option<DataTlsPolicy>,
    /// Whatever the application attaches (a database id, a tenant), for its storage and
    /// event hooks: `user.extra.as_ref()?.downcast_ref::<MyData>()`.
    pub extra: Option<Arc<dyn Any + Send + Sync>>,
}

impl User {
    /// `name`, at home in the storage's root, allowed everything, with the server's
    /// policies.
    pub fn new(name: impl Into<String>) -> Self {
        User {
            name: name.into(),
            home: VirtualPath::root(),
            grants: Grants::default(),
            quota: Quota::UNLIMITED,
            control_tls: None,
            data_tls: None,
            extra: None,
        }
    }

    /// With `home` as the user's `/`.
    #[must_use]
    pub fn with_home(mut self, home: VirtualPath) -> Self {
        self.home = home;
        self
    }

    /// With these permissions.
    #[must_use]
    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// With this quota.
    #[must_use]
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// With this control channel policy.
    #[must_use]
    pub fn with_control_tls(mut self, policy: Option<ControlTlsPolicy>) -> Self {
        self.control_tls = policy;
        self
    }

    /// With this data channel policy.
    #[must_use]
    pub fn with_data_tls(mut self, policy: Option<DataTlsPolicy>) -> Self {
        self.data_tls = policy;
        self
    }

    /// With the application's own data.
    #[must_use]
    pub fn with_extra(mut self, extra: Arc<dyn Any + Send + Sync>) -> Self {
        self.extra = Some(extra);
        self
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("home", &self.home)
            .field("grants", &self.grants)
            .field("quota", &self.quota)
            .field("control_tls", &self.control_tls)
            .field("data_tls", &self.data_tls)
            .field("extra", &self.extra.as_ref().map(|_| ".."))
            .finish()
    }
}
