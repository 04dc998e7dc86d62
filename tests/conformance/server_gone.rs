//! The PostgreSQL server gone mid-run: a proxy between stagecraft and the
//! test server stands for the network, and is cut while a run goes on
//! (and, in one test, restored).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Side, backends, json};

/// Forwards connections to the test server until cut; then every
/// connection through it is closed and each new one is closed at once,
/// until it is restored.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    /// Cut on the client's side only: the server's sessions stay open, as
    /// when the network fails between a runner and the server.
    frozen: Arc<AtomicBool>,
    /// Each connection: the client's stream, the server's.
    streams: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
}

impl Proxy {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<(TcpStream, TcpStream)>>> = Arc::default();
        let (stop, kept, freeze) = (Arc::clone(&cut), Arc::clone(&streams), Arc::clone(&frozen));
        std::thread::spawn(move || {
            loop {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if stop.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                client.set_nonblocking(false).expect("blocking");
                let server = TcpStream::connect(&upstream).expect("the test server");
                let mut kept = kept.lock().expect("streams");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                    let frozen = Arc::clone(&freeze);
                    std::thread::spawn(move || {
                        let mut buffer = [0; 8192];
                        while let Ok(n @ 1..) = from.read(&mut buffer) {
                            if to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        if !frozen.load(Ordering::SeqCst) {
                            let _ = to.shutdown(Shutdown::Both);
                        }
                    });
                }
                kept.push((client, server));
            }
        });
        Self {
            port,
            cut,
            frozen,
            streams,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for (client, server) in self.streams.lock().expect("streams").iter() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }

    /// Cuts the clients off and leaves the server's sessions open (their
    /// streams are kept until the test ends).
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
        self.cut.store(true, Ordering::SeqCst);
        for (client, _) in self.streams.lock().expect("streams").iter() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `a` sleeps, then ten phases one after another each leave a file.
fn pipeline() -> String {
    let mut text = "pipeline shop\nenv prod {}\nphase a {\n  run \"sleep 1\"\n}\n".to_owned();
    let mut previous = "a".to_owned();
    for n in 1..=10 {
        let _ = write!(text, "phase p{n} {{\n  after {previous}\n  run \"touch p{n}\"\n}}\n");
        previous = format!("p{n}");
    }
    let all: Vec<String> = std::iter::once("a".to_owned())
        .chain((1..=10).map(|n| format!("p{n}")))
        .collect();
    let _ = writeln!(text, "workflow deploy {{ {} }}", all.join(" "));
    text
}

/// The PostgreSQL side of `pipeline()` for `test`, a proxy to its server,
/// and the URL through the proxy; `None` without a server.
fn proxied(test: &str) -> Option<(Side, Proxy, String)> {
    let side = backends(test, &pipeline())
        .into_iter()
        .find(|side| side.scratch.is_some())?;
    let Side { url, .. } = &side;
    let (base, database) = url.rsplit_once('/').expect("a database");
    let host = base.rsplit_once('@').map_or(base, |(_, host)| host);
    let proxy = Proxy::start(host.to_owned());
    let through = format!("postgres://postgres@127.0.0.1:{}/{database}", proxy.port);
    Some((side, proxy, through))
}

/// Starts `deploy` of v1 on the state at `url`, with `env` set.
fn deploy(side: &Side, url: &str, env: &[(&str, &str)]) -> std::process::Child {
    side.command_on(url, &["deploy", "--env", "prod", "--version", "v1"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stagecraft")
}

#[test]
fn a_server_gone_mid_run_stops_it_with_exit_4_and_the_next_run_recovers_it() {
    let Some((side, proxy, through)) = proxied("gone") else {
        return;
    };
    let database = through.rsplit_once('/').expect("a database").1;
    let started = Instant::now();
    let run = deploy(
        &side,
        &through,
        &[("STAGECRAFT_DEBUG_HOST", "runner-a"), ("STAGECRAFT_STATE_RETRY", "2s")],
    );
    let id = side.wait_running();
    proxy.cut();
    let output = run.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "error: cannot record the run: cannot record a release in the PostgreSQL state `127.0.0.1:{}/{database}`: ",
            proxy.port
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: its last state could not be written either (cannot connect to the PostgreSQL state"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Claims committed before the cut may start (their start is durable)
    // until a commit fails; nothing after that.
    assert!(
        !side.path().join("p10").exists(),
        "a command started after the server went away"
    );
    // The next command, on a working connection, marks it interrupted.
    let next = side.expect(&["deploy", "--env", "prod", "--version", "v2", "--wait=10s"], 0);
    assert!(
        next.stderr
            .contains(&format!("release {id} was interrupted on host `runner-a`")),
        "{}",
        next.stderr
    );
    // A server that is not there at all: exit 4 at once, naming it.
    let refused = side.run_on(&through, &["status"]);
    assert_eq!(refused.status, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("cannot connect to the PostgreSQL state"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_run_whose_server_comes_back_lets_what_runs_finish_and_records_its_last_state() {
    comes_back("back", Proxy::cut);
}

/// The server keeps the run's first session, and with it the env's lock:
/// the run ends that session before it takes the lock again.
#[test]
fn a_run_cut_off_from_a_server_that_kept_its_session_ends_that_session_and_records_its_last_state() {
    comes_back("kept", Proxy::freeze);
}

/// A run of `pipeline()` whose connection `cut` cuts while `a` runs, and
/// which the proxy lets through again after `a` has ended.
fn comes_back(test: &str, cut: fn(&Proxy)) {
    let Some((side, proxy, through)) = proxied(test) else {
        return;
    };
    let started = Instant::now();
    let run = deploy(&side, &through, &[("STAGECRAFT_STATE_RETRY", "20s")]);
    let id = side.wait_running();
    // Gone while `a` runs; back after it ended.
    cut(&proxy);
    std::thread::sleep(Duration::from_millis(1500));
    proxy.restore();
    let output = run.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it took {:?}: {stderr}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "help: the state answered again once the commands running had ended: release {id} is recorded as failed"
        )),
        "{stderr}"
    );
    let shown = json(&side.expect(&["releases", "show", &id, "--format", "json"], 0));
    assert_eq!(shown["status"], "failed", "{shown}");
    let phases = shown["phases"].as_array().expect("phases");
    let status = |n: usize| (phases[n]["status"].as_str(), phases[n]["reason"].as_str());
    assert_eq!(status(0), (Some("completed"), None), "`a` was let finish: {shown}");
    // Claims committed before the cut may have started (and completed)
    // until a commit failed; the rest is recorded as it ended.
    let ran = (1..=10).take_while(|&n| status(n) == (Some("completed"), None)).count();
    assert!(ran < 10, "{shown}");
    for n in 1..=10 {
        let expected = match n {
            _ if n <= ran => (Some("completed"), None),
            _ if n == ran + 1 && status(n).0 == Some("failed") => (Some("failed"), Some("interrupted")),
            _ => (Some("skipped"), Some("interrupted")),
        };
        assert_eq!(status(n), expected, "p{n}: {shown}");
        assert_eq!(side.path().join(format!("p{n}")).exists(), n <= ran, "p{n}: {shown}");
    }
    // Nothing is left for the next command to recover.
    let next = side.expect(&["deploy", "--env", "prod", "--version", "v2"], 0);
    assert!(!next.stderr.contains("interrupted"), "{}", next.stderr);
}
