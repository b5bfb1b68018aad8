//! Properties of the synthetic chest CT generator.

use std::collections::HashMap;

use bunet_harness::synth::{LesionKind, MAX_DIM, ParamError, Params, Phantom, Slice, Tissue};

fn phantom(n: usize, nz: usize, seed: u64) -> Phantom {
    Phantom::new(Params {
        dims: [n, n, nz],
        seed,
    })
    .expect("valid size")
}

#[test]
fn same_seed_gives_same_volume_and_different_seeds_differ() {
    let a = phantom(32, 16, 7).render();
    let b = phantom(32, 16, 7).render();
    assert_eq!(a.ct, b.ct);
    assert_eq!(a.label, b.label);
    let c = phantom(32, 16, 8).render();
    assert_ne!(a.ct, c.ct);
    assert_ne!(phantom(32, 16, 7).lesions(), phantom(32, 16, 8).lesions());
}

#[test]
fn anatomy_of_a_seed_does_not_depend_on_the_size() {
    // Train at 128 x 128 x 48, segment at 512^3: the same patient either way.
    assert_eq!(phantom(32, 16, 5).lesions(), phantom(512, 512, 5).lesions());
    assert_eq!(phantom(64, 48, 6).lesions(), phantom(128, 48, 6).lesions());
}

#[test]
fn sizes_out_of_range_are_rejected() {
    for dims in [[0, 8, 8], [8, 8, 0], [MAX_DIM + 1, 8, 8]] {
        assert_eq!(
            Phantom::new(Params { dims, seed: 1 }).err(),
            Some(ParamError::Size { dims })
        );
    }
    let p = phantom(8, 4, 1);
    assert_eq!(
        p.render_slice(4, &mut Slice::default()),
        Err(ParamError::Slice { k: 4, nz: 4 })
    );
}

/// Voxels whose 26 neighbours have the same dominant tissue, grouped by tissue.
fn interior_values(p: &Phantom) -> HashMap<Tissue, Vec<i16>> {
    let [nx, ny, nz] = p.dims();
    let mut tissue = Vec::new();
    let mut ct = Vec::new();
    let mut s = Slice::default();
    for k in 0..nz {
        p.render_slice(k, &mut s).expect("k < nz");
        tissue.extend_from_slice(&s.tissue);
        ct.extend_from_slice(&s.ct);
    }
    let at = |i: usize, j: usize, k: usize| i + nx * (j + ny * k);
    let mut out: HashMap<Tissue, Vec<i16>> = HashMap::new();
    for k in 1..nz - 1 {
        for j in 1..ny - 1 {
            for i in 1..nx - 1 {
                let t = tissue[at(i, j, k)];
                let pure = (k - 1..=k + 1).all(|kk| {
                    (j - 1..=j + 1).all(|jj| (i - 1..=i + 1).all(|ii| tissue[at(ii, jj, kk)] == t))
                });
                if pure {
                    out.entry(t).or_default().push(ct[at(i, j, k)]);
                }
            }
        }
    }
    out
}

fn percentile(v: &mut [i16], q: f64) -> i16 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn tissues_have_realistic_hounsfield_values() {
    let p = phantom(96, 48, 3);
    let mut by_tissue = interior_values(&p);
    // (tissue, lowest 2nd percentile, highest 98th percentile, median range)
    let expect = [
        (Tissue::Air, -1024, -940, (-1024, -970)),
        (Tissue::Fat, -170, -30, (-125, -75)),
        (Tissue::Muscle, -20, 110, (20, 70)),
        (Tissue::Soft, -30, 130, (15, 70)),
        (Tissue::Heart, -20, 110, (20, 65)),
        // Lung includes sub-voxel vessels and the faint fringes of ground glass.
        (Tissue::Lung, -960, -600, (-900, -810)),
        (Tissue::Bone, 250, 1100, (380, 950)),
    ];
    for (t, lo, hi, (mlo, mhi)) in expect {
        let v = by_tissue
            .get_mut(&t)
            .unwrap_or_else(|| panic!("no interior {t:?} voxels"));
        assert!(v.len() > 20, "{t:?}: only {} interior voxels", v.len());
        let (p2, p98, med) = (percentile(v, 0.02), percentile(v, 0.98), percentile(v, 0.5));
        assert!(
            p2 >= lo && p98 <= hi,
            "{t:?}: 2-98% range {p2}..{p98} outside {lo}..{hi}"
        );
        assert!(
            (mlo..=mhi).contains(&med),
            "{t:?}: median {med} outside {mlo}..{mhi}"
        );
    }
    // Smooth noise of about 10-20 HU: spread of interior lung (which also has a gravity
    // gradient) and air.
    let air = &by_tissue[&Tissue::Air];
    let mean = air.iter().map(|&v| f64::from(v)).sum::<f64>() / air.len() as f64;
    let sd = (air
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / air.len() as f64)
        .sqrt();
    assert!((4.0..25.0).contains(&sd), "air noise sd {sd}");
}

#[test]
fn lesions_are_only_inside_the_lungs_and_the_mask_matches_them() {
    let mut lesion_voxels = 0;
    let mut kinds = (0, 0);
    for seed in 0..6 {
        let p = phantom(48, 24, seed);
        for l in p.lesions() {
            match l.kind {
                LesionKind::GroundGlass => kinds.0 += 1,
                LesionKind::Consolidation => kinds.1 += 1,
            }
        }
        let [nx, ny, nz] = p.dims();
        let mut s = Slice::default();
        for k in 0..nz {
            p.render_slice(k, &mut s).expect("k < nz");
            for j in 0..ny {
                for i in 0..nx {
                    let idx = i + nx * j;
                    let pos = p.position(i, j, k);
                    let lung = p.lung_coverage(pos);
                    let m = p
                        .lesions()
                        .iter()
                        .map(|l| l.membership(pos))
                        .fold(0.0, f32::max);
                    let expected = u8::from(m * lung >= 0.5);
                    assert_eq!(s.label[idx], expected, "seed {seed} voxel {i},{j},{k}");
                    if s.label[idx] == 1 {
                        lesion_voxels += 1;
                        assert!(lung >= 0.5, "lesion outside the lung at {i},{j},{k}");
                        assert!(
                            matches!(
                                s.tissue[idx],
                                Tissue::GroundGlass
                                    | Tissue::Consolidation
                                    | Tissue::Vessel
                                    | Tissue::Airway
                                    | Tissue::Soft
                            ),
                            "lesion voxel shows {:?}",
                            s.tissue[idx]
                        );
                    }
                    if matches!(s.tissue[idx], Tissue::GroundGlass | Tissue::Consolidation) {
                        assert_eq!(s.label[idx], 1, "visible lesion not in the mask");
                    }
                }
            }
        }
    }
    assert!(lesion_voxels > 100, "only {lesion_voxels} lesion voxels");
    assert!(kinds.0 > 0 && kinds.1 > 0, "lesion kinds {kinds:?}");
}

#[test]
fn lesions_have_their_kind_of_attenuation() {
    let mut ggo = Vec::new();
    let mut cons = Vec::new();
    for seed in 0..8 {
        let p = phantom(64, 32, seed);
        let mut s = Slice::default();
        for k in 0..32 {
            p.render_slice(k, &mut s).expect("k < nz");
            for (t, &v) in s.tissue.iter().zip(&s.ct) {
                match t {
                    Tissue::GroundGlass => ggo.push(v),
                    Tissue::Consolidation => cons.push(v),
                    _ => {}
                }
            }
        }
    }
    let med_ggo = percentile(&mut ggo, 0.5);
    let med_cons = percentile(&mut cons, 0.5);
    assert!(
        (-760..=-420).contains(&med_ggo),
        "ground glass median {med_ggo}"
    );
    assert!(
        (-250..=80).contains(&med_cons),
        "consolidation median {med_cons}"
    );
}

#[test]
fn spacing_scales_with_size() {
    let p = phantom(512, 512, 512);
    let [dx, dy, dz] = p.spacing();
    assert!((dx - 0.7).abs() < 1e-6 && (dy - 0.7).abs() < 1e-6 && (dz - 0.625).abs() < 1e-6);
    let q = phantom(64, 32, 1);
    assert!((q.spacing()[0] - 5.6).abs() < 1e-5 && (q.spacing()[2] - 10.0).abs() < 1e-5);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// For any seed: the mask is binary, lies inside the lungs, and the volume is reproducible.
    #[test]
    fn any_seed_gives_lesions_inside_lungs(seed in proptest::prelude::any::<u64>()) {
        let p = phantom(24, 12, seed);
        let mut s = Slice::default();
        let mut again = Slice::default();
        let q = phantom(24, 12, seed);
        for k in 0..12 {
            p.render_slice(k, &mut s).expect("k < nz");
            q.render_slice(k, &mut again).expect("k < nz");
            proptest::prop_assert_eq!(&s.ct, &again.ct);
            for j in 0..24 {
                for i in 0..24 {
                    let l = s.label[i + 24 * j];
                    proptest::prop_assert!(l <= 1);
                    if l == 1 {
                        proptest::prop_assert!(p.lung_coverage(p.position(i, j, k)) >= 0.5);
                    }
                }
            }
        }
    }
}
