//! `consistentid migrate`: brings a PostgreSQL database's schema up to date, for operators who
//! start `serve --no-migrate` processes (the hosted demo's API and workers).

use anyhow::Context;
use clap::Args;

/// `migrate` options.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The database (postgres://user@host:5432/db); the password comes from the URL or
    /// PGPASSWORD and is never printed.
    #[arg(
        long,
        env = "CONSISTENTID_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: String,
}

pub fn run(args: &MigrateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let applied = runtime.block_on(crate::server::store::migrate_only(&args.database_url))?;
    let shown = crate::server::store::redact(&args.database_url);
    match applied.last() {
        Some((version, description)) => println!(
            "{shown} is up to date: {} migration(s), the last {version} ({description})",
            applied.len()
        ),
        None => println!("{shown} has no migrations applied"),
    }
    Ok(())
}
