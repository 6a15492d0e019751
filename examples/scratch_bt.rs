use tnet::matrices::*;
use tnet::Truncation;
fn main() {
    let shape = MatrixShape::try_new(vec![3, 4, 2], vec![4, 3, 5]).unwrap();
    let seed: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let bt = BtMatrix::<f64>::random(&shape, &2, 2, Init::He, seed).unwrap();
    let w = bt.to_dense();
    let (_, info) = BtMatrix::from_dense(
        w.view(),
        &shape,
        &2,
        &Truncation::rank(2).with_rel_eps(1e-11),
    )
    .unwrap();
    println!("final {:e}", info.rel_error_bound());
}
