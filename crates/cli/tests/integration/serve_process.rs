//! `safeguard serve` as a child process, for the tests that need a real server: start it on a
//! free address, wait until `/status` answers 200, kill and reap it on drop (or stop it with
//! SIGTERM, as a supervisor does), and speak plain HTTP/1.1 to it over a socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer `/status` after it was started.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The `safeguard` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safeguard"))
}

/// An address nobody listens on now.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A running `safeguard serve`, killed and reaped when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `safeguard serve --listen addr`, with the rest of its arguments and environment
    /// from `configure` (standard output and error are discarded unless it says otherwise;
    /// `SAFEGUARD_STORE`, `SAFEGUARD_CONFIG` and `SAFEGUARD_MASTER_KEY` are cleared first, and
    /// the log level is `warn`), and waits until it answers `/status`.
    pub fn start(addr: SocketAddr, configure: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = bin();
        cmd.args(["serve", "--listen", &addr.to_string()])
            .env_remove("SAFEGUARD_STORE")
            .env_remove("SAFEGUARD_CONFIG")
            .env_remove("SAFEGUARD_MASTER_KEY")
            .env("SAFEGUARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        configure(&mut cmd);
        // Wrapped at once, so that a failed start still kills and reaps the process.
        let server = Server {
            child: cmd.spawn().unwrap(),
            addr,
        };
        let deadline = Instant::now() + READY_WITHIN;
        while !ready(addr) {
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Stops the server as a supervisor does (SIGTERM), so it drains and writes its
    /// snapshot, and asserts that it exited successfully.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
    }
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// One HTTP/1.1 request on a new connection; the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// [`http`] with a JSON body.
pub fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    http(addr, method, path, key, "application/json", body.as_bytes())
}
