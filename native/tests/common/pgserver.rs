//! A PostgreSQL server of a test's own (scripts/postgres.sh), stopped and started again
//! mid-test on the same port with the same data.
#![allow(dead_code)]

pub struct PgServer {
    pub url: String,
    dir: String,
}

impl PgServer {
    fn script(args: &[&str]) -> String {
        super::script("postgres.sh", args)
    }

    pub fn start() -> Self {
        let out = Self::script(&[]);
        let (url, dir) = out.trim().split_once(' ').unwrap();
        Self {
            url: url.to_string(),
            dir: dir.to_string(),
        }
    }

    /// Stops the server (a fast shutdown: connections are cut).
    pub fn down(&self) {
        Self::script(&["down", &self.dir]);
    }

    /// Starts it again, with its data.
    pub fn up(&self) {
        Self::script(&["up", &self.dir]);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        Self::script(&["stop", &self.dir]);
    }
}
