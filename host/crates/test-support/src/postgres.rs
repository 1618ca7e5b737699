//! A throwaway PostgreSQL server for tests.
//!
//! [`postgres_url`] answers `ASSAY_TEST_DATABASE_URL` when it is set.
//! Otherwise the first call starts one server for the whole test process with
//! the local PostgreSQL binaries (`initdb`, `pg_ctl`; found in
//! `/usr/lib/postgresql/*/bin` or `PATH`): data in a temporary directory,
//! listening on 127.0.0.1 at a free port, `fsync=off`. As root the binaries
//! run as the `postgres` user (initdb refuses root).
//!
//! The server is stopped and its directory removed when the test process
//! ends, however it ends: a small shell watchdog started it and waits for
//! its stdin, a pipe only this process holds, to close.
//!
//! Missing binaries are a panic, never a skip: the tests that need
//! PostgreSQL must run.
//!
//! [`fresh_postgres_database`] creates a new, empty database per call (with
//! `psql`), so tests are isolated and can run in parallel.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Environment variable naming an existing server to use instead.
pub const URL_ENV: &str = "ASSAY_TEST_DATABASE_URL";

const MISSING: &str = "PostgreSQL server binaries not found: install them with \
                       `apt-get install -y postgresql` (the test script does this)";

/// The server this process uses.
struct Server {
    /// URL of its maintenance database.
    url: String,
    /// The `psql` client used to create databases.
    psql: PathBuf,
    /// Holding the watchdog's stdin open keeps the server alive; it closes
    /// when the process exits, and the watchdog then stops the server.
    _watchdog: Mutex<Option<(Child, ChildStdin, ChildStdout)>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Server {
            url,
            psql: find_psql(),
            _watchdog: Mutex::new(None),
        },
        _ => start_local(),
    })
}

/// URL of the test server's maintenance database (`postgres`), starting the
/// server on first use.
pub fn postgres_url() -> String {
    server().url.clone()
}

/// Creates a new empty database on the test server and returns its URL.
pub fn fresh_postgres_database() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let s = server();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new(&s.psql)
        .arg(&s.url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", s.psql.display()));
    assert!(
        out.status.success(),
        "CREATE DATABASE {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    with_database(&s.url, &name)
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{db}{query}")
}

/// Directories that may hold the server binaries, best first.
fn candidate_bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        dirs.extend(versions.into_iter().map(|(_, p)| p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

fn find_server_bin_dir() -> Option<PathBuf> {
    candidate_bin_dirs().into_iter().find(|d| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    })
}

fn find_psql() -> PathBuf {
    candidate_bin_dirs()
        .into_iter()
        .map(|d| d.join("psql"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`psql` not found: install it with `apt-get install -y postgresql-client`")
        })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free TCP port")
}

/// The watchdog: initdb, start, say `ready`, wait for stdin to close, stop,
/// clean up. Arguments: bin dir, work dir, port, and the command prefix that
/// runs a binary as the server's user (empty when not root).
const WATCHDOG: &str = r#"
bin="$1"; dir="$2"; port="$3"; run="$4"
data="$dir/data"
if ! $run "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C \
    >"$dir/initdb.log" 2>&1; then
  echo "initdb failed:"; cat "$dir/initdb.log"; rm -rf "$dir"; exit 1
fi
if ! $run "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >"$dir/pg_ctl.log" 2>&1; then
  echo "pg_ctl start failed:"; cat "$dir/pg_ctl.log" "$dir/server.log"; rm -rf "$dir"; exit 1
fi
echo ready
cat >/dev/null
$run "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
rm -rf "$dir"
"#;

fn start_local() -> Server {
    let bin = find_server_bin_dir().unwrap_or_else(|| panic!("{MISSING}"));
    let dir = tempfile::Builder::new()
        .prefix("assay-pg-")
        .tempdir()
        .expect("create a temporary directory for PostgreSQL")
        .keep();
    let run_as = if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("run chown");
        assert!(
            chown.success(),
            "running as root needs a `postgres` user to run the server \
             (created by `apt-get install -y postgresql`)"
        );
        "runuser -u postgres --"
    } else {
        ""
    };
    let port = free_port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(&bin)
        .arg(&dir)
        .arg(port.to_string())
        .arg(run_as)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the PostgreSQL watchdog shell");
    let stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read from the PostgreSQL watchdog");
    if line.trim() != "ready" {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        let _ = child.wait();
        panic!(
            "starting PostgreSQL from {} failed:\n{line}{rest}",
            bin.display()
        );
    }
    Server {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        psql: psql_near(&bin),
        _watchdog: Mutex::new(Some((child, stdin, stdout.into_inner()))),
    }
}

fn psql_near(bin: &Path) -> PathBuf {
    let p = bin.join("psql");
    if p.is_file() { p } else { find_psql() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t2"),
            "postgres://u@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t3"), "postgres://h:1/t3");
    }
}
