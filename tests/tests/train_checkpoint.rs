//! Checkpoints: a run resumed from a mid-run checkpoint ends bit-identical to the uninterrupted
//! run (parameters and optimizer moments restored with their ids), and a checkpoint write cut
//! short (a leftover partial folder) leaves the previous checkpoint the latest and loadable.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use consistentid_core::scheduler::{ForwardProcess, SchedulerConfig};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::attention::AttentionProbe;
use consistentid_tests::fixture;
use consistentid_tests::train::{inputs, network};
use consistentid_train::checkpoint;
use consistentid_train::localization::{LocVariant, hooked};
use consistentid_train::network::{Network, TrainAdapter};
use consistentid_train::optimizer::{LEARNING_RATE, adamw};
use consistentid_train::step;

struct Run {
    device: Device,
    process: ForwardProcess,
    bytes: Vec<u8>,
}

impl Run {
    fn new() -> Self {
        let dir = fixture("train_step");
        let config = std::fs::read_to_string(dir.join("scheduler/scheduler_config.json")).unwrap();
        Self {
            device: Device::flex().autodiff(),
            process: ForwardProcess::new(
                &SchedulerConfig::from_json("scheduler", &config).unwrap(),
            )
            .unwrap(),
            bytes: std::fs::read(dir.join("official.safetensors")).unwrap(),
        }
    }

    fn fresh(&self) -> (Network, ModuleOptimizer, AttentionProbe) {
        let mut net = network(&self.device, false, TrainAdapter::All);
        let probe = AttentionProbe::default();
        net.unet
            .attach_probe(&probe, |p| hooked(p, LocVariant::Code, 5));
        (net, adamw().init(), probe)
    }

    /// Steps `range` of the fixture's batches.
    fn steps(
        &self,
        range: std::ops::Range<usize>,
        mut net: Network,
        mut optim: ModuleOptimizer,
        probe: &AttentionProbe,
    ) -> (Network, ModuleOptimizer) {
        let file = TensorFile::parse("official", &self.bytes).unwrap();
        for s in range {
            let batch = inputs(&file, s, true, &self.device);
            let out = step::forward(&net, &self.process, probe, &batch, 0.01).unwrap();
            let grads = GradientsParams::from_grads(out.total.backward(), &net);
            net = optim.step(LEARNING_RATE, net, grads);
        }
        (net, optim)
    }
}

#[test]
fn a_resumed_run_ends_bit_identical_and_a_cut_write_keeps_the_last_checkpoint() {
    let run = Run::new();
    let (net, optim, probe) = run.fresh();
    let (whole, _) = run.steps(0..3, net, optim, &probe);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoints");
    let (net, optim, probe) = run.fresh();
    let (net, optim) = run.steps(0..1, net, optim, &probe);
    checkpoint::save(&dir, 1, &net, &optim, 2).unwrap();
    // A later write killed halfway: its partial folder is never taken for a checkpoint.
    let partial = dir.join(".step-00000002.partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("trained.safetensors"), b"cut sho").unwrap();
    drop((net, optim));

    let (step, path) = checkpoint::latest(&dir).unwrap();
    assert_eq!(step, 1);
    let (net, optim, probe) = run.fresh();
    let (step, net, optim) = checkpoint::load(&path, net, optim).unwrap();
    assert_eq!(step, 1);
    let (resumed, _) = run.steps(1..3, net, optim, &probe);

    let a = whole.release_parameters();
    let b = resumed.release_parameters();
    assert_eq!(a.len(), b.len());
    for ((ka, ta), (kb, tb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(
            ta.data == tb.data,
            "{ka}: the resumed run differs from the uninterrupted one"
        );
    }

    // A checkpoint of another network is refused, naming what does not fit.
    let (mut other, optim, _) = run.fresh();
    other.unet = network(&run.device, false, TrainAdapter::None).unet;
    let err = checkpoint::load(&path, other, optim)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not fit"), "{err}");
}
