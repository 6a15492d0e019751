use tnet::matrices::*;
use tnet::DimTree;
fn check<M: TensorizedMatrix<f64>>(name: &str, w: &M) {
    let x: ndarray::Array2<f64> = tnet::dense::random_normal::<f64>(&[7, w.n_in()], 1)
        .into_dimensionality()
        .unwrap();
    let y = w.apply(x.view()).unwrap();
    let wd = w.to_dense();
    let r = x.dot(&wd.t());
    let e = (&y - &r).iter().map(|v| v * v).sum::<f64>().sqrt()
        / r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let dy: ndarray::Array2<f64> = tnet::dense::random_normal::<f64>(&[7, w.n_out()], 2)
        .into_dimensionality()
        .unwrap();
    let dx = w.apply_transpose(dy.view()).unwrap();
    let rdx = dy.dot(&wd);
    let e2 = (&dx - &rdx).iter().map(|v| v * v).sum::<f64>().sqrt()
        / rdx.iter().map(|v| v * v).sum::<f64>().sqrt();
    let (bdx, grads) = w.backward(x.view(), dy.view()).unwrap();
    let e3 = (&bdx - &rdx).iter().map(|v| v * v).sum::<f64>().sqrt()
        / rdx.iter().map(|v| v * v).sum::<f64>().sqrt();
    println!(
        "{name}: apply {e:e} transpose {e2:e} bwd dx {e3:e} grads {}",
        grads.len()
    );
    print!("{}", w.plan(7));
}
fn main() {
    let shape = MatrixShape::try_new(vec![3, 4, 2], vec![4, 3, 5]).unwrap();
    check(
        "dense",
        &DenseMatrix::<f64>::random(&shape, &(), 1, Init::He, 1).unwrap(),
    );
    check(
        "tt",
        &TtMatrix::<f64>::random(&shape, &(), 3, Init::He, 1).unwrap(),
    );
    check(
        "ht",
        &HtMatrix::<f64>::random(&shape, &DimTree::balanced(3).unwrap(), 3, Init::He, 1).unwrap(),
    );
    check(
        "trp",
        &TrMatrix::<f64>::random(&shape, &TrLayout::Paired, 3, Init::He, 1).unwrap(),
    );
    check(
        "trs",
        &TrMatrix::<f64>::random(&shape, &TrLayout::Split, 3, Init::He, 1).unwrap(),
    );
    check(
        "bt",
        &BtMatrix::<f64>::random(&shape, &2, 2, Init::He, 1).unwrap(),
    );
    let big = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let h = HtMatrix::<f32>::random(&big, &DimTree::balanced(4).unwrap(), 8, Init::He, 1).unwrap();
    print!("{}", h.plan(96));
    let t = TtMatrix::<f32>::random(&big, &(), 4, Init::He, 1).unwrap();
    print!("{}", t.plan(96));
    let t = TrMatrix::<f32>::random(&big, &TrLayout::Split, 4, Init::He, 1).unwrap();
    print!("{}", t.plan(96));
    let t = BtMatrix::<f32>::random(&big, &2, 4, Init::He, 1).unwrap();
    print!("{}", t.plan(96));
}
