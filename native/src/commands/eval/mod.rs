//! `consistentid eval`: generate a benchmark (`run`), score images made by anything against
//! their reference photos (`score`), and put runs side by side (`compare`). The metrics and the
//! report are the eval crate's; this module reads and writes the files.

mod compare;
mod files;
mod run;
mod score;

use clap::Subcommand;

use crate::device::{DeviceChoice, DtypeChoice};

/// The `eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Generate the benchmark (every prompt row × seeds, infer.py's settings unless told
    /// otherwise) into RUN/images, resumable, then score it.
    Run(run::RunArgs),
    /// Score the images of a folder against the reference photos (FaceSim with ArcFace, FGIS,
    /// CLIP-I), writing RUN/results.csv, summary.json and report.html.
    Score(score::ScoreArgs),
    /// Put scored runs side by side in one report.
    Compare(compare::CompareArgs),
}

pub fn run(command: EvalCommand, device: DeviceChoice, dtype: DtypeChoice) -> anyhow::Result<()> {
    match command {
        EvalCommand::Run(args) => run::run(&args, device, dtype),
        EvalCommand::Score(args) => score::run(&args, device),
        EvalCommand::Compare(args) => compare::run(&args),
    }
}
