//! Copying networks' tensors: into checkpoints, out of them, and into the generator's moving
//! average, pairing tensors by their state-dict names.

use super::{Checkpoint, GeneratorModel, Network};
use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::HashMap;

/// Copies `net`'s parameters and buffers into `tensors` under `prefix`.
pub(super) fn insert_network(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    net: &impl Network,
) -> Result<()> {
    for (name, var) in net.parameters() {
        tensors.insert(format!("{prefix}.{name}"), var.as_tensor().copy()?);
    }
    for (name, t) in net.buffers() {
        tensors.insert(format!("{prefix}.{name}"), t.copy()?);
    }
    Ok(())
}

/// Copies the tensors under `prefix` in `ckpt` into `net` (parameters and buffers); shapes must
/// match.
pub fn restore_network(net: &mut impl Network, ckpt: &Checkpoint, prefix: &str) -> Result<()> {
    for (name, var) in net.parameters() {
        let t = ckpt.tensor(&format!("{prefix}.{name}"))?;
        check_shape(&t, var.as_tensor(), prefix, &name)?;
        // Checkpoints load on the CPU; candle copies between tensors of one device only.
        var.set(
            &t.to_dtype(var.as_tensor().dtype())?
                .to_device(var.device())?,
        )?;
    }
    for (name, old) in net.buffers() {
        let t = ckpt.tensor(&format!("{prefix}.{name}"))?;
        check_shape(&t, &old, prefix, &name)?;
        net.set_buffer(&name, t.to_dtype(old.dtype())?.to_device(old.device())?)?;
    }
    Ok(())
}

fn check_shape(found: &Tensor, expected: &Tensor, prefix: &str, name: &str) -> Result<()> {
    if found.dims() != expected.dims() {
        return Err(Error::invalid(format!(
            "tensor '{prefix}.{name}' has shape {:?} in the checkpoint, the model needs {:?}",
            found.dims(),
            expected.dims()
        )));
    }
    Ok(())
}

/// avg ← β·avg + (1 − β)·net for parameters; buffers are blended too or copied, as the
/// generator asks ([`GeneratorModel::averages_buffers`]). Tensors pair by name.
pub(super) fn blend<G: GeneratorModel>(avg: &mut G, net: &G, beta: f64) -> Result<()> {
    let (params, incoming) = (avg.parameters(), net.parameters());
    check_same_names(
        params.iter().map(|(n, _)| n),
        incoming.iter().map(|(n, _)| n),
    )?;
    for ((_, a), (_, n)) in params.iter().zip(incoming) {
        a.set(&mix(a.as_tensor(), n.as_tensor(), beta)?)?;
    }
    let (buffers, incoming) = (avg.buffers(), net.buffers());
    check_same_names(
        buffers.iter().map(|(n, _)| n),
        incoming.iter().map(|(n, _)| n),
    )?;
    for ((name, a), (_, n)) in buffers.into_iter().zip(incoming) {
        let value = if net.averages_buffers() {
            mix(&a, &n, beta)?
        } else {
            n.copy()?
        };
        avg.set_buffer(&name, value)?;
    }
    Ok(())
}

/// The moving average and the generator list the same tensors in the same order.
fn check_same_names<'a>(
    avg: impl ExactSizeIterator<Item = &'a String>,
    net: impl ExactSizeIterator<Item = &'a String>,
) -> Result<()> {
    if avg.len() != net.len() {
        return Err(Error::invalid(format!(
            "the generator average has {} tensors, the generator {}",
            avg.len(),
            net.len()
        )));
    }
    match avg.zip(net).find(|(a, n)| a != n) {
        Some((a, n)) => Err(Error::invalid(format!(
            "the generator average's tensor '{a}' pairs with the generator's '{n}'"
        ))),
        None => Ok(()),
    }
}

/// β·a + (1 − β)·b; small f32 CPU tensors in one loop rather than three tensor operations.
fn mix(a: &Tensor, b: &Tensor, beta: f64) -> Result<Tensor> {
    if crate::backend::cpu_kernels(a) {
        let (x, y) = (
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?,
        );
        let (keep, take) = (beta as f32, (1.0 - beta) as f32);
        let mixed: Vec<f32> = x.iter().zip(&y).map(|(u, v)| keep * u + take * v).collect();
        return Ok(Tensor::from_vec(mixed, a.shape(), a.device())?);
    }
    Ok(((a * beta)? + (b * (1.0 - beta))?)?)
}
