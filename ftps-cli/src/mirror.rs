//! Mirrors, as lftp's `mirror` and `mirror -R`: `ftps get -r URL/ DIR` makes DIR hold
//! the remote directory's tree, `ftps put -r DIR URL/` the reverse. Only what differs is
//! moved: a file missing on the other side, of another size, or older there than here
//! (times from MLSD where the server has it, else MDTM, to the second); a downloaded
//! file takes the remote file's time, and an uploaded one is given the local file's
//! (MFMT) where the server can set it, so that a second run moves nothing. `--delete`
//! removes the files the source does not have. `-j N` moves N files at once, over N
//! sessions.
//!
//! The server's names are not trusted: a listed name that is not one plain path component
//! (empty, `.`, `..`, holding `/`, `\` or NUL) is skipped with a warning, so a listing
//! can never make a download write outside DIR; the tree walked is bounded in depth and
//! in entries. Symbolic links are not followed, on either side.

use crate::remote::{self, Connection, Failure, exit};
use ftps_proto::Printable;
use ftps_proto::Timestamp;
use ftps_proto::facts::FileType;
use ftps_proto::listing::EntryKind;
use ftps_tokio::{Client, FtpUrl};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

/// How a mirror runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mirror {
    /// Files moved at once (sessions).
    pub(crate) jobs: usize,
    /// Remove what the source does not have.
    pub(crate) delete: bool,
    /// `--retry N`: a file whose transfer fails in a way worth retrying (see
    /// `remote::Retries`) is tried again up to N times, each on a fresh connection.
    pub(crate) retry: u32,
}

/// The deepest directory a remote tree is walked to.
const MAX_DEPTH: usize = 64;
/// The most entries a remote tree may have (each listing is bounded by `--max-listing`
/// too): a server cannot keep a mirror listing forever.
const MAX_ENTRIES: usize = 1_000_000;

/// A file of a tree: its path below the mirrored directory (`/`-separated), its size and
/// its time (Unix seconds), if known.
#[derive(Debug, Clone)]
struct Entry {
    rel: String,
    size: u64,
    modified: Option<i64>,
}

/// A tree: its directories (parents before children) and files.
#[derive(Debug, Default)]
struct Tree {
    dirs: Vec<String>,
    files: Vec<Entry>,
}

/// Whether `name`, as a server listed it, is one plain path component.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `root/rel` as a remote path (relative to the login directory unless `root` is
/// absolute).
fn join(root: &str, rel: &str) -> String {
    let root = root.trim_end_matches('/');
    match (root.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_owned(),
        (_, true) => root.to_owned(),
        _ => format!("{root}/{rel}"),
    }
}

/// `rel` (`/`-separated) below the local `root`.
fn local_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
}

/// A local file's time, in Unix seconds.
fn local_time(meta: &std::fs::Metadata) -> Option<i64> {
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// An entry of a remote directory: its name, kind, size and time (Unix seconds; only
/// from MLSD: LIST's are to the minute at best).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Listed {
    pub(crate) name: String,
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub(crate) kind: EntryKind,
    pub(crate) size: Option<u64>,
    pub(crate) modified: Option<i64>,
}

fn kind_name<S: serde::Serializer>(kind: &EntryKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match kind {
        EntryKind::File => "file",
        EntryKind::Directory => "dir",
        EntryKind::Symlink => "link",
        _ => "other",
    })
}

/// Says on stderr that a listing of `path` had lines in no known form (their files are
/// not mirrored), showing the first, escaped.
fn warn_unparsed(path: &str, unparsed: &[Vec<u8>]) {
    if let Some(first) = unparsed.first() {
        say!(
            "ftps: warning: /{}: {} listing line(s) in no known form skipped, the first: {}",
            Printable(path),
            unparsed.len(),
            ftps_proto::PrintableBytes(first)
        );
    }
}

/// Says on stderr that a listing of `path` had names that are not UTF-8, which a mirror
/// does not take (its paths are text), showing the first with its bytes as `\xNN`.
fn warn_not_utf8(path: &str, names: &[Vec<u8>]) {
    if let Some(first) = names.first() {
        say!(
            "ftps: warning: /{}: {} name(s) that are not UTF-8 skipped, the first: {}",
            Printable(path),
            names.len(),
            ftps_proto::PrintableBytes(first)
        );
    }
}

/// The entries of the remote directory `path` (the login directory when empty): MLSD
/// where the server has it, else LIST, parsed (`.` and `..` left out, and names that are
/// not UTF-8, with a warning: the library reaches them by their bytes, the command line
/// by text only).
pub(crate) async fn list_dir(c: &mut Client, path: &str) -> Result<Vec<Listed>, Failure> {
    let at = (!path.is_empty()).then_some(path);
    let mut not_utf8 = Vec::new();
    let listed: Vec<Listed> = if c.features().supports("MLST") {
        let listing =
            remote::op(c.mlsd(at).await).map_err(|f| remote::about(Printable(path), f))?;
        warn_unparsed(path, &listing.unparsed);
        let (text, bytes): (Vec<_>, Vec<_>) =
            listing.into_iter().partition(|e| e.raw_pathname.is_none());
        not_utf8.extend(bytes.into_iter().filter_map(|e| e.raw_pathname));
        text.into_iter()
            .filter(|e| !matches!(e.file_type(), Some(FileType::Cdir | FileType::Pdir)))
            .map(|e| Listed {
                kind: match e.file_type() {
                    Some(FileType::File) => EntryKind::File,
                    Some(FileType::Dir) => EntryKind::Directory,
                    Some(FileType::Other(t)) if t.eq_ignore_ascii_case("OS.unix=symlink") => {
                        EntryKind::Symlink
                    }
                    _ => EntryKind::Other,
                },
                size: e.size(),
                modified: e.modified().map(|t| t.to_unix()),
                name: e.pathname,
            })
            .collect()
    } else {
        let listing =
            remote::op(c.list(at).await).map_err(|f| remote::about(Printable(path), f))?;
        warn_unparsed(path, &listing.unparsed);
        let (text, bytes): (Vec<_>, Vec<_>) =
            listing.into_iter().partition(|e| e.raw_name.is_none());
        not_utf8.extend(bytes.into_iter().filter_map(|e| e.raw_name));
        text.into_iter()
            .map(|e| Listed {
                name: e.name,
                kind: e.kind,
                size: e.size,
                modified: None,
            })
            .collect()
    };
    warn_not_utf8(path, &not_utf8);
    Ok(listed
        .into_iter()
        .filter(|e| e.name != "." && e.name != "..")
        .collect())
}

/// The remote tree below `root` (the login directory when empty).
async fn remote_tree(c: &mut Client, root: &str) -> Result<Tree, Failure> {
    let mut tree = Tree::default();
    let mut queue = VecDeque::from([(String::new(), 0usize)]);
    let mut entries = 0usize;
    while let Some((dir, depth)) = queue.pop_front() {
        let path = join(root, &dir);
        let listed = list_dir(c, &path).await?;
        for Listed {
            name,
            kind,
            size,
            modified,
        } in listed
        {
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(Failure {
                    code: exit::TRANSFER,
                    message: format!("{root}: more than {MAX_ENTRIES} entries: not mirrored"),
                    transient: false,
                    permanent: false,
                });
            }
            if matches!(kind, EntryKind::Other | EntryKind::Symlink) {
                continue;
            }
            if !plain_name(&name) {
                say!(
                    "ftps: warning: {}: skipped a listed name that is not a plain name: {}",
                    Printable(&path),
                    Printable(&name)
                );
                continue;
            }
            let rel = join(&dir, &name);
            match kind {
                EntryKind::Directory if depth < MAX_DEPTH => {
                    tree.dirs.push(rel.clone());
                    queue.push_back((rel, depth + 1));
                }
                EntryKind::Directory => say!(
                    "ftps: warning: {}: deeper than {MAX_DEPTH} directories: not mirrored",
                    Printable(&rel)
                ),
                _ => {
                    let size = match size {
                        Some(s) => s,
                        None => remote::op(c.size(&join(root, &rel)).await)?,
                    };
                    tree.files.push(Entry {
                        rel,
                        size,
                        modified,
                    });
                }
            }
        }
    }
    Ok(tree)
}

/// The local tree below `root`: directories and regular files (symbolic links and names
/// that are not UTF-8 skipped, with a warning).
fn local_tree(root: &Path) -> Result<Tree, Failure> {
    let mut tree = Tree::default();
    let mut queue = VecDeque::from([String::new()]);
    while let Some(dir) = queue.pop_front() {
        let path = local_path(root, &dir);
        let read = std::fs::read_dir(&path)
            .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
        let mut names = Vec::new();
        for item in read {
            let item = item.map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                say!(
                    "ftps: warning: {}: a name that is not UTF-8: not mirrored",
                    item.path().display()
                );
                continue;
            };
            names.push((name, item));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, item) in names {
            let rel = join(&dir, &name);
            let meta = std::fs::symlink_metadata(item.path())
                .map_err(|e| Failure::local(format!("{}: {e}", item.path().display())))?;
            if meta.is_dir() {
                tree.dirs.push(rel.clone());
                queue.push_back(rel);
            } else if meta.is_file() {
                tree.files.push(Entry {
                    rel,
                    size: meta.len(),
                    modified: local_time(&meta),
                });
            }
        }
    }
    Ok(tree)
}

/// The remote file's time: the listing's, else MDTM's (`None` if the server has none).
async fn remote_time(c: &mut Client, path: &str, listed: Option<i64>) -> Option<i64> {
    match listed {
        Some(t) => Some(t),
        None => c.modified(path).await.ok().map(|t| t.to_unix()),
    }
}

/// What a mirror did.
#[derive(Default)]
struct Outcome {
    moved: usize,
    failed: Vec<(String, Failure)>,
}

/// Runs `work` for each of `todo` over `jobs` sessions (`first` and more made with
/// `conn`): each session takes the next file when done with one.
async fn run_jobs<F, Fut>(
    first: Client,
    conn: &Connection,
    url: &FtpUrl,
    how: &Mirror,
    todo: Vec<Entry>,
    work: F,
) -> Outcome
where
    F: Fn(Client, Entry) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Client, Result<(), Failure>)> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(todo)));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let work = Arc::new(work);
    let sessions = how
        .jobs
        .min(queue.lock().unwrap_or_else(|e| e.into_inner()).len())
        .max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = Some(first);
    for _ in 0..sessions {
        let client = match first.take() {
            Some(c) => c,
            None => match remote::connect(conn, url).await {
                Ok(c) => c,
                Err(f) => {
                    // Fewer sessions: the others take the work.
                    say!(
                        "ftps: warning: another session: {}",
                        remote::Shown(&f.message)
                    );
                    continue;
                }
            },
        };
        let (queue, outcome, work) = (queue.clone(), outcome.clone(), work.clone());
        let (conn, url, retry) = (conn.clone(), url.clone(), how.retry);
        tasks.spawn(async move {
            let mut client = client;
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(entry) = next else { break };
                let rel = entry.rel.clone();
                let mut retries = remote::Retries::new(retry);
                let done = loop {
                    let (c, done) = work(client, entry.clone()).await;
                    client = c;
                    match done {
                        Ok(()) => break Ok(()),
                        Err(f) => match retries.after(f, &conn, &url).await {
                            // The session that failed is dropped, not asked to QUIT: it
                            // may be the part that is broken.
                            Ok(fresh) => client = fresh,
                            Err(f) => break Err(f),
                        },
                    }
                };
                let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
                match done {
                    Ok(()) => o.moved += 1,
                    Err(f) => o.failed.push((rel, f)),
                }
            }
            let _ = client.quit().await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *o)
}

/// The end of a mirror: a summary on stderr; the first failure, if any, as the result.
fn finish(what: &str, o: Outcome, unchanged: usize, deleted: usize) -> Result<(), Failure> {
    say!(
        "ftps: {what}: {} moved, {unchanged} unchanged, {deleted} deleted, {} failed",
        o.moved,
        o.failed.len()
    );
    // Each message names its file (the remote path, or the local one for a local failure).
    // The first is the command's result, printed as every command's failure is: not here.
    for (_, f) in o.failed.iter().skip(1) {
        say!("ftps: {}", remote::Shown(&f.message));
    }
    match o.failed.into_iter().next() {
        Some((_, f)) => Err(f),
        None => Ok(()),
    }
}

/// `ftps get -r URL DIR`: DIR made to hold the remote directory's tree.
pub(crate) async fn get(
    conn: &Connection,
    url: &str,
    dest: Option<&str>,
    how: Mirror,
) -> Result<(), Failure> {
    let url = remote::parse_text(url, "get -r")?;
    let dest = match dest {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(
            url.path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| plain_name(n))
                .unwrap_or("."),
        ),
    };
    let pace = conn.pace();
    let mut c = remote::connect(conn, &url).await?;
    let tree = remote_tree(&mut c, &url.path).await?;
    for dir in std::iter::once("").chain(tree.dirs.iter().map(String::as_str)) {
        let path = local_path(&dest, dir);
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    }
    let mut todo = Vec::new();
    let mut unchanged = 0;
    for mut f in tree.files.iter().cloned() {
        let local = std::fs::metadata(local_path(&dest, &f.rel));
        let same = match local {
            Ok(m) if m.is_file() && m.len() == f.size => {
                f.modified = remote_time(&mut c, &join(&url.path, &f.rel), f.modified).await;
                // Newer there: moved; as old or older (or no time to tell): kept.
                f.modified
                    .is_none_or(|t| local_time(&m).is_some_and(|l| l >= t))
            }
            _ => false,
        };
        if same {
            unchanged += 1;
        } else {
            todo.push(f);
        }
    }
    let mut deleted = 0;
    if how.delete {
        let wanted: HashSet<&str> = tree.files.iter().map(|f| f.rel.as_str()).collect();
        for f in local_tree(&dest)?.files {
            if !wanted.contains(f.rel.as_str()) {
                let path = local_path(&dest, &f.rel);
                std::fs::remove_file(&path)
                    .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
                deleted += 1;
            }
        }
    }
    let root = url.path.clone();
    let outcome = run_jobs(c, conn, &url, &how, todo, move |mut c, f| {
        let (root, dest) = (root.clone(), dest.clone());
        async move {
            let remote = join(&root, &f.rel);
            let local = local_path(&dest, &f.rel);
            let mut done =
                remote::download(&mut c, remote.as_str().into(), &local, false, None, pace).await;
            if done.is_ok() {
                // The remote file's time, so that the next run sees it unchanged.
                if let Some(t) = remote_time(&mut c, &remote, f.modified).await {
                    done = set_local_time(&local, t);
                }
            }
            (c, done.map_err(|e| remote::about(Printable(&remote), e)))
        }
    })
    .await;
    finish("get -r", outcome, unchanged, deleted)
}

/// Gives the local file `path` the time `t` (Unix seconds).
fn set_local_time(path: &Path, t: i64) -> Result<(), Failure> {
    let Some(time) = Timestamp::from_unix(t).map(|t| t.to_system_time()) else {
        return Ok(()); // Outside years 0-9999: left as written.
    };
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))
}

/// `ftps put -r DIR URL`: the remote directory made to hold DIR's tree.
pub(crate) async fn put(
    conn: &Connection,
    source: &str,
    url: &str,
    how: Mirror,
) -> Result<(), Failure> {
    let source = PathBuf::from(source);
    if !std::fs::metadata(&source).is_ok_and(|m| m.is_dir()) {
        return Err(Failure::local(format!(
            "{}: not a directory (put -r takes a directory)",
            source.display()
        )));
    }
    let local = local_tree(&source)?;
    let url = remote::parse_text(url, "put -r")?;
    let pace = conn.pace();
    let mut c = remote::connect(conn, &url).await?;
    let root = url.path.clone();
    // The directory made first if it is not there (a MKD refused because it exists is
    // fine): some servers (vsftpd) list a missing directory as an empty one.
    remote::create_dirs(&mut c, &root, &mut Vec::new()).await;
    let tree = remote_tree(&mut c, &root).await?;
    let there: HashSet<&str> = tree.dirs.iter().map(String::as_str).collect();
    for dir in &local.dirs {
        if !there.contains(dir.as_str()) {
            let path = join(&root, dir);
            remote::op(c.mkdir(&path).await).map_err(|f| remote::about(Printable(&path), f))?;
        }
    }
    let remote_files: HashMap<&str, &Entry> =
        tree.files.iter().map(|f| (f.rel.as_str(), f)).collect();
    let mut todo = Vec::new();
    let mut unchanged = 0;
    for f in &local.files {
        let same = match remote_files.get(f.rel.as_str()) {
            Some(r) if r.size == f.size => {
                let t = remote_time(&mut c, &join(&root, &f.rel), r.modified).await;
                // Older there: moved; as new or newer (or no time to tell): kept.
                t.is_none_or(|t| f.modified.is_some_and(|l| t >= l))
            }
            _ => false,
        };
        if same {
            unchanged += 1;
        } else {
            todo.push(f.clone());
        }
    }
    let mut deleted = 0;
    if how.delete {
        let wanted: HashSet<&str> = local.files.iter().map(|f| f.rel.as_str()).collect();
        for f in &tree.files {
            if !wanted.contains(f.rel.as_str()) {
                let path = join(&root, &f.rel);
                remote::op(c.delete(&path).await)
                    .map_err(|e| remote::about(Printable(&path), e))?;
                deleted += 1;
            }
        }
    }
    let settable = c.features().supports("MFMT");
    let outcome = run_jobs(c, conn, &url, &how, todo, move |mut c, f| {
        let (root, source) = (root.clone(), source.clone());
        async move {
            let remote = join(&root, &f.rel);
            let local = local_path(&source, &f.rel);
            let file = match std::fs::File::open(&local) {
                Ok(file) => file,
                Err(e) => {
                    return (c, Err(Failure::local(format!("{}: {e}", local.display()))));
                }
            };
            let mut done = remote::upload(&mut c, file, &local, &remote, false, pace).await;
            if done.is_ok() && settable {
                // The local file's time, so that the next run sees it unchanged.
                if let Some(t) = f.modified.and_then(Timestamp::from_unix) {
                    done = remote::op(c.set_modified(&remote, t).await);
                }
            }
            (c, done.map_err(|e| remote::about(Printable(&remote), e)))
        }
    })
    .await;
    finish("put -r", outcome, unchanged, deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_taken_from_a_listing() {
        for bad in [
            "", ".", "..", "../x", "a/b", "/etc", "a\\b", "..\\x", "a\0b",
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        for good in ["a", "a b", "naïve", "...", "..a", ".hidden"] {
            assert!(plain_name(good), "{good:?}");
        }
    }

    #[test]
    fn paths_join_without_doubled_slashes() {
        assert_eq!(join("", "a/b"), "a/b");
        assert_eq!(join("tree/", "a"), "tree/a");
        assert_eq!(join("/abs/tree", "a"), "/abs/tree/a");
        assert_eq!(join("tree", ""), "tree");
        let root = Path::new("/x");
        assert_eq!(local_path(root, "a/b c/d"), Path::new("/x/a/b c/d"));
    }
}
