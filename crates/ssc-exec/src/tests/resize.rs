//! Resize modes and coordinate transformations, and Upsample's two forms.

use super::{check, f, i, A};

fn scales(v: &[f32]) -> ssc_ir::Tensor {
    f(&[v.len()], v)
}

fn resize(attrs: Vec<A>, x: &ssc_ir::Tensor, sc: &[f32], want: &[f32]) {
    let s = scales(sc);
    let mut dims = x.dims.clone();
    for (d, &k) in dims.iter_mut().zip(sc) {
        *d = (*d as f32 * k).floor() as usize;
    }
    check(
        "Resize",
        13,
        attrs,
        &[Some(x), None, Some(&s)],
        &[f(&dims, want)],
    );
}

#[test]
fn nearest_modes() {
    let x = f(&[1, 2], &[1., 2.]);
    resize(
        vec![
            A::string("coordinate_transformation_mode", "asymmetric"),
            A::string("nearest_mode", "floor"),
        ],
        &x,
        &[1., 2.],
        &[1., 1., 2., 2.],
    );
    // half_pixel, downsample by 2: source coords 0.5 and 2.5, ties either way.
    let x = f(&[1, 4], &[1., 2., 3., 4.]);
    resize(vec![], &x, &[1., 0.5], &[1., 3.]);
    resize(
        vec![A::string("nearest_mode", "round_prefer_ceil")],
        &x,
        &[1., 0.5],
        &[2., 4.],
    );
}

#[test]
fn linear_half_pixel_and_align_corners() {
    let x = f(&[1, 2], &[1., 2.]);
    // Coords -0.25, 0.25, 0.75, 1.25 clamp to [0, 1].
    resize(
        vec![A::string("mode", "linear")],
        &x,
        &[1., 2.],
        &[1., 1.25, 1.75, 2.],
    );
    let sizes = i(&[2], &[1, 3]);
    check(
        "Resize",
        13,
        vec![
            A::string("mode", "linear"),
            A::string("coordinate_transformation_mode", "align_corners"),
        ],
        &[Some(&x), None, None, Some(&sizes)],
        &[f(&[1, 3], &[1., 1.5, 2.])],
    );
}

#[test]
fn cubic_asymmetric() {
    // Output 1 samples coordinate 0.5: taps -1 (clamped to 0), 0, 1, 2 with weights
    // W(1.5) = -0.09375 and W(0.5) = 0.59375 for a = -0.75.
    let x = f(&[1, 4], &[1., 2., 3., 4.]);
    let want_1 = -0.09375 + 0.59375 + 2. * 0.59375 + 3. * -0.09375;
    let out = super::run(
        "Resize",
        13,
        vec![
            A::string("mode", "cubic"),
            A::string("coordinate_transformation_mode", "asymmetric"),
        ],
        &[Some(&x), None, Some(&scales(&[1., 2.]))],
        1,
    )
    .unwrap();
    let v = out[0].to_f64_vec().unwrap();
    assert_eq!(out[0].dims, [1, 8]);
    assert_eq!(v[0], 1.0);
    assert!((v[1] - want_1).abs() < 1e-6, "{v:?}");
}

#[test]
fn upsample_attr_and_input_scales() {
    let x = f(&[1, 1, 1, 2], &[1., 2.]);
    let want = f(&[1, 1, 2, 4], &[1., 1., 2., 2., 1., 1., 2., 2.]);
    check(
        "Upsample",
        7,
        vec![A::new(
            "scales",
            ssc_ir::AttrValue::Floats(vec![1., 1., 2., 2.]),
        )],
        &[Some(&x)],
        std::slice::from_ref(&want),
    );
    check(
        "Upsample",
        9,
        vec![],
        &[Some(&x), Some(&scales(&[1., 1., 2., 2.]))],
        &[want],
    );
    // Linear Upsample uses asymmetric coordinates: 0, 0.5, 1, 1.5 (clamped).
    check(
        "Upsample",
        9,
        vec![A::string("mode", "linear")],
        &[Some(&x), Some(&scales(&[1., 1., 1., 2.]))],
        &[f(&[1, 1, 1, 4], &[1., 1.5, 2., 2.])],
    );
}
