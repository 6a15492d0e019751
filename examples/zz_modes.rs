use tnet::matrices::{HtMatrix, Init, MatrixFormat, MatrixShape, TensorizedMatrix};
type F = f32;
fn main() {
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![16, 4, 4, 4], vec![22, 20, 12, 11]),
        (vec![4, 4, 4, 4, 4], vec![11, 12, 8, 5, 11]),
        (vec![4, 4, 4, 4, 4], vec![10, 11, 12, 4, 11]),
        (vec![8, 8, 4, 4], vec![22, 20, 12, 11]),
        (vec![4, 4, 8, 8], vec![22, 20, 12, 11]),
        (vec![4, 4, 4, 4, 2, 2], vec![6, 8, 10, 11, 11, 2]),
        (vec![16, 4, 4, 4], vec![11, 12, 20, 22]),
    ];
    for (o, i) in cases {
        let shape = MatrixShape::try_new(o.clone(), i.clone()).unwrap();
        let d = o.len();
        let tree = tnet::DimTree::balanced(d).unwrap();
        for r in [4usize, 6, 8] {
            let w = HtMatrix::<F>::random(&shape, &tree, r, Init::Glorot, 0).unwrap();
            println!(
                "{o:?} <- {i:?} r{r}: params {} fwd MFLOP {:.0}",
                w.n_params(),
                w.flops(96) as f64 / 1e6
            );
        }
    }
}
