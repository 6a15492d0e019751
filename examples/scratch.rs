use std::time::Instant;
fn main() {
    let shape = vec![8usize; 8];
    let x = tnet::dense::random_normal::<f64>(&shape, 1);
    for k in [0usize, 3, 7] {
        let t = Instant::now();
        let s = tnet::linalg::unfolding_left_svd(
            x.view(),
            &[k],
            tnet::linalg::MatrixTruncation::exact(),
        )
        .unwrap();
        let t1 = t.elapsed();
        let t = Instant::now();
        let y = tnet::dense::mode_product(x.view(), s.u.t(), k).unwrap();
        println!(
            "mode {k}: svd {:?} project {:?} {}",
            t1,
            t.elapsed(),
            y.len()
        );
    }
    let tree = tnet::DimTree::balanced(8).unwrap();
    let t = Instant::now();
    let _ = tnet::HtTensor::from_dense(x.view(), &tree, &tnet::Truncation::rank(8)).unwrap();
    println!("total {:?}", t.elapsed());
}
