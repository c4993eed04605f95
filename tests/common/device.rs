//! The device a parity test runs its networks on: the CPU, or the GPU named by
//! `WHICHGAN_TEST_DEVICE=cuda:N` (a test binary built with `--features cuda`).

use candle_core::Device;

pub fn test_device() -> Device {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::WithinOperations);
    match std::env::var("WHICHGAN_TEST_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => Device::Cpu,
        Ok(name) => {
            let ordinal = name.strip_prefix("cuda:").unwrap_or("0");
            let ordinal = ordinal
                .parse()
                .expect("WHICHGAN_TEST_DEVICE: cpu or cuda:N");
            Device::new_cuda(ordinal).expect("WHICHGAN_TEST_DEVICE names a usable GPU")
        }
    }
}
