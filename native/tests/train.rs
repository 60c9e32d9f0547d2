//! `consistentid train` end to end on the tiny ConsistentID replica and a 2-record dataset in the
//! official JSON layout (tests/fixtures/training_sample's 40×40 photos and label maps): metrics,
//! checkpoints, the exported `ConsistentID-v1.bin` (loadable, and moved from the start), a
//! resumed run ending bit-identical to the uninterrupted one, and clear errors for bad records.
//! `consistentid dataset build` (the data training reads) is checked in `train_data.rs`.

mod common;

use std::path::Path;

use common::{consistentid_folder, fixture};

fn dataset(dir: &Path) -> std::path::PathBuf {
    let src = fixture("training_sample");
    for name in ["0.png", "0_mask.png", "2.png", "2_mask.png"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    let records = serde_json::json!([
        {"resize_IMG": "0.png", "parsing_mask_IMG": "0_mask.png",
         "vqa_llva": "A woman smiling. She stands outside.",
         "vqa_llva_more_face_detail": "The face is oval, the ears small, the eyes dark, the nose straight and the mouth wide."},
        {"resize_IMG": "2.png", "parsing_mask_IMG": "2_mask.png",
         "vqa_llva": "A child. At the beach.",
         "vqa_llva_more_face_detail": "The face is round, the nose small and the mouth open."}
    ]);
    let path = dir.join("data.json");
    std::fs::write(&path, records.to_string()).unwrap();
    path
}

/// The tiny ConsistentID folder, a temporary folder and the 2-record dataset in it.
fn setup() -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let model = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    (model, tmp, data)
}

fn train(
    model: &Path,
    data: &Path,
    out: &Path,
    steps: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = common::bin();
    cmd.args(["--device", "cpu", "train", "--model"])
        .arg(model)
        .arg("--dataset")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args([
            "--steps",
            steps,
            "--batch",
            "2",
            "--resolution",
            "40",
            "--save-every",
            "2",
        ])
        .args(["--seed", "7", "--loc-variant", "paper"])
        .args(extra);
    cmd.output().unwrap()
}

#[test]
fn trains_checkpoints_resumes_and_exports() {
    let (model, tmp, data) = setup();
    let whole = tmp.path().join("whole");
    let out = train(model.path(), &data, &whole, "4", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("step 4/4"), "{stderr}");
    let metrics = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics.lines().collect();
    assert_eq!(rows.len(), 5, "{metrics}");
    // (On a masked step the noise loss of these photos is 0: their person touches no border,
    // so the official WithoutBackground mask is empty.)
    for row in &rows[1..] {
        let total: f32 = row.split(',').nth(1).unwrap().parse().unwrap();
        assert!(total.is_finite(), "{row}");
    }
    assert_eq!(
        consistentid_train::checkpoint::steps(&whole.join("checkpoints")),
        vec![2, 4]
    );
    let exported = std::fs::read(whole.join("ConsistentID-v1.bin")).unwrap();
    let device = burn::tensor::Device::flex();
    let after =
        consistentid_core::consistentid::ConsistentIdModules::load(&exported, "out", &device)
            .unwrap();
    let before = consistentid_core::consistentid::ConsistentIdModules::load(
        &std::fs::read(model.path().join("ConsistentID-v1.bin")).unwrap(),
        "in",
        &device,
    )
    .unwrap();
    let moved = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(x, y)| x != y);
    let key = "adapter_modules.1.to_k_ip.weight";
    assert!(
        moved(
            &after.adapter_modules[key].data,
            &before.adapter_modules[key].data
        ),
        "training moved the adapters"
    );
    assert!(whole.join("ConsistentID-v1.safetensors").is_file());

    // Two steps, then two more from the checkpoint: the same weights as four in one go.
    let split = tmp.path().join("split");
    assert!(
        train(model.path(), &data, &split, "2", &[])
            .status
            .success()
    );
    let out = train(model.path(), &data, &split, "4", &["--resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming after step 2"), "{stderr}");
    assert_eq!(
        std::fs::read(split.join("ConsistentID-v1.bin")).unwrap(),
        exported,
        "the resumed run differs from the uninterrupted one"
    );
    let metrics = std::fs::read_to_string(split.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "{metrics}");

    // Gradient checkpointing recomputes instead of keeping: the same numbers.
    let recomputed = tmp.path().join("recomputed");
    let out = train(
        model.path(),
        &data,
        &recomputed,
        "4",
        &["--gradient-checkpointing"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(recomputed.join("ConsistentID-v1.bin")).unwrap(),
        exported,
        "gradient checkpointing changed the result"
    );

    // From scratch: fresh weights (LoRA up starts at 0, one step moves it a little).
    let scratch = tmp.path().join("scratch");
    let out = train(model.path(), &data, &scratch, "1", &["--from-scratch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("starting from fresh weights"), "{stderr}");
    let fresh = consistentid_core::consistentid::ConsistentIdModules::load(
        &std::fs::read(scratch.join("ConsistentID-v1.bin")).unwrap(),
        "scratch",
        &device,
    )
    .unwrap();
    let up = &fresh.adapter_modules["adapter_modules.1.to_q_lora.up.weight"].data;
    assert!(
        up.iter().all(|v| v.abs() <= 1.5e-4),
        "one AdamW step of lr 1e-4 from 0"
    );
    assert!(moved(
        &fresh.adapter_modules["adapter_modules.1.to_q_lora.down.weight"].data,
        &before.adapter_modules["adapter_modules.1.to_q_lora.down.weight"].data
    ));
}

#[test]
fn bad_records_are_named() {
    let (model, tmp, data) = setup();
    // A label map without background.
    image::GrayImage::from_pixel(40, 40, image::Luma([1]))
        .save(tmp.path().join("0_mask.png"))
        .unwrap();
    // Named once and skipped: the other record takes its place.
    let out = train(model.path(), &data, &tmp.path().join("run"), "2", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("skipped 0.png: the label map has no background")
            .count(),
        1,
        "{stderr}"
    );
    let out = train(
        model.path(),
        &data,
        &tmp.path().join("strict"),
        "1",
        &["--strict"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("0.png") && stderr.contains("no background"),
        "{stderr}"
    );
    let out = train(
        model.path(),
        &tmp.path().join("missing.json"),
        &tmp.path().join("run"),
        "1",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

/// The official recipe (the default) keeps ProjPlus in bf16 values through its steps; `--precision
/// f32` keeps f32 master weights, so its steps land between bf16 values.
#[test]
fn precision_bf16_keeps_projplus_in_bf16_and_f32_does_not() {
    let (model, tmp, data) = setup();
    let projplus_off_bf16 = |precision: &str| {
        let run = tmp.path().join(precision);
        let out = train(model.path(), &data, &run, "2", &["--precision", precision]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = consistentid_train::checkpoint::folder(&run.join("checkpoints"), 2);
        let bytes = std::fs::read(dir.join("trained.safetensors")).unwrap();
        let file = consistentid_core::tensor_io::TensorFile::parse("trained", &bytes).unwrap();
        let names: Vec<String> = file
            .names()
            .into_iter()
            .filter(|n| n.starts_with("image_proj."))
            .collect();
        assert!(!names.is_empty(), "{:?}", file.names());
        names
            .iter()
            .flat_map(|n| file.f32(n).unwrap().0)
            .filter(|&v| half::bf16::from_f32(v).to_f32() != v)
            .count()
    };
    assert_eq!(projplus_off_bf16("bf16"), 0);
    assert!(projplus_off_bf16("f32") > 0);
    let out = train(
        model.path(),
        &data,
        &tmp.path().join("x"),
        "1",
        &["--precision", "f16"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown precision"
    );
}

#[test]
fn accumulated_micro_batches_resume_exactly_and_plot_the_losses() {
    let (model, tmp, data) = setup();
    let accum = ["--grad-accum", "2"];
    let whole = tmp.path().join("whole");
    let out = train(model.path(), &data, &whole, "2", &accum);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("batch 2 × 2 micro-batches"), "{stderr}");
    let metrics = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "one row a step: {metrics}");
    let page = std::fs::read_to_string(whole.join("loss.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 2, "{page}");
    assert!(page.contains("step 2: total"), "{page}");
    // Micro-batches are drawn from the seed and their number: a resumed run is the same.
    let split = tmp.path().join("split");
    let mut extra = accum.to_vec();
    assert!(
        train(model.path(), &data, &split, "1", &extra)
            .status
            .success()
    );
    extra.push("--resume");
    let out = train(model.path(), &data, &split, "2", &extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(split.join("ConsistentID-v1.bin")).unwrap(),
        std::fs::read(whole.join("ConsistentID-v1.bin")).unwrap(),
        "an accumulated run resumed differs from the uninterrupted one"
    );
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_resume_goes_on() {
    use std::io::BufRead;
    let (model, tmp, data) = setup();
    let run = tmp.path().join("run");
    let mut child = common::bin()
        .args(["--device", "cpu", "train", "--model"])
        .arg(model.path())
        .arg("--dataset")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .args(["--steps", "500", "--batch", "2", "--resolution", "40"])
        .args(["--save-every", "1000", "--seed", "7"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("step 2/500") {
            break;
        }
    }
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    let steps = consistentid_train::checkpoint::steps(&run.join("checkpoints"));
    assert_eq!(steps.len(), 1, "{log}");
    let at = steps[0];
    assert!(
        log.contains(&format!("interrupted: checkpoint of step {at} written")),
        "{log}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count() as u64, at + 1, "{metrics}");
    let next = (at + 1).to_string();
    let out = train(model.path(), &data, &run, &next, &["--resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming after step {at}")),
        "{stderr}"
    );
}

#[test]
fn samples_are_drawn_with_the_runs_weights() {
    let (model, tmp, data) = setup();
    let face = common::real_data("images/astronaut.png");
    let run = tmp.path().join("run");
    let out = train(
        model.path(),
        &data,
        &run,
        "2",
        &[
            "--sample-every",
            "2",
            "--sample-face",
            face.to_str().unwrap(),
            "--sample-steps",
            "5",
            "--sample-prompt",
            "a woman as an astronaut",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let pngs = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        v.sort();
        v
    };
    let before = pngs(&run.join("samples/step-0"));
    let after = pngs(&run.join("samples/step-2"));
    assert_eq!(before.len(), 2, "{stderr}");
    assert_eq!(after.len(), 2, "{stderr}");
    let ((w, h), parameters) = common::png_parameters(&after[0]);
    assert_eq!((w, h), (40, 40));
    assert!(
        parameters.contains("a woman as an astronaut"),
        "{parameters}"
    );

    // The step-0 samples are `generate` with the starting weights, the last ones `generate`
    // with the exported ConsistentID-v1.bin: the sampler swaps weights as a fresh load does.
    let zeros = tmp.path().join("zeros.safetensors");
    let tensor = consistentid_core::tensor_io::NamedTensor::from_f32(
        "id_embedding",
        vec![1, 512],
        &[0.0; 512],
    );
    std::fs::write(
        &zeros,
        consistentid_core::tensor_io::to_safetensors(&[tensor], None).unwrap(),
    )
    .unwrap();
    let exported = common::copy_fixture("sd_tiny");
    common::copy_dir(model.path(), exported.path());
    std::fs::copy(
        run.join("ConsistentID-v1.bin"),
        exported.path().join("ConsistentID-v1.bin"),
    )
    .unwrap();
    for (folder, samples, name) in [
        (model.path(), &before, "start"),
        (exported.path(), &after, "end"),
    ] {
        let dir = tmp.path().join(name);
        let out = common::bin()
            .args(["--device", "cpu", "generate", "--model"])
            .arg(folder)
            .arg("--face")
            .arg(&face)
            .arg("--id-embedding")
            .arg(&zeros)
            .args(["--prompt", "a woman as an astronaut", "--steps", "5"])
            .args(["--merge-step", "3", "--guidance", "5", "--seed", "0"])
            .args(["--num-images", "2", "--width", "40", "--height", "40"])
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let made = pngs(&dir);
        assert_eq!(made.len(), 2);
        for (a, b) in made.iter().zip(samples.iter()) {
            assert_eq!(
                common::png_pixels(a),
                common::png_pixels(b),
                "{name}: {} vs {}",
                a.display(),
                b.display()
            );
        }
    }
    assert_ne!(
        common::png_pixels(&before[0]),
        common::png_pixels(&after[0]),
        "two steps changed the samples"
    );
}

/// An exported checkpoint (tests/fixtures/train_export/ConsistentID-v1.bin, written by `consistentid
/// train --from-scratch`, see tests/scripts/gen_trained_pipeline.py) loads strictly into the
/// reference pipeline's modules and gives there the image our pipeline gives with it.
#[test]
fn an_exported_checkpoint_draws_the_reference_pipelines_image() {
    let dir = consistentid_folder();
    std::fs::copy(
        fixture("train_export/ConsistentID-v1.bin"),
        dir.path().join("ConsistentID-v1.bin"),
    )
    .unwrap();
    let (got, stderr) = common::replica_image_in(dir.path(), "cpu", "f32");
    let read = |name: &str| {
        let bytes = std::fs::read(fixture(name)).unwrap();
        consistentid_core::tensor_io::TensorFile::parse(name, &bytes)
            .unwrap()
            .f32("image")
            .unwrap()
            .0
    };
    let want = read("train_export/expected.safetensors");
    let err = common::rel_err(&got, &want);
    assert!(err < 1e-3, "relative error {err}\n{stderr}");
    let untrained = read("consistentid_pipeline/expected.safetensors");
    assert!(
        common::max_abs(&want, &untrained) > 0.1,
        "the trained weights change the image"
    );
}
