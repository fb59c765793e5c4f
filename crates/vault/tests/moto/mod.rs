//! A real local S3 server for the tests: moto's server mode (PyPI `moto[server]`, installed
//! by `scripts/setup` into the private tools virtualenv), started as a child process and
//! killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Variable naming the `moto_server` program, overriding the default path.
pub const MOTO_ENV: &str = "SAFEGUARD_MOTO";
/// How long moto may take to start answering: its first start imports a great deal of
/// Python (seconds on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of one raw HTTP exchange with moto.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its log (requests and errors), shown when it fails to start.
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

fn moto_program() -> PathBuf {
    if let Some(p) = std::env::var_os(MOTO_ENV) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    let venv = std::env::var_os("SAFEGUARD_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(home).join(".local/share/safeguard-tools"));
    venv.join("bin/moto_server")
}

impl Moto {
    /// Starts moto, or returns `None` (with a message saying why the S3 tests are skipped)
    /// when it is not installed. Under `CI=true` a missing moto is a failure, not a skip.
    pub fn start() -> Option<Moto> {
        let program = moto_program();
        if !program.exists() {
            let msg = format!(
                "moto_server not found at {} (set {MOTO_ENV}, or run scripts/setup, which \
                 installs moto[server] into the tools virtualenv)",
                program.display()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and the S3 backend cannot be tested: {msg}");
            }
            eprintln!("SKIPPED: the S3 backend suite: {msg}");
            return None;
        }
        // A free port: bound, read and released. Another process could take it in between;
        // then moto fails to bind and the wait below says so.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("moto.log");
        let out = std::fs::File::create(&log).unwrap();
        // Output to a file, not a pipe: moto logs every request, and a pipe nobody reads
        // would fill and stall it.
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut moto = Moto {
            child,
            port,
            log,
            _log_dir: log_dir,
        };
        let start = Instant::now();
        loop {
            if let Ok((status, _)) = moto.http("GET", "/", &[]) {
                assert_eq!(status, 200, "moto answered GET / with {status}");
                break;
            }
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!(
                    "moto exited ({status}) before answering:\n{}",
                    moto.log_text()
                );
            }
            if start.elapsed() > START_TIMEOUT {
                panic!(
                    "moto did not answer within {START_TIMEOUT:?}:\n{}",
                    moto.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "moto {} listening on 127.0.0.1:{port} after {:?}",
            program.display(),
            start.elapsed()
        );
        Some(moto)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request, unsigned (moto does not check signatures), answered with
    /// the status and the body. Kept to std so the test sees moto's own answer, not a
    /// client library's reading of it.
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(HTTP_TIMEOUT))?;
        s.set_write_timeout(Some(HTTP_TIMEOUT))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of headers"))?;
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
        let body = resp[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err(std::io::Error::other("chunked answers are not parsed here"));
        }
        Ok((status, body))
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self.http("PUT", &format!("/{name}"), &[]).unwrap();
        assert_eq!(
            status,
            200,
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
