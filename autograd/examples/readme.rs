use autograd::{DType, Tensor};

fn main() {
    // Two leaf variables and a constant input.
    let w = Tensor::from_vec(vec![0.1f32, -0.2, 0.05], &[3, 1]).requires_grad();
    let b = Tensor::from_vec(vec![0.1f32], &[1]).requires_grad();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    // Forward: a tiny linear layer with tanh, reduced to a scalar loss.
    let loss = (&x.matmul(&w) + &b).tanh().square().mean();
    // Backward: gradients of every variable the loss depends on.
    let grads = loss.backward();
    println!("loss = {}", loss.item());
    println!("dL/dw = {:?}", grads.get(&w).unwrap().to_vec::<f32>());
    println!("dL/db = {:?}", grads.get(&b).unwrap().to_vec::<f32>());
    let _ = DType::F64; // f64 exists for exact gradient checks
}
