//! The storage interface itself (`state::Backend` and what it opens), the
//! same calls on both backends: a release recorded, read back equal on both,
//! a run that died recovered, and the env lock.

use stagecraft::engine::{Event, Plan, Reason};
use stagecraft::state::{
    Backend, Clock, EnvStore, Holder, Opening, Reap, Recovered, ReleaseMeta, ReleaseStatus, StateError, StateUrl, Wait,
};
use stagecraft::testing;

use super::{PIPELINE, backends};

fn plan(env: &str) -> Plan {
    let instances = vec![testing::instance("build", &[]), testing::instance("rollout", &[0])];
    testing::plan("shop", env, "deploy", "v1", instances)
}

fn open(backend: &Backend, env: &str, host: &str) -> Result<(EnvStore, Vec<Recovered>), StateError> {
    let clock = Clock::from_setting(Some(super::NOW)).expect("a clock");
    let mut holder = Holder::current("deploy", Some(env), clock.now());
    host.clone_into(&mut holder.host);
    let reap = Reap {
        grace: std::time::Duration::from_secs(1),
        notice: &|_| {},
    };
    backend.open_env(
        "shop",
        env,
        &Opening {
            holder: &holder,
            wait: Wait::No,
            clock,
            reap: &reap,
        },
    )
}

#[test]
fn the_interface_records_and_recovers_the_same_on_both_backends() {
    let sides = backends("interface", PIPELINE);
    let mut releases = Vec::new();
    for side in &sides {
        let url = match &side.scratch {
            None => StateUrl::File(side.path().join(".stagecraft")),
            Some(scratch) => StateUrl::Postgres(scratch.url.clone()),
        };
        let backend = Backend::open(&url, &side.path().join(".stagecraft")).expect("open");
        let (mut store, recovered) = open(&backend, "prod", "runner-a").expect("lock prod");
        assert!(recovered.is_empty());
        // The env's lock: another opening of prod is refused; dev is not.
        let Err(StateError::Locked { holder, .. }) = open(&backend, "prod", "runner-b") else {
            panic!("{}: prod opened twice", side.name)
        };
        assert_eq!(holder.map(|h| h.host), Some("runner-a".to_owned()), "{}", side.name);
        drop(open(&backend, "dev", "runner-b").expect("dev at once"));
        let (mut recording, _) = store
            .begin_with(&ReleaseMeta::default(), |_| Ok::<_, StateError>(plan("prod")))
            .expect("begin");
        recording
            .append(&[Event::Started {
                instance: 0,
                attempt: 1,
            }])
            .expect("append");
        recording
            .append(&[
                Event::Completed {
                    instance: 0,
                    exit_code: Some(0),
                },
                Event::Skipped {
                    instance: 1,
                    reason: Reason::Condition,
                },
            ])
            .expect("append");
        let first = recording.finish().expect("finish");
        // A run that dies: its release is left unfinished, then recovered.
        let (recording, _) = store
            .begin_with(&ReleaseMeta::default(), |_| Ok::<_, StateError>(plan("prod")))
            .expect("begin");
        let second = recording.release().id;
        drop(recording);
        drop(store);
        let (_store, recovered) = open(&backend, "prod", "runner-b").expect("lock prod again");
        assert_eq!(recovered.len(), 1, "{}", side.name);
        assert_eq!(recovered[0].release, second);
        assert_eq!(recovered[0].skipped, ["build", "rollout"]);
        let state = backend.pipeline("shop");
        let list = state.releases(None, None).expect("list");
        assert_eq!(list.len(), 2, "{}", side.name);
        assert_eq!(list[0].status, ReleaseStatus::Failed);
        assert_eq!(list[1].status, ReleaseStatus::Completed);
        let read = state.release(&first.id.to_string()).expect("read back");
        assert_eq!(read, first, "{}: a release reads back as recorded", side.name);
        releases.push((
            list,
            read,
            state.release(&second.to_string()).expect("the recovered one"),
        ));
    }
    for other in releases.iter().skip(1) {
        assert_eq!(other, &releases[0], "both backends hold the same releases");
    }
}
