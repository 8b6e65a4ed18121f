//! The device child networks train on when the caller does not name one.
//!
//! The CLI's `--device cuda` sets it once at startup ([`set_training_device`]), so that
//! every child trained by a search, an evaluator or `nao cifar` runs there without a device
//! argument threaded through every configuration; library code that wants a particular
//! device calls [`super::cnn_trainer::train_cnn_on`] instead. The default is the CPU.

use autograd::Device;
use std::sync::RwLock;

static DEVICE: RwLock<Option<Device>> = RwLock::new(None);

/// Sets the device [`super::cnn_trainer::train_cnn`] trains on (for the whole process).
pub fn set_training_device(device: Device) {
    *DEVICE.write().expect("device lock poisoned") = Some(device);
}

/// The device [`super::cnn_trainer::train_cnn`] trains on: the CPU unless
/// [`set_training_device`] named another.
pub fn training_device() -> Device {
    DEVICE
        .read()
        .expect("device lock poisoned")
        .clone()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_to_the_cpu() {
        assert_eq!(super::training_device(), autograd::Device::Cpu);
    }
}
