//! The image stages: any ONNX graph, face detection, alignment + ArcFace, the CLIP vision tower,
//! face parsing and the facial regions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use consistentid_core::bisenet::labels::{self, REGIONS};
use consistentid_core::bisenet::preprocess as bisenet_preprocess;
use consistentid_core::bisenet::regions::{facial_regions, region_image};
use consistentid_core::bisenet::{BiSeNet, BiSeNetOutput};
use consistentid_core::clip::ClipVisionModelWithProjection;
use consistentid_core::clip::image_processor;
use consistentid_core::face::arcface::ArcFace;
use consistentid_core::face::blazeface::BlazeFace;
use consistentid_core::face::choose::warnings;
use consistentid_core::face::mtcnn::Mtcnn;
use consistentid_core::face::scrfd::Scrfd;
use consistentid_core::face::{ChannelOrder, Detection, FaceChoice, choose_face};
use consistentid_core::image::RgbImage;
use consistentid_core::onnx::{FloatValue, IntValue, OnnxModel, OnnxSession, Value};
use consistentid_core::tensor_io::{NamedTensor, TensorFile};

use crate::commands::args::{ChannelOrderArg, parse_face_choice};
use crate::device::{DeviceChoice, select};
use crate::io::image::read_image;
use crate::io::tensors::{write, write_with_metadata};

/// Arguments of `stage onnx`.
#[derive(Debug, Args)]
pub struct OnnxArgs {
    /// The ONNX file.
    #[arg(long, value_name = "F.onnx")]
    pub model: PathBuf,
    /// Safetensors file holding one tensor per graph input, named as in the graph (float
    /// tensors as f32/f16/bf16/f64, integer ones as i64/i32).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Output safetensors file: every graph output under its graph name (f32 or i64).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Reads and decodes an ONNX file.
pub fn load_onnx(path: &Path) -> Result<OnnxModel> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(OnnxModel::parse(&bytes, &path.display().to_string())?)
}

pub fn onnx(args: &OnnxArgs, device: DeviceChoice) -> Result<()> {
    let model = load_onnx(&args.model)?;
    let (device, _) = select(device)?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read input {}", args.input.display()))?;
    let file = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
    let session = OnnxSession::new(model, &device)?;
    let mut inputs = Vec::new();
    for name in session.input_names() {
        let value = match file.i64(name) {
            Ok((data, shape)) => Value::Int(IntValue::new(shape, data)),
            Err(_) => {
                let (data, shape) = file.f32(name).with_context(|| {
                    format!(
                        "{} must hold the graph inputs {}",
                        args.input.display(),
                        session.input_names().join(", ")
                    )
                })?;
                if shape.len() > consistentid_core::onnx::value::MAX_RANK {
                    bail!(
                        "input `{name}` has rank {}, above the supported 6",
                        shape.len()
                    );
                }
                Value::Float(FloatValue::from_host(shape, data, &device))
            }
        };
        inputs.push((name.to_string(), value));
    }
    let outputs = session.run(inputs)?;
    let tensors: Vec<NamedTensor> = outputs
        .into_iter()
        .map(|(name, v)| match v {
            Value::Float(f) => NamedTensor::from_f32(&name, f.shape.clone(), &f.to_host()),
            Value::Int(i) => NamedTensor::from_i64(&name, i.shape, &i.data),
        })
        .collect();
    write(&args.out, &tensors, "")
}

/// Which detector `stage detect` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectorKind {
    /// insightface SCRFD (`det_10g.onnx`): what the official pipeline uses.
    Scrfd,
    /// MTCNN with facenet-pytorch's weights (a folder with pnet.pt, rnet.pt, onet.pt).
    Mtcnn,
    /// MediaPipe BlazeFace ONNX (front 128² or back 256²); six keypoints.
    Blazeface,
}

/// Arguments of `stage detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    #[arg(long, value_enum)]
    pub detector: DetectorKind,
    /// The detector's weights: an ONNX file (scrfd, blazeface) or the folder holding
    /// pnet.pt / rnet.pt / onet.pt (mtcnn).
    #[arg(long, value_name = "PATH")]
    pub weights: PathBuf,
    /// PNG, JPEG or WebP image (EXIF orientation applied).
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// SCRFD input size as WIDTHxHEIGHT (insightface's det_size; default 640x640).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub det_size: Option<(usize, usize)>,
    /// SCRFD channel order.
    #[arg(long, value_enum, default_value_t = ChannelOrderArg::Official)]
    pub channel_order: ChannelOrderArg,
    /// Output safetensors file: `boxes` [N,4] (x1,y1,x2,y2 pixels), `scores` [N], `landmarks`
    /// [N,5,2] ([N,6,2] for BlazeFace), highest score first.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `stage arcface`.
#[derive(Debug, Args)]
pub struct ArcfaceArgs {
    /// The ArcFace ONNX file (`w600k_r50.onnx`, `glintr100.onnx`).
    #[arg(long, value_name = "F.onnx")]
    pub weights: PathBuf,
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// Where the five landmarks come from: `scrfd:DET.onnx` or `mtcnn:DIR`. Without it the
    /// image must already be an aligned crop of the model's input size.
    #[arg(long, value_name = "DETECTOR:PATH")]
    pub landmarks_from: Option<String>,
    /// Which face: `best` (highest score, the official rule), `largest`, or an index in score
    /// order.
    #[arg(long, default_value = "best", value_parser = parse_face_choice)]
    pub face: FaceChoice,
    #[arg(long, value_enum, default_value_t = ChannelOrderArg::Official)]
    pub channel_order: ChannelOrderArg,
    /// SCRFD input size as WIDTHxHEIGHT (default 640x640).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub det_size: Option<(usize, usize)>,
    /// Output: `aligned` [1,3,S,S] (0–255, the channel order the model sees), `embedding`
    /// [1,D], `normed_embedding` [1,D].
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// The largest SCRFD input side accepted (insightface uses 640).
const MAX_DET_SIDE: usize = 2048;

fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 640x640")?;
    let parse = |v: &str| {
        v.parse::<usize>()
            .ok()
            .filter(|&v| (32..=MAX_DET_SIDE).contains(&v) && v.is_multiple_of(32))
    };
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!(
            "sides must be multiples of 32 from 32 to {MAX_DET_SIDE}"
        )),
    }
}

/// MTCNN from a folder (or any of its three files).
fn load_mtcnn(path: &Path, device: &Device) -> Result<Mtcnn> {
    let dir = if path.is_file() {
        path.parent().unwrap_or(Path::new("."))
    } else {
        path
    };
    let files: Vec<(Vec<u8>, String)> = ["pnet.pt", "rnet.pt", "onet.pt"]
        .iter()
        .map(|n| {
            let p = dir.join(n);
            std::fs::read(&p)
                .with_context(|| {
                    format!(
                        "cannot read {} (MTCNN needs pnet.pt, rnet.pt, onet.pt)",
                        p.display()
                    )
                })
                .map(|b| (b, p.display().to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(Mtcnn::load(
        [
            (&files[0].0, &files[0].1),
            (&files[1].0, &files[1].1),
            (&files[2].0, &files[2].1),
        ],
        device,
    )?)
}

/// Runs a detector on an image.
fn run_detector(
    kind: DetectorKind,
    weights: &Path,
    img: &RgbImage,
    det_size: Option<(usize, usize)>,
    order: ChannelOrder,
    device: &Device,
) -> Result<Vec<Detection>> {
    Ok(match kind {
        DetectorKind::Scrfd => {
            let mut det = Scrfd::new(load_onnx(weights)?, device)?;
            if let Some(size) = det_size {
                det.input_size = size;
            }
            det.channel_order = order;
            det.detect(img)?
        }
        DetectorKind::Mtcnn => load_mtcnn(weights, device)?.detect(img)?,
        DetectorKind::Blazeface => BlazeFace::new(load_onnx(weights)?, device)?.detect(img)?,
    })
}

pub fn detect(args: &DetectArgs, device: DeviceChoice) -> Result<()> {
    let img = read_image(&args.image)?;
    let (device, _) = select(device)?;
    let found = run_detector(
        args.detector,
        &args.weights,
        &img,
        args.det_size,
        args.channel_order.into(),
        &device,
    )?;
    let n = found.len();
    let points = found.first().map_or(
        match args.detector {
            DetectorKind::Blazeface => 6,
            _ => 5,
        },
        |d| d.landmarks.len(),
    );
    let boxes: Vec<f32> = found.iter().flat_map(|d| d.bbox).collect();
    let scores: Vec<f32> = found.iter().map(|d| d.score).collect();
    let landmarks: Vec<f32> = found
        .iter()
        .flat_map(|d| d.landmarks.iter().flat_map(|p| *p))
        .collect();
    eprintln!("{n} face(s) in {}", args.image.display());
    write(
        &args.out,
        &[
            NamedTensor::from_f32("boxes", vec![n, 4], &boxes),
            NamedTensor::from_f32("scores", vec![n], &scores),
            NamedTensor::from_f32("landmarks", vec![n, points, 2], &landmarks),
        ],
        "",
    )
}

pub fn arcface(args: &ArcfaceArgs, device: DeviceChoice) -> Result<()> {
    let img = read_image(&args.image)?;
    let (device, _) = select(device)?;
    let mut rec = ArcFace::new(load_onnx(&args.weights)?, &device)?;
    let order: ChannelOrder = args.channel_order.into();
    rec.channel_order = order;
    let aligned = match &args.landmarks_from {
        Some(spec) => {
            let (kind, path) = spec.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("--landmarks-from takes DETECTOR:PATH, e.g. scrfd:det_10g.onnx")
            })?;
            let kind = match kind {
                "scrfd" => DetectorKind::Scrfd,
                "mtcnn" => DetectorKind::Mtcnn,
                other => bail!(
                    "--landmarks-from: `{other}` gives no 5-point landmarks (use scrfd or mtcnn)"
                ),
            };
            let found = run_detector(kind, Path::new(path), &img, args.det_size, order, &device)?;
            let face = choose_face(&found, args.face, &args.image.display().to_string())?;
            for w in warnings(&found, face) {
                eprintln!("warning: {w}");
            }
            rec.align(&img, &face.landmarks)?
        }
        None => {
            if (img.width, img.height) != (rec.size, rec.size) {
                bail!(
                    "{} is {}x{}: without --landmarks-from the image must be an aligned {s}x{s} crop",
                    args.image.display(),
                    img.width,
                    img.height,
                    s = rec.size
                );
            }
            match order {
                ChannelOrder::Official => img.swap_rb(),
                ChannelOrder::Corrected => img,
            }
        }
    };
    let emb = rec.embed(&aligned)?;
    let d = emb.embedding.len();
    let s = aligned.width;
    write(
        &args.out,
        &[
            NamedTensor::from_f32("aligned", vec![1, 3, s, s], &aligned.to_planar()),
            NamedTensor::from_f32("embedding", vec![1, d], &emb.embedding),
            NamedTensor::from_f32("normed_embedding", vec![1, d], &emb.normed),
        ],
        "",
    )
}

/// Arguments of `stage clip-vision`.
#[derive(Debug, Args)]
pub struct ClipVisionArgs {
    /// A transformers `CLIPVisionModelWithProjection` folder (config.json +
    /// model.safetensors), e.g. the pipeline's `image_encoder/`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// Output: `pixel_values` [1,3,S,S] (CLIPImageProcessor), `penultimate_hidden_state`
    /// [1,T,H] (`hidden_states[-2]`), `image_embeds` [1,P].
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn clip_vision(
    args: &ClipVisionArgs,
    device: DeviceChoice,
    dtype: burn::tensor::DType,
) -> Result<()> {
    let img = read_image(&args.image)?;
    let source = crate::source::DirSource::open(&args.model)?;
    let (device, _) = select(device)?;
    let model = ClipVisionModelWithProjection::load(&source, "", None, dtype, &device)?;
    let size = model.image_size();
    let pixels = image_processor::preprocess(&img, size);
    let x: burn::tensor::Tensor<4> = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(pixels.clone(), [1, 3, size, size]),
        &device,
    );
    let out = model.forward(x)?;
    write(
        &args.out,
        &[
            NamedTensor::from_f32("pixel_values", vec![1, 3, size, size], &pixels),
            NamedTensor::f32("penultimate_hidden_state", out.penultimate()),
            NamedTensor::f32("image_embeds", out.image_embeds),
        ],
        "",
    )
}

/// Arguments of `stage bisenet` and `stage region-images`.
#[derive(Debug, Args)]
pub struct BisenetArgs {
    /// The face-parsing state dict (`face_parsing.pth` / `79999_iter.pth`).
    #[arg(long, value_name = "F.pth")]
    pub weights: PathBuf,
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `stage face-regions`.
#[derive(Debug, Args)]
pub struct FaceRegionsArgs {
    /// Where the label map comes from: `bisenet:F.pth`.
    #[arg(long, value_name = "bisenet:F.pth")]
    pub labels_from: String,
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs BiSeNet: (network input, logits, label map).
fn parse_face(
    weights: &Path,
    img: &RgbImage,
    device: &Device,
) -> Result<(Vec<f32>, BiSeNetOutput)> {
    let bytes =
        std::fs::read(weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let net = BiSeNet::load(&bytes, &weights.display().to_string(), device)?;
    let input = bisenet_preprocess::preprocess(img);
    let s = bisenet_preprocess::SIZE;
    let x: burn::tensor::Tensor<4> = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(input.clone(), [1, 3, s, s]),
        device,
    );
    Ok((input, net.forward(x)))
}

fn label_map(out: &BiSeNetOutput) -> Vec<u8> {
    out.labels
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v as u8)
        .collect()
}

pub fn bisenet(args: &BisenetArgs, device: DeviceChoice) -> Result<()> {
    let img = read_image(&args.image)?;
    let (device, _) = select(device)?;
    let (input, out) = parse_face(&args.weights, &img, &device)?;
    let s = bisenet_preprocess::SIZE;
    let labels: Vec<i64> = label_map(&out).into_iter().map(i64::from).collect();
    write(
        &args.out,
        &[
            NamedTensor::from_f32("pixel_values", vec![1, 3, s, s], &input),
            NamedTensor::f32("logits", out.logits),
            NamedTensor::from_i64("labels", vec![s, s], &labels),
        ],
        "",
    )
}

pub fn face_regions(args: &FaceRegionsArgs, device: DeviceChoice) -> Result<()> {
    let weights = args
        .labels_from
        .strip_prefix("bisenet:")
        .ok_or_else(|| anyhow::anyhow!("--labels-from takes bisenet:F.pth"))?;
    let img = read_image(&args.image)?;
    let (device, _) = select(device)?;
    let (_, out) = parse_face(Path::new(weights), &img, &device)?;
    let s = bisenet_preprocess::SIZE;
    let regions = facial_regions(&label_map(&out), s, s);
    let mut masks = vec![0.0f32; REGIONS.len() * s * s];
    let mut valid = vec![0i64; REGIONS.len()];
    for (k, (_, _, mask)) in regions.iter().enumerate() {
        valid[k] = 1;
        for (i, &m) in mask.data.iter().enumerate() {
            masks[k * s * s + i] = if m { 1.0 } else { 0.0 };
        }
    }
    let names: Vec<&str> = regions
        .iter()
        .map(|(r, l, _)| {
            if r.labels.len() > 1 {
                labels::official_name(*l)
            } else {
                r.name
            }
        })
        .collect();
    eprintln!("regions: {}", names.join(", "));
    write_with_metadata(
        &args.out,
        &[
            NamedTensor::from_f32("masks", vec![REGIONS.len(), s, s], &masks),
            NamedTensor::from_i64("region_valid", vec![REGIONS.len()], &valid),
        ],
        &[("region_names", names.join(","))],
    )
}

pub fn region_images(args: &BisenetArgs, device: DeviceChoice) -> Result<()> {
    let img = read_image(&args.image)?;
    let (device, _) = select(device)?;
    let (_, out) = parse_face(&args.weights, &img, &device)?;
    let s = bisenet_preprocess::SIZE;
    let regions = facial_regions(&label_map(&out), s, s);
    let clip = 224;
    // Absent regions stay zero (the official padding with zero tensors).
    let mut pixels = vec![0.0f32; REGIONS.len() * 3 * clip * clip];
    for (k, (_, _, mask)) in regions.iter().enumerate() {
        let region = region_image(&img, mask);
        let v = image_processor::preprocess(&region, clip);
        pixels[k * v.len()..(k + 1) * v.len()].copy_from_slice(&v);
    }
    write(
        &args.out,
        &[NamedTensor::from_f32(
            "region_pixel_values",
            vec![REGIONS.len(), 3, clip, clip],
            &pixels,
        )],
        "",
    )
}
