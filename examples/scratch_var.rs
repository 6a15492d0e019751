use tnet::matrices::*;
use tnet::DimTree;
fn main() {
    let shape = MatrixShape::try_new(vec![6, 5, 4], vec![5, 6, 7]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    let init = Init::Glorot;
    let target = init.variance(shape.n_in(), shape.n_out()).unwrap();
    for kind in 0..6 {
        let mut rs = vec![];
        for s in 0..64u64 {
            let w: Box<dyn TensorizedMatrix<f64>> = match kind {
                0 => Box::new(DenseMatrix::<f64>::random(&shape, &(), 1, init, s).unwrap()),
                1 => Box::new(HtMatrix::random(&shape, &tree, 4, init, s).unwrap()),
                2 => Box::new(TtMatrix::random(&shape, &(), 4, init, s).unwrap()),
                3 => Box::new(TrMatrix::random(&shape, &TrLayout::Paired, 4, init, s).unwrap()),
                4 => Box::new(TrMatrix::random(&shape, &TrLayout::Split, 4, init, s).unwrap()),
                _ => Box::new(BtMatrix::random(&shape, &2, 3, init, s).unwrap()),
            };
            let d = w.to_dense();
            rs.push(d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64 / target);
        }
        let m = rs.iter().sum::<f64>() / 64.0;
        let sd = (rs.iter().map(|r| (r - m).powi(2)).sum::<f64>() / 63.0).sqrt();
        let m8: Vec<f64> = rs.chunks(8).map(|c| c.iter().sum::<f64>() / 8.0).collect();
        println!(
            "kind {kind}: mean ratio {m:.3} sd {sd:.3}  means of 8: {:?}",
            m8.iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
}
