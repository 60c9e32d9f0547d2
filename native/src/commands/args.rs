//! Command-line arguments shared by several commands.

use std::path::PathBuf;

use clap::Args;
use consistentid_core::face::{ChannelOrder, FaceChoice};
use consistentid_core::scheduler::SchedulerKind;

/// Arguments of the stages that read tensors.
#[derive(Debug, Args)]
pub struct TensorArgs {
    /// Model folder in the diffusers layout.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Input safetensors file with the tensors the stage names.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Output safetensors file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// The channel order fed to SCRFD / ArcFace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChannelOrderArg {
    /// As the official SD1.5 pipeline (RGB handed to insightface, so the networks see BGR).
    Official,
    /// As insightface intends (networks see RGB).
    Corrected,
}

impl From<ChannelOrderArg> for ChannelOrder {
    fn from(v: ChannelOrderArg) -> Self {
        match v {
            ChannelOrderArg::Official => ChannelOrder::Official,
            ChannelOrderArg::Corrected => ChannelOrder::Corrected,
        }
    }
}

/// `best`, `largest`, a 0-based index, or a box `x1,y1,x2,y2` (the face centred in it).
pub fn parse_face_choice(s: &str) -> std::result::Result<FaceChoice, String> {
    let expected = || format!("`{s}`: expected best, largest, a face index or a box x1,y1,x2,y2");
    match s {
        "best" => Ok(FaceChoice::BestScore),
        "largest" => Ok(FaceChoice::Largest),
        n if n.contains(',') => {
            let values: Vec<f32> = n
                .split(',')
                .map(|v| v.trim().parse())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| expected())?;
            let b: [f32; 4] = values.try_into().map_err(|_| expected())?;
            consistentid_core::face::choose::check_box(&b).map_err(|m| format!("`{s}`: {m}"))?;
            Ok(FaceChoice::Overlapping(b))
        }
        n => n.parse().map(FaceChoice::Index).map_err(|_| expected()),
    }
}

/// Parses a `--scheduler` name.
pub fn parse_scheduler(name: &str) -> Result<SchedulerKind, String> {
    SchedulerKind::from_name(name).ok_or_else(|| {
        format!(
            "unknown scheduler `{name}` ({})",
            SchedulerKind::NAMES.join(", ")
        )
    })
}

/// How the identity is obtained: a stored embedding, or detection + ArcFace on the face photo
/// with the buffalo_l ONNX files of the model folder.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// A stored identity: safetensors with `id_embedding` [1,512] (L2-normalised); replaces
    /// detection and ArcFace.
    #[arg(long, value_name = "F.safetensors")]
    pub id_embedding: Option<PathBuf>,
    /// Which detected face: `best` (highest score, the official rule), `largest`, an index in
    /// score order, or a box `x1,y1,x2,y2` in pixels (the face centred in it).
    #[arg(long, default_value = "best", value_parser = parse_face_choice)]
    pub face_index: FaceChoice,
    /// Channel order fed to insightface's networks (`official` reproduces the SD1.5 pipeline).
    #[arg(long, value_enum, default_value_t = ChannelOrderArg::Official)]
    pub channel_order: ChannelOrderArg,
    /// With no face found, use a zero embedding (what the official code silently does) instead
    /// of stopping with an error.
    #[arg(long)]
    pub allow_no_face: bool,
}
