//! `consistentid eval` end to end on the tiny replicas (generation and the metrics' networks
//! from one model folder): `eval run` generates a small benchmark (a reference missing for one
//! row is reported, not fatal) and resumes without redoing anything; `eval score` gives images
//! made elsewhere the same scores from their names alone; `eval compare` puts two runs side by
//! side; the HTML report, opened in headless Chromium, shows its tables, histograms and grid
//! (screenshots kept under the target dir, eval-report/).

use std::path::Path;
use std::process::Command;

use consistentid_core::weights::MemorySource;
use consistentid_eval::scorer::Scorer;
use consistentid_native::io::image::decode;
use consistentid_tests::browser::{Driver, binary, browser};
use consistentid_tests::page::{model_folder, shot};
use consistentid_tests::{fixture, real_data};
use fantoccini::Locator;
use serde_json::Value;

const PROMPTS: &str = "Image_Name,Prompt\nastronaut.png,a man wearing a red hat\nastronaut.png,a watercolor painting of a man\nmissing.png,a man on the beach\n";

fn eval(args: &[&str]) -> (String, String) {
    let o = Command::new(binary())
        .arg("eval")
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "eval {args:?}: {err}");
    (out, err)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run_args<'a>(
    model: &'a str,
    refs: &'a str,
    prompts: &'a str,
    out: &'a str,
    merge: &'a str,
) -> Vec<&'a str> {
    vec![
        "run",
        "--model",
        model,
        "--refs",
        refs,
        "--prompts",
        prompts,
        "--seeds",
        "2",
        "--steps",
        "2",
        "--merge-step",
        merge,
        "--width",
        "32",
        "--height",
        "48",
        "--out",
        out,
    ]
}

/// A source on a tiny model folder of the fixtures.
fn tiny(name: &str) -> consistentid_native::source::DirSource {
    consistentid_native::source::DirSource::open(fixture(name)).unwrap()
}

/// The image files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p
            .extension()
            .is_some_and(|e| ["png", "jpg", "jpeg", "webp"].contains(&e.to_str().unwrap_or("")))
        {
            out.push(p);
        }
    }
    out
}

/// A `--facenet` folder: MTCNN's real weights and the tiny InceptionResnetV1.
fn facenet_folder(dir: &Path) -> std::path::PathBuf {
    for n in ["pnet", "rnet", "onet"] {
        std::fs::copy(
            real_data(&format!("mtcnn/{n}.pt")),
            dir.join(format!("{n}.pt")),
        )
        .unwrap();
    }
    std::fs::copy(fixture("facenet_tiny/facenet.pt"), dir.join("facenet.pt")).unwrap();
    dir.to_path_buf()
}

/// The scorer on the replica networks (SCRFD, IResNet-512, BiSeNet, the tiny CLIP ViT).
fn replica_scorer(device: &burn::tensor::Device) -> Scorer {
    let mut files = std::collections::HashMap::new();
    for (from, to) in [
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
        ("bisenet_tiny/face_parsing.pth", "face_parsing.pth"),
        (
            "consistentid_pipeline/image_encoder/config.json",
            "image_encoder/config.json",
        ),
        (
            "consistentid_pipeline/image_encoder/model.safetensors",
            "image_encoder/model.safetensors",
        ),
    ] {
        files.insert(to.to_string(), std::fs::read(fixture(from)).unwrap());
    }
    Scorer::load(&MemorySource { files }, device).unwrap()
}

/// An image scored against itself: every metric at 1, every facial region found in both.
#[test]
fn an_image_against_itself_is_a_perfect_match() {
    let device = burn::tensor::Device::flex();
    let mut scorer = replica_scorer(&device);
    let clip =
        consistentid_core::clip::ClipModel::load(&tiny("clip_model_tiny"), "", &device).unwrap();
    scorer.clip_model = Some(("clip_model_tiny".into(), clip));
    let vit = consistentid_core::vit::ViTModel::load(&tiny("vit_tiny"), "", &device).unwrap();
    scorer.dino = Some(("vit_tiny".into(), vit));
    let tmp = tempfile::tempdir().unwrap();
    let facenet = facenet_folder(tmp.path());
    let read = |n: &str| std::fs::read(facenet.join(n)).unwrap();
    let (p, r, o) = (read("pnet.pt"), read("rnet.pt"), read("onet.pt"));
    let mtcnn =
        consistentid_core::face::mtcnn::Mtcnn::load([(&p, "p"), (&r, "r"), (&o, "o")], &device)
            .unwrap();
    let net = consistentid_core::face::facenet::InceptionResnetV1::load(
        &read("facenet.pt"),
        "facenet.pt",
        &device,
    )
    .unwrap();
    scorer.facenet = Some(("facenet_tiny".into(), mtcnn, net));
    let photo = decode(
        &std::fs::read(real_data("images/astronaut.png")).unwrap(),
        "photo",
    )
    .unwrap();
    let reference = scorer.reference(&photo, "astronaut.png").unwrap();
    assert!(reference.face.is_some() && !reference.regions.is_empty());
    let prompt = "a woman as an astronaut";
    let s = scorer
        .score(&reference, &photo, "same", Some(prompt))
        .unwrap();
    let (_, clip) = scorer.clip_model.as_ref().unwrap();
    let text = clip.text_embeds(&[prompt], &device).unwrap();
    let image = clip
        .image_embeds(std::slice::from_ref(&photo), &device)
        .unwrap();
    let want = consistentid_core::face::likeness::cosine(&text[0], &image[0]);
    assert!((s.clip_t.unwrap() - want).abs() < 1e-6, "{s:?} vs {want}");
    assert!((s.clip_i_clip.unwrap() - 1.0).abs() < 1e-5, "{s:?}");
    assert!((s.dino.unwrap() - 1.0).abs() < 1e-5, "{s:?}");
    assert!((s.facesim_facenet.unwrap() - 1.0).abs() < 1e-5, "{s:?}");
    assert!(
        s.face_detected && (s.facesim_arcface.unwrap() - 1.0).abs() < 1e-5,
        "{s:?}"
    );
    assert!(
        (s.clip_i - 1.0).abs() < 1e-5 && (s.fgis.unwrap() - 1.0).abs() < 1e-5,
        "{s:?}"
    );
    assert_eq!(s.fgis_regions.len(), reference.regions.len());
    assert!(s.regions_missing.is_empty());
}

/// FGIS of Grace Hopper against the astronaut equals its re-creation in Python from the
/// official parts (tests/scripts/gen_fgis.py): the same common regions, each cosine and the mean
/// within 1e-4.
#[test]
fn fgis_equals_its_python_re_creation() {
    let device = burn::tensor::Device::flex();
    let scorer = replica_scorer(&device);
    let want = json(&fixture("eval/fgis.json"));
    let photo = |rel: &str| decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap();
    let reference = scorer
        .reference(&photo("images/astronaut.png"), "astronaut.png")
        .unwrap();
    let s = scorer
        .score(&reference, &photo("images/grace_hopper.jpg"), "grace", None)
        .unwrap();
    let regions = want["regions"].as_object().unwrap();
    assert_eq!(s.fgis_regions.len(), regions.len(), "{s:?} vs {want}");
    for (word, got) in &s.fgis_regions {
        let expected = regions[word].as_f64().unwrap() as f32;
        assert!((got - expected).abs() < 1e-4, "{word}: {got} vs {expected}");
    }
    let missing: Vec<&str> = want["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(s.regions_missing, missing);
    let fgis = want["fgis"].as_f64().unwrap() as f32;
    assert!((s.fgis.unwrap() - fgis).abs() < 1e-4, "{s:?} vs {want}");
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_runs_scores_compares_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = model_folder(root);
    let refs = root.join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::copy(
        real_data("images/astronaut.png"),
        refs.join("astronaut.png"),
    )
    .unwrap();
    let prompts = root.join("prompts.csv");
    std::fs::write(&prompts, PROMPTS).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (m, r, p) = (s(&model), s(&refs), s(&prompts));
    // `eval score` of the copied images (root/elsewhere) with `extra` flags into `out`.
    let score = |extra: &[&str], out: &Path| {
        let mut args = vec!["score"];
        args.extend_from_slice(extra);
        let (images, out) = (s(&root.join("elsewhere")), s(out));
        args.extend([
            "--images",
            &images,
            "--refs",
            &r,
            "--prompts",
            &p,
            "--out",
            &out,
        ]);
        eval(&args)
    };
    let run_a = root.join("with-id");

    let (stdout, _) = eval(&run_args(&m, &r, &p, &s(&run_a), "1"));
    assert!(
        stdout.contains("facesim_arcface: ") && stdout.contains("report.html"),
        "{stdout}"
    );
    let summary = json(&run_a.join("summary.json"));
    assert_eq!(
        (summary["images"].as_u64(), summary["failed"].as_u64()),
        (Some(5), Some(1)),
        "{summary}"
    );
    for key in ["facesim_arcface", "clip_i", "generate_seconds"] {
        assert_eq!(summary["overall"][key]["n"], 4, "{key}: {summary}");
    }
    assert!(
        summary["by_category"]["accessory"].is_object()
            && summary["by_category"]["style"].is_object()
    );
    let rows = json(&run_a.join("rows.json"));
    let failed: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["error"].is_null())
        .collect();
    assert!(
        failed[0]["error"].as_str().unwrap().contains("missing.png"),
        "{failed:?}"
    );
    let csv = std::fs::read_to_string(run_a.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    let first = run_a.join("images/astronaut/000-2024.png");
    let made = std::fs::metadata(&first).unwrap().modified().unwrap();
    assert!(run_a.join("images/astronaut/001-2025.png").exists());

    // Again: nothing is generated twice.
    let (_, stderr) = eval(&run_args(&m, &r, &p, &s(&run_a), "1"));
    assert!(
        stderr.contains("1 rows to generate (2 done before)"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&first).unwrap().modified().unwrap(), made);

    // The same images without the manifest, as another method's outputs: the same scores.
    let elsewhere = root.join("elsewhere/astronaut");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for entry in std::fs::read_dir(run_a.join("images/astronaut")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, elsewhere.join(path.file_name().unwrap())).unwrap();
    }
    let scored = root.join("scored");
    score(&["--model", &m], &scored);
    let again = json(&scored.join("rows.json"));
    for row in again.as_array().unwrap() {
        let original = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["image"] == row["image"])
            .unwrap_or_else(|| panic!("{row}"));
        assert_eq!(row["scores"], original["scores"], "{}", row["image"]);
        assert_eq!(row["prompt"], original["prompt"]);
        assert_eq!(row["category"], original["category"]);
    }

    // CLIP-T and a second CLIP-I with a whole CLIP given apart, DINO, FaceNet.
    let clipped = root.join("clipped");
    std::fs::create_dir_all(root.join("facenet")).unwrap();
    let facenet = facenet_folder(&root.join("facenet"));
    let real_set = root.join("real");
    std::fs::create_dir_all(&real_set).unwrap();
    for rel in ["images/astronaut.png", "images/grace_hopper.jpg"] {
        let from = real_data(rel);
        std::fs::copy(&from, real_set.join(from.file_name().unwrap())).unwrap();
    }
    score(
        &[
            "--model",
            &m,
            "--clip",
            &s(&fixture("clip_model_tiny")),
            "--dino",
            &s(&fixture("vit_tiny")),
            "--fgis-encoder",
            "dino",
            "--facenet",
            &s(&facenet),
            "--fid",
            &s(&fixture("fid_tiny/inception.pt")),
            "--fid-real",
            &s(&real_set),
        ],
        &clipped,
    );
    let summary = json(&clipped.join("summary.json"));
    assert!(
        summary["overall"]["clip_t"]["n"].as_u64().unwrap() > 0
            && summary["overall"]["clip_i_clip"]["n"].as_u64().unwrap() > 0
            && summary["overall"]["dino"]["n"].as_u64().unwrap() > 0
            && summary["overall"]["facesim_facenet"]["n"].as_u64().unwrap() > 0,
        "{summary}"
    );
    // FID: the Fréchet distance of the FID network's features of the scored images and of the
    // real set.
    let fid = &summary["fid"];
    let device = burn::tensor::Device::flex();
    let net = consistentid_core::inception::FidInception::load(
        &std::fs::read(fixture("fid_tiny/inception.pt")).unwrap(),
        "inception.pt",
        &device,
    )
    .unwrap();
    let features = |dir: &Path| -> Vec<Vec<f32>> {
        let mut files: Vec<_> = walk(dir);
        files.sort();
        files
            .iter()
            .map(|p| {
                let img = decode(&std::fs::read(p).unwrap(), "img").unwrap();
                net.features(&[img]).unwrap().remove(0)
            })
            .collect()
    };
    use consistentid_eval::frechet::{Gaussian, frechet_distance};
    let (generated, real) = (features(&root.join("elsewhere")), features(&real_set));
    let want = frechet_distance(
        &Gaussian::fit(&generated).unwrap(),
        &Gaussian::fit(&real).unwrap(),
    )
    .unwrap();
    assert_eq!(
        fid["generated"].as_u64(),
        Some(generated.len() as u64),
        "{summary}"
    );
    assert_eq!(fid["real"].as_u64(), Some(real.len() as u64), "{summary}");
    assert!(
        (fid["value"].as_f64().unwrap() - want).abs() <= 1e-6 * want.abs().max(1.0),
        "{fid} vs {want}"
    );
    let report = std::fs::read_to_string(clipped.join("report.html")).unwrap();
    assert!(
        report.contains("data-metric=\"fid\""),
        "the report shows FID"
    );
    assert!(
        report.contains("CLIP-T")
            && report.contains("clip_model_tiny")
            && report.contains("vit_tiny"),
        "the report names the CLIP used"
    );
    assert!(
        report.contains("vit_tiny class token (--fgis-encoder)"),
        "the report names FGIS's region encoder"
    );
    // FGIS on DINO's regions is another number than on ViT-H's.
    let dino_rows = json(&clipped.join("rows.json"));
    let differs = dino_rows.as_array().unwrap().iter().any(|row| {
        let vit_h = again
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["image"] == row["image"])
            .unwrap();
        row["scores"]["fgis"].is_number() && row["scores"]["fgis"] != vit_h["scores"]["fgis"]
    });
    assert!(differs, "{dino_rows}");
    let refused = Command::new(binary())
        .args(["eval", "score", "--model", &m, "--fgis-encoder", "clip"])
        .args(["--images", &s(&root.join("elsewhere")), "--refs", &r])
        .args(["--out", &s(&root.join("refused"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--fgis-encoder clip needs --clip"),
        "{err}"
    );

    // An ablation (the identity never applied) beside it.
    let run_b = root.join("no-id");
    eval(&run_args(&m, &r, &p, &s(&run_b), "2"));
    let compare = root.join("compare.html");
    let (table, _) = eval(&["compare", &s(&run_a), &s(&run_b), "--out", &s(&compare)]);
    assert!(
        table.contains("with-id") && table.contains("no-id") && table.contains("FaceSim"),
        "{table}"
    );

    // A preset: one run per variant and their comparison.
    let preset = |name: &str, out: &Path| {
        eval(&[
            "run",
            "--model",
            &m,
            "--refs",
            &r,
            "--prompts",
            &p,
            "--seeds",
            "1",
            "--limit",
            "1",
            "--steps",
            "2",
            "--merge-step",
            "0",
            "--width",
            "32",
            "--height",
            "48",
            "--preset",
            name,
            "--out",
            &s(out),
        ])
        .0
    };
    let study = root.join("regions");
    let table = preset("regions", &study);
    for n in 0..=5 {
        assert!(table.contains(&format!("regions-{n}")), "{table}");
    }
    let png = std::fs::read(study.join("regions-0/images/astronaut/000-2024.png")).unwrap();
    assert!(String::from_utf8_lossy(&png).contains("Ablation: 0 facial regions"));
    assert!(study.join("compare.html").exists());
    // Without the facial caption: the prompt keeps no "Detail:" clause.
    let captionless = root.join("caption");
    let table = preset("facial-caption", &captionless);
    assert!(
        table.contains("no-facial-caption") && table.contains(" facial-caption"),
        "{table}"
    );
    let png =
        std::fs::read(captionless.join("no-facial-caption/images/astronaut/000-2024.png")).unwrap();
    let text = String::from_utf8_lossy(&png);
    assert!(text.contains("Ablation: no facial caption"), "{text}");
    let with =
        std::fs::read(captionless.join("facial-caption/images/astronaut/000-2024.png")).unwrap();
    assert_ne!(png, with, "the facial caption changes the portrait");

    // The reports in Chromium.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-report");
    let driver = Driver::start();
    let client = browser(&driver, &root.join("profile"), false).await;
    client
        .goto(&format!("file://{}", run_a.join("report.html").display()))
        .await
        .unwrap();
    let overall = client
        .find_all(Locator::Css("#overall tr[data-metric]"))
        .await
        .unwrap();
    assert!(overall.len() >= 3, "{} metric rows", overall.len());
    let hists = client
        .find_all(Locator::Css(".hist svg rect"))
        .await
        .unwrap();
    assert!(!hists.is_empty());
    // The thumbnails load lazily: bring them into view, then give them a moment.
    let mut thumbs = serde_json::Value::Null;
    for _ in 0..50 {
        thumbs = client
            .execute("document.querySelector('#grid').scrollIntoView(); return [...document.querySelectorAll('#grid img')].filter(i => i.complete && i.naturalWidth > 0).length", vec![])
            .await
            .unwrap();
        if thumbs.as_i64() == Some(4) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(thumbs.as_i64(), Some(4));
    shot(&client, &shots, "run").await;
    client
        .goto(&format!("file://{}", compare.display()))
        .await
        .unwrap();
    let heads = client.find_all(Locator::Css("#overall th")).await.unwrap();
    assert_eq!(heads.len(), 3);
    shot(&client, &shots, "compare").await;
    client.close().await.unwrap();
}
