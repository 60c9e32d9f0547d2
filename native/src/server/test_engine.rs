//! A stand-in for the models (`--features test-engine`, then `CONSISTENTID_TEST_ENGINE=
//! steps:20,step_ms:5`): it loads nothing, and for each job emits what the engine emits (the
//! phases, every step, cancel checks between steps, `num_outputs` small images coloured by
//! their seed), so that the host's queue, leases and streams can be tested with a thousand
//! jobs and several workers in seconds. Never built into a release.

use std::time::Duration;

use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::{FaceJob, GeneratedImage, Phase, Sink};
use consistentid_core::{Error, Result};

/// The variable that turns it on.
pub const VARIABLE: &str = "CONSISTENTID_TEST_ENGINE";

/// What each job does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Steps per image (the request's own step count is ignored).
    pub steps: usize,
    /// Time per step.
    pub step: Duration,
}

impl Script {
    /// `steps:N,step_ms:M` (either may be left out: 4 steps of 10 ms).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut script = Script {
            steps: 4,
            step: Duration::from_millis(10),
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once(':')
                .ok_or_else(|| format!("{VARIABLE}: `{pair}` is not key:value"))?;
            let n: u64 = value
                .parse()
                .map_err(|_| format!("{VARIABLE}: `{value}` is not a whole number"))?;
            match key {
                "steps" if n > 0 => script.steps = n as usize,
                "step_ms" => script.step = Duration::from_millis(n),
                _ => return Err(format!("{VARIABLE}: `{pair}` (keys: steps>0, step_ms)")),
            }
        }
        Ok(script)
    }

    /// The script from the environment, when set.
    pub fn from_env() -> Option<std::result::Result<Self, String>> {
        std::env::var(VARIABLE).ok().map(|text| Self::parse(&text))
    }

    /// Runs a job as the engine would, without models.
    pub fn run(&self, job: &FaceJob, sink: &mut dyn Sink) -> Result<Vec<GeneratedImage>> {
        for phase in [Phase::Analyse, Phase::Parse, Phase::Encode] {
            sink.phase_started(phase, None);
            sink.phase_finished(phase, None);
        }
        let request = &job.request;
        let seed = request.seed.unwrap_or(0);
        let mut images = Vec::new();
        for index in 0..request.num_outputs {
            sink.phase_started(Phase::Denoise, Some(index));
            for step in 1..=self.steps {
                if sink.cancelled() {
                    return Err(Error::Canceled);
                }
                std::thread::sleep(self.step);
                sink.step(index, step, self.steps);
            }
            sink.phase_finished(Phase::Denoise, Some(index));
            let image_seed = seed.wrapping_add(index as u64);
            let mut image = RgbImage::new(8, 8);
            let shade = image_seed.to_le_bytes();
            for pixel in image.data.chunks_mut(3) {
                pixel.copy_from_slice(&shade[..3]);
            }
            let made = GeneratedImage {
                index,
                seed: image_seed,
                image,
                parameters: format!(
                    "{}\nSteps: {}, Seed: {image_seed}, Model: test-engine",
                    request.prompt, self.steps
                ),
                likeness: None,
            };
            sink.image(&made)?;
            images.push(made);
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_and_bad_ones_say_why() {
        assert_eq!(
            Script::parse("steps:20,step_ms:5").unwrap(),
            Script {
                steps: 20,
                step: Duration::from_millis(5)
            }
        );
        assert_eq!(Script::parse("").unwrap().steps, 4);
        assert!(Script::parse("steps:0").unwrap_err().contains("steps>0"));
        assert!(Script::parse("fast").unwrap_err().contains("key:value"));
        assert!(
            Script::parse("steps:x")
                .unwrap_err()
                .contains("whole number")
        );
    }
}
