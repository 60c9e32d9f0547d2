//! `eval compare`: scored runs side by side (ablations, methods, settings) in one report.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use consistentid_eval::report;
use consistentid_eval::summary::METRICS;

use super::files::read_run;
use crate::io::output::{ensure_writable_file, write_atomic};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders written by `eval score` or `eval run`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The report to write.
    #[arg(long, default_value = "compare.html")]
    pub out: PathBuf,
}

pub fn run(args: &CompareArgs) -> Result<()> {
    if args.runs.len() < 2 {
        bail!("compare needs at least two run folders");
    }
    compare(&args.runs, &args.out)
}

/// Writes the report of `dirs` side by side to `out` and prints the overall table.
pub fn compare(dirs: &[PathBuf], out: &Path) -> Result<()> {
    ensure_writable_file(out, &[])?;
    let runs = dirs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<_> = runs
        .iter()
        .map(|r| (&r.summary, Some(r.rows.as_slice())))
        .collect();
    write_atomic(out, report::render(&pairs, &[]).as_bytes())?;
    let width = runs
        .iter()
        .map(|r| r.summary.name.len())
        .max()
        .unwrap_or(4)
        .max(8);
    print!("{:<22}", "metric");
    for r in &runs {
        print!("  {:>width$}", r.summary.name);
    }
    println!();
    for (key, name) in METRICS {
        if runs.iter().all(|r| !r.summary.overall.contains_key(key)) {
            continue;
        }
        print!("{name:<22}");
        for r in &runs {
            let cell = r
                .summary
                .overall
                .get(key)
                .map(|s| format!("{:.4}", s.mean))
                .unwrap_or_else(|| "-".into());
            print!("  {cell:>width$}");
        }
        println!();
    }
    if runs.iter().any(|r| r.summary.fid.is_some()) {
        print!("{:<22}", "FID");
        for r in &runs {
            let cell = r
                .summary
                .fid
                .as_ref()
                .map_or_else(|| "-".into(), |f| format!("{:.2}", f.value));
            print!("  {cell:>width$}");
        }
        println!();
    }
    println!("{}", out.display());
    Ok(())
}
