use std::time::Instant;
use tnet::matrices::*;
use tnet::DimTree;
type F = f32;
fn time<Fn: FnMut()>(mut f: Fn) -> f64 {
    f();
    let mut v = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[3]
}
fn run<M: TensorizedMatrix<F>>(
    name: &str,
    w: &M,
    x: &ndarray::Array2<F>,
    dy: &ndarray::Array2<F>,
    dense_t: f64,
) {
    let b = x.nrows();
    let fl = w.flops(b) as f64;
    let t = time(|| {
        std::hint::black_box(w.apply(x.view()).unwrap());
    });
    let tb = time(|| {
        std::hint::black_box(w.backward(x.view(), dy.view()).unwrap());
    });
    println!("{name:10} params {:8} fwd {:8.3} ms {:6.1} GF/s speedup {:5.1}x | fwd+bwd(tmp) {:8.3} ms (+fwd {:8.3})", w.n_params(), t*1e3, fl/t/1e9, dense_t/t, tb*1e3, (t+tb)*1e3);
}
fn main() {
    let big = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let x: ndarray::Array2<F> = tnet::dense::random_normal::<F>(&[96, 57600], 1)
        .into_dimensionality()
        .unwrap();
    let dy: ndarray::Array2<F> = tnet::dense::random_normal::<F>(&[96, 1024], 2)
        .into_dimensionality()
        .unwrap();
    let d = DenseMatrix::<F>::random(&big, &(), 1, Init::He, 1).unwrap();
    let td = time(|| {
        std::hint::black_box(d.apply(x.view()).unwrap());
    });
    println!(
        "dense fwd {:.3} ms {:.1} GF/s",
        td * 1e3,
        d.flops(96) as f64 / td / 1e9
    );
    run("dense", &d, &x, &dy, td);
    let tree = DimTree::balanced(4).unwrap();
    run(
        "ht r8",
        &HtMatrix::<F>::random(&big, &tree, 8, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
    run(
        "ht r4",
        &HtMatrix::<F>::random(&big, &tree, 4, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
    run(
        "tt r4",
        &TtMatrix::<F>::random(&big, &(), 4, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
    run(
        "tr-p r4",
        &TrMatrix::<F>::random(&big, &TrLayout::Paired, 4, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
    run(
        "tr-s r4",
        &TrMatrix::<F>::random(&big, &TrLayout::Split, 4, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
    run(
        "bt 2x4",
        &BtMatrix::<F>::random(&big, &2, 4, Init::He, 1).unwrap(),
        &x,
        &dy,
        td,
    );
}
