//! Which burn device trains: the `flex` CPU backend always, a CUDA GPU when the crate is
//! built with the `cuda` feature (`cargo build --release --features cuda`; needs the NVIDIA
//! driver and NVRTC at run time, nothing at build time). Inference for export and
//! evaluation stays on the CPU, where results are reproducible bit for bit.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// What `--device` accepts, for help texts and errors.
pub const DEVICE_CHOICES: &str = "cpu, cuda, cuda:N";

/// Parses a `--device` value: `cpu`, or `cuda` / `cuda:N` in a `cuda` build.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.split_once(':').unwrap_or((spec.as_str(), "")) {
        ("cpu" | "flex", "") => Ok(Device::flex()),
        ("cuda", index) => {
            let index: usize = if index.is_empty() {
                0
            } else {
                index
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--device {spec}: '{index}' is not a GPU index"))?
            };
            cuda(index)
        }
        _ => bail!("--device {spec}: expected one of {DEVICE_CHOICES}"),
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(index: usize) -> Result<Device> {
    bail!(
        "--device cuda:{index}: this sleeve was built without GPU support; rebuild with \
         `cargo build --release -p sleeve-host --features cuda` (the NVIDIA driver is needed \
         at run time) or train with --device cpu"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_there_and_bad_specs_are_explained() {
        assert!(parse_device("cpu").is_ok());
        assert!(parse_device(" CPU ").is_ok());
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("expected one of"), "{err}");
        let err = parse_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a GPU index"), "{err}");
        #[cfg(not(feature = "cuda"))]
        {
            let err = parse_device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
