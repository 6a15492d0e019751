use tnet::matrices::*;
use tnet::DimTree;
type F = f32;
fn main() {
    let which = std::env::args().nth(1).unwrap_or("ht8".into());
    let big = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let x: ndarray::Array2<F> = tnet::dense::random_normal::<F>(&[96, 57600], 1)
        .into_dimensionality()
        .unwrap();
    let tree = DimTree::balanced(4).unwrap();
    let w: Box<dyn TensorizedMatrix<F>> = match which.as_str() {
        "ht8" => Box::new(HtMatrix::<F>::random(&big, &tree, 8, Init::He, 1).unwrap()),
        "ht4" => Box::new(HtMatrix::<F>::random(&big, &tree, 4, Init::He, 1).unwrap()),
        "tt" => Box::new(TtMatrix::<F>::random(&big, &(), 4, Init::He, 1).unwrap()),
        "trp" => Box::new(TrMatrix::<F>::random(&big, &TrLayout::Paired, 4, Init::He, 1).unwrap()),
        "bt" => Box::new(BtMatrix::<F>::random(&big, &2, 4, Init::He, 1).unwrap()),
        "dense" => Box::new(DenseMatrix::<F>::random(&big, &(), 1, Init::He, 1).unwrap()),
        "trs" => Box::new(TrMatrix::<F>::random(&big, &TrLayout::Split, 4, Init::He, 1).unwrap()),
        _ => panic!(),
    };
    print!("{}", w.plan(96));
    let dy: ndarray::Array2<F> = tnet::dense::random_normal::<F>(&[96, 1024], 2)
        .into_dimensionality()
        .unwrap();
    let n: usize = std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(30);
    for _ in 0..n {
        std::hint::black_box(w.apply(x.view()).unwrap());
    }
    if std::env::var("BWD").is_ok() {
        for _ in 0..n {
            std::hint::black_box(w.backward(x.view(), dy.view()).unwrap());
        }
    }
}
#[allow(dead_code)]
fn unused() {}
