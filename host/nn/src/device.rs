//! Which burn device trains: the `flex` CPU backend always; a GPU in a build with the
//! `wgpu` feature (Vulkan/Metal through wgpu) or the `cuda` feature (NVIDIA; its cubecl
//! build fetches an LLVM bundle, so it needs network access when built). Inference for
//! export and evaluation stays on the CPU, where results are reproducible bit for bit.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// What `--device` accepts, for help texts and errors.
pub const DEVICE_CHOICES: &str = "cpu, wgpu, wgpu:N, cuda, cuda:N";

/// Parses a `--device` value: `cpu`; `wgpu` (the default adapter) or `wgpu:N` (discrete
/// GPU N) in a `wgpu` build; `cuda` / `cuda:N` in a `cuda` build.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.split_once(':').unwrap_or((spec.as_str(), "")) {
        ("cpu" | "flex", "") => Ok(Device::flex()),
        ("cuda", index) => cuda(gpu_index(&spec, index)?.unwrap_or(0)),
        ("wgpu", index) => wgpu(gpu_index(&spec, index)?),
        _ => bail!("--device {spec}: expected one of {DEVICE_CHOICES}"),
    }
}

/// The `N` of `kind:N`, if given.
fn gpu_index(spec: &str, index: &str) -> Result<Option<usize>> {
    if index.is_empty() {
        return Ok(None);
    }
    let n = index
        .parse()
        .map_err(|_| anyhow::anyhow!("--device {spec}: '{index}' is not a GPU index"))?;
    Ok(Some(n))
}

/// Why a GPU device cannot be used in this build.
fn not_built(spec: &str, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--device {spec}: this sleeve was built without GPU support; rebuild with \
         `cargo build --release -p sleeve-host --features {feature}` or train with --device cpu"
    )
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        Some(n) => DeviceKind::DiscreteGpu(n),
        None => DeviceKind::DefaultDevice,
    }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(index: Option<usize>) -> Result<Device> {
    let spec = index.map_or("wgpu".to_string(), |n| format!("wgpu:{n}"));
    Err(not_built(&spec, "wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(index: usize) -> Result<Device> {
    Err(not_built(&format!("cuda:{index}"), "cuda"))
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
        #[cfg(not(feature = "wgpu"))]
        {
            let err = parse_device("wgpu").unwrap_err().to_string();
            assert!(err.contains("--features wgpu"), "{err}");
        }
    }
}
