//! A PostgreSQL database of its own for a test, on the server named by
//! `STAGECRAFT_TEST_POSTGRES` (`.ci/run` starts a throwaway cluster and sets
//! it). Without it a test that needs a server says so and passes, except
//! under CI (`CI` set), where it fails.

use stagecraft::state::postgres::{self as pg, Database};

/// A database of its own for one test, dropped with it.
pub(crate) struct Scratch {
    admin: String,
    /// The URL of the test's database.
    pub(crate) url: String,
    name: String,
}

impl Scratch {
    /// A fresh database on the test server, or `None` (with a message) when
    /// there is no server outside CI.
    pub(crate) fn new(test: &str) -> Option<Self> {
        let Ok(admin) = std::env::var("STAGECRAFT_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but STAGECRAFT_TEST_POSTGRES is not: .ci/run must start PostgreSQL"
            );
            eprintln!("skipped `{test}`: set STAGECRAFT_TEST_POSTGRES to a PostgreSQL URL to run it");
            return None;
        };
        let name = format!("stagecraft_{test}_{}", std::process::id());
        let mut client = ::postgres::Client::connect(&admin, ::postgres::NoTls).expect("the test server answers");
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (base, _) = admin.rsplit_once('/').expect("the URL names a database");
        let url = format!("{base}/{name}");
        Some(Self { admin, url, name })
    }

    pub(crate) fn connect(&self) -> Database {
        pg::connect(&self.url).unwrap()
    }

    /// An administrator's connection, to look and to terminate sessions.
    pub(crate) fn admin(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.url, ::postgres::NoTls).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut client) = ::postgres::Client::connect(&self.admin, ::postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
