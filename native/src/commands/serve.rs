//! `consistentid serve`: the host (API, event stream, persistence, share links, the web app).
//! The host itself lives in `crate::server`.

pub use crate::server::ServeArgs;

use crate::device::{DeviceChoice, DtypeChoice};

pub fn run(args: ServeArgs, device: DeviceChoice, dtype: DtypeChoice) -> anyhow::Result<()> {
    crate::server::run(args, device, dtype)
}
