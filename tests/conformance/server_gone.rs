//! The PostgreSQL server gone mid-run: a proxy between stagecraft and the
//! test server stands for the network, and is cut while a run goes on.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Side, backends};

/// Forwards connections to the test server until cut; then every
/// connection through it is closed and no new one is accepted.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop, kept) = (Arc::clone(&cut), Arc::clone(&streams));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).expect("blocking");
                let server = TcpStream::connect(&upstream).expect("the test server");
                let mut kept = kept.lock().expect("streams");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                    std::thread::spawn(move || {
                        let mut buffer = [0; 8192];
                        while let Ok(n @ 1..) = from.read(&mut buffer) {
                            if to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                kept.extend([client, server]);
            }
        });
        Self { port, cut, streams }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().expect("streams").iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
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

#[test]
fn a_server_gone_mid_run_stops_it_with_exit_4_and_the_next_run_recovers_it() {
    let Some(side) = backends("gone", &pipeline())
        .into_iter()
        .find(|side| side.scratch.is_some())
    else {
        return;
    };
    let Side { url, .. } = &side;
    let (base, database) = url.rsplit_once('/').expect("a database");
    let host = base.rsplit_once('@').map_or(base, |(_, host)| host);
    let proxy = Proxy::start(host.to_owned());
    let through = format!("postgres://postgres@127.0.0.1:{}/{database}", proxy.port);
    let started = Instant::now();
    let run = side
        .command_on(&through, &["deploy", "--env", "prod", "--version", "v1"])
        .env("STAGECRAFT_DEBUG_HOST", "runner-a")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stagecraft");
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
    assert!(!stderr.contains("panicked"), "{stderr}");
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
