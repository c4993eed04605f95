//! `--device cpu|cuda:N`, shared by the commands that run networks.

use candle_core::Device;
use whichgan::{Error, Result};

/// The device named on the command line.
pub fn parse_device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(ordinal) = name.strip_prefix("cuda") else {
        return Err(Error::invalid(format!(
            "--device '{name}': expected cpu or cuda:N"
        )));
    };
    let ordinal = match ordinal.strip_prefix(':') {
        None if ordinal.is_empty() => 0,
        Some(n) => n.parse::<usize>().map_err(|_| {
            Error::invalid(format!(
                "--device '{name}': expected cuda:N with N a GPU number"
            ))
        })?,
        None => {
            return Err(Error::invalid(format!(
                "--device '{name}': expected cpu or cuda:N"
            )))
        }
    };
    cuda_device(name, ordinal)
}

#[cfg(feature = "cuda")]
fn cuda_device(name: &str, ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| {
        // candle may append a backtrace; the first line says what failed.
        let reason = e.to_string();
        let reason = reason.lines().next().unwrap_or_default().to_owned();
        Error::invalid(format!("--device {name}: no usable CUDA device ({reason})"))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(name: &str, _ordinal: usize) -> Result<Device> {
    Err(Error::invalid(format!(
        "--device {name}: this binary was built without CUDA (build with --features cuda)"
    )))
}
