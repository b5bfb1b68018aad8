//! A generic single-assignment executor: runs steps in order, keeps each tensor until its last
//! use, and reports every step's output to an observer. Generic over the tensor type, so the
//! secure drivers' shares stay [`crate::tensor::SecretTensor`]s (erased as each is dropped).

use crate::arch::TensorId;

/// Something with inputs and one output, executed in order.
pub(crate) trait Node {
    fn inputs(&self) -> &[TensorId];
    fn output(&self) -> TensorId;
}

/// Runs `nodes` from `input` (tensor 0 of `n_tensors`) and returns `output`'s tensor; `apply`
/// computes node `i`'s output from its inputs, `observe` sees it.
pub(crate) fn execute<X, N: Node, E>(
    nodes: &[N],
    n_tensors: usize,
    input: X,
    output: TensorId,
    mut apply: impl FnMut(usize, &N, &[&X]) -> Result<X, E>,
    mut observe: impl FnMut(&N, &X),
) -> Result<X, E> {
    let mut last_use = vec![0usize; n_tensors];
    for (i, n) in nodes.iter().enumerate() {
        for t in n.inputs() {
            last_use[t.0] = i;
        }
    }
    last_use[output.0] = usize::MAX;
    let mut slots: Vec<Option<X>> = (0..n_tensors).map(|_| None).collect();
    slots[0] = Some(input);
    for (i, n) in nodes.iter().enumerate() {
        let out = {
            let args: Vec<&X> = n
                .inputs()
                .iter()
                .map(|t| slots[t.0].as_ref().expect("graph is in topological order"))
                .collect();
            apply(i, n, &args)?
        };
        observe(n, &out);
        slots[n.output().0] = Some(out);
        for t in n.inputs() {
            if last_use[t.0] == i {
                slots[t.0] = None;
            }
        }
    }
    Ok(slots[output.0]
        .take()
        .expect("the output is written by the last step"))
}
