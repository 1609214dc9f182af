//! [`SuiteAuth`]: the suite's authenticator — Argon2id hashes ([`StaticUsers`]), or a
//! check that waits as one asking a slow directory service would.

use crate::ServerSetup;
use ftps_backend::{Authenticator, Check, StaticUsers, User, Verdict};
use ftps_proto::server::LoginRequest;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The suite's authenticator.
#[derive(Debug, Clone)]
pub enum SuiteAuth {
    /// Argon2id hashes, checked on the blocking pool at most one per core.
    Hashes(StaticUsers),
    /// Every check waits this long (an async timer, no thread held), then compares the
    /// password as given: many of them run at once.
    Waits {
        /// How long each check waits.
        wait: Duration,
        /// Each user and its password.
        users: Arc<HashMap<String, (User, String)>>,
        /// The wait blocks a thread ([`Check::Blocking`]) instead of awaiting a timer.
        blocking: bool,
    },
}

impl SuiteAuth {
    /// The authenticator `setup` asks for.
    pub fn new(setup: &ServerSetup) -> Self {
        let main = (User::new(&setup.user.0), setup.user.1.clone());
        let all = std::iter::once(main).chain(setup.users.iter().cloned());
        match setup.auth_wait {
            None => SuiteAuth::Hashes(all.fold(
                StaticUsers::new().with_anonymous(setup.config.anonymous),
                |users, (user, password)| {
                    let hash = ftps_backend::hash_password(&password);
                    users.with_user(user, &hash).expect("a valid hash")
                },
            )),
            Some(wait) => SuiteAuth::Waits {
                wait,
                users: Arc::new(all.map(|(u, p)| (u.name.clone(), (u, p))).collect()),
                blocking: setup.auth_blocking,
            },
        }
    }
}

impl Authenticator for SuiteAuth {
    fn authenticate<'a>(&'a self, login: &'a LoginRequest) -> Check<'a> {
        match self {
            SuiteAuth::Hashes(users) => users.authenticate(login),
            SuiteAuth::Waits {
                wait,
                users,
                blocking: false,
            } => Check::Wait(Box::pin(async move {
                smol::Timer::after(*wait).await;
                verdict(users, login)
            })),
            SuiteAuth::Waits {
                wait,
                users,
                blocking: true,
            } => {
                let (wait, users, login) = (*wait, users.clone(), login.clone());
                Check::Blocking(Box::new(move || {
                    std::thread::sleep(wait);
                    verdict(&users, &login)
                }))
            }
        }
    }
}

/// The password as given against `users` (the password `panic!` panics, as a buggy
/// authenticator would).
fn verdict(users: &HashMap<String, (User, String)>, login: &LoginRequest) -> Verdict {
    assert!(
        login.password.expose() != "panic!",
        "the suite's authenticator panics on purpose"
    );
    match users.get(&login.user) {
        Some((user, password)) if password == login.password.expose() => {
            Verdict::Accepted(user.clone())
        }
        _ => Verdict::Rejected,
    }
}
