use tnet::matrices::*;
type F = f32;
fn main() {
    let big = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let x: ndarray::Array2<F> = tnet::dense::random_normal::<F>(&[96, 57600], 1)
        .into_dimensionality()
        .unwrap();
    let w = TtMatrix::<F>::random(&big, &(), 4, Init::He, 1).unwrap();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        std::hint::black_box(w.apply(x.view()).unwrap());
        println!("apply {:.3} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}
