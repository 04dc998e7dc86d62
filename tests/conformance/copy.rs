//! `stagecraft state copy`: a history carried from files to PostgreSQL and
//! back reads the same everywhere.

use super::{PIPELINE, backends};
use crate::support::postgres::Scratch;

#[test]
fn a_history_copied_to_postgres_and_back_reads_the_same() {
    let sides = backends("copy_source", PIPELINE);
    let files = &sides[0];
    files.expect(&["deploy", "--env", "prod", "--version", "v1"], 0);
    files.expect(&["deploy", "--env", "prod", "--version", "v2", "--services", "web"], 0);
    files.expect(&["deploy", "--env", "prod", "--version", "bad"], 3);
    files.expect(&["rollback", "--env", "prod", "--to-previous"], 0);
    files.expect(&["deploy", "--env", "dev", "--version", "v3"], 0);
    let reads = |url: &str| {
        [
            "releases list --all --format json",
            "status --format json",
            "status --env prod",
        ]
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.split(' ').collect();
            files.expect_on(url, &args, 0).stdout
        })
        .collect::<Vec<_>>()
    };
    let original = reads("file:.stagecraft");
    assert!(original[0].contains("\"version\": \"bad\""), "{}", original[0]);
    let copy = |from: &str, to: &str, extra: &[&str], status: i32| {
        let mut args = vec!["state", "copy", "--from", from, "--to", to];
        args.extend_from_slice(extra);
        files.expect_on("file:.stagecraft", &args, status)
    };
    let run = copy("file:.stagecraft", "file:again", &[], 0);
    assert!(run.stdout.contains("copied 5 releases of `shop`"), "{}", run.stdout);
    assert_eq!(reads("file:again"), original);
    let refused = copy("file:.stagecraft", "file:again", &[], 1);
    assert!(
        refused.stderr.contains("already holds the history of `shop`"),
        "{}",
        refused.stderr
    );
    copy("file:.stagecraft", "file:again", &["--force"], 0);
    assert_eq!(reads("file:again"), original);

    let Some(scratch) = Scratch::new("copy_target") else {
        return;
    };
    copy("file:.stagecraft", &scratch.url, &[], 0);
    assert_eq!(reads(&scratch.url), original);
    copy(&scratch.url, "file:back", &[], 0);
    assert_eq!(reads("file:back"), original);
    copy("file:back", &scratch.url, &[], 1);
    copy("file:back", &scratch.url, &["--force"], 0);
    assert_eq!(reads(&scratch.url), original);
    // The copy goes on as the original would.
    files.expect_on(&scratch.url, &["rollback", "--env", "prod", "--to-version", "v1"], 0);
    files.expect_on("file:back", &["rollback", "--env", "prod", "--to-version", "v1"], 0);
    assert_eq!(reads(&scratch.url), reads("file:back"));
}
