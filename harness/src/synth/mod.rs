//! Synthetic chest CT volumes with COVID-19-like lesions and their ground-truth masks.
//!
//! A [`Phantom`] is an analytic description of a thorax drawn from a `u64` seed: body outline,
//! subcutaneous fat, chest-wall muscle, ribs, sternum and spine, heart and mediastinum, two lungs
//! that taper towards the apices and sit on diaphragm domes, the trachea and bronchial tree,
//! branching pulmonary vessels, and lesions inside the lungs: ground-glass opacities (soft edges,
//! mostly peripheral and subpleural) and consolidations. Values are Hounsfield units (HU).
//!
//! Every slice is computed on its own from the description ([`Phantom::render_slice`]), so a
//! 512³ volume streams to disk with only one slice of working memory. The same seed and size
//! give the same bytes on every platform (all randomness comes from [`rng::SplitMix64`], which is
//! test-data randomness, not cryptography).
//!
//! Frame: voxel `(i, j, k)` has its centre at `u` (mm, towards the patient's left as `i` grows),
//! `v` (mm, towards posterior as `j` grows) and `w` (mm, superior as `k` grows). The field of view
//! is fixed ([`FOV_MM`]), so the spacing scales with the requested size: 0.7 × 0.7 × 0.625 mm at
//! 512³.

pub mod rng;
pub mod tubes;

use rng::{SplitMix64, value_noise, white_noise};
use tubes::{Growth, Segment, V3, grow, sub};

/// Largest extent along any axis.
pub const MAX_DIM: usize = 512;
/// Field of view `[u, v, w]` in millimetres.
pub const FOV_MM: [f32; 3] = [358.4, 358.4, 320.0];

/// Hounsfield value of air.
pub const HU_AIR: f32 = -1000.0;
/// Lowest and highest value stored.
pub const HU_MIN: f32 = -1024.0;
/// Highest value stored.
pub const HU_MAX: f32 = 3071.0;

/// Errors in the phantom's parameters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamError {
    /// An extent is zero or larger than [`MAX_DIM`].
    #[error("bad size {dims:?}: every extent must be in 1..={MAX_DIM}")]
    Size {
        /// The requested `[nx, ny, nz]`.
        dims: [usize; 3],
    },
    /// A slice index is past the end of the volume.
    #[error("slice {k} out of range: the volume has {nz} slices")]
    Slice {
        /// Requested slice.
        k: usize,
        /// Number of slices.
        nz: usize,
    },
}

/// The tissue that dominates a voxel (covers at least half of it), for tests and overlays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tissue {
    /// Outside the body, or airway lumen outside the lungs.
    Air,
    /// Subcutaneous, mediastinal or epicardial fat.
    Fat,
    /// Chest-wall muscle.
    Muscle,
    /// Mediastinum, abdomen below the diaphragm, discs, spinal canal.
    Soft,
    /// The heart.
    Heart,
    /// Aerated lung parenchyma.
    Lung,
    /// Pulmonary vessel.
    Vessel,
    /// Lumen of the trachea or a bronchus.
    Airway,
    /// Ribs, sternum, vertebrae.
    Bone,
    /// Ground-glass opacity.
    GroundGlass,
    /// Consolidation.
    Consolidation,
}

/// Kind of lesion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LesionKind {
    /// Hazy increased attenuation (≈ −700…−500 HU) with soft edges; vessels stay visible.
    GroundGlass,
    /// Dense opacification (≈ −100…+50 HU) with sharper edges.
    Consolidation,
}

/// One lesion: a perturbed ellipsoid inside a lung.
#[derive(Clone, Debug, PartialEq)]
pub struct Lesion {
    /// Kind.
    pub kind: LesionKind,
    /// Centre `[u, v, w]` in mm.
    pub center: V3,
    /// Semi-axes in mm (before the rotation about `w`).
    pub radii: V3,
    /// Rotation about the `w` axis, radians.
    pub angle: f32,
    /// Mean value inside, HU.
    pub hu: f32,
    /// Relative width of the soft edge.
    pub softness: f32,
    /// Boundary perturbation: `(amplitude, frequency vector, phase)` terms.
    wobble: [(f32, V3, f32); 3],
}

impl Lesion {
    /// Membership in `[0, 1]` of point `p`: 1 inside, falling smoothly to 0 across the edge.
    /// A voxel is labelled lesion where membership times [`Phantom::lung_coverage`] (the
    /// fraction of the voxel the lesion covers) is at least one half.
    pub fn membership(&self, p: V3) -> f32 {
        let d = sub(p, self.center);
        let (s, c) = self.angle.sin_cos();
        let x = (c * d[0] + s * d[1]) / self.radii[0];
        let y = (-s * d[0] + c * d[1]) / self.radii[1];
        let z = d[2] / self.radii[2];
        let rho = (x * x + y * y + z * z).sqrt();
        let dir = [x, y, z].map(|t| t / rho.max(1e-6));
        let bump: f32 = self
            .wobble
            .iter()
            .map(|(a, f, ph)| a * (tubes::dot(*f, dir) + ph).sin())
            .sum();
        let t = rho / (1.0 + bump);
        1.0 - smoothstep(1.0 - self.softness, 1.0 + self.softness, t)
    }

    /// Largest extent from the centre in mm (for culling).
    fn reach(&self) -> f32 {
        let r = self.radii[0].max(self.radii[1]).max(self.radii[2]);
        r * (1.0 + self.softness) * 1.4
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Coverage of a voxel of size `vox` by a shape whose signed distance (negative inside) at the
/// voxel centre is `sd`: a linear ramp over one voxel, our partial-volume model.
fn coverage(sd: f32, vox: f32) -> f32 {
    (0.5 - sd / vox).clamp(0.0, 1.0)
}

/// A voxel's value and dominant tissue as tissues are painted over it, back to front.
struct Voxel {
    hu: f32,
    tissue: Tissue,
}

impl Voxel {
    /// Blends `value` in with opacity `alpha`; `t` becomes the tissue where it dominates.
    fn paint(&mut self, value: f32, alpha: f32, t: Tissue) {
        self.hu = lerp(self.hu, value, alpha);
        if alpha >= 0.5 {
            self.tissue = t;
        }
    }
}

/// A voxel's coverage by the rasterized tubes: vessel, airway wall and airway lumen.
#[derive(Clone, Copy)]
struct Tubes {
    vessel: f32,
    wall: f32,
    lumen: f32,
}

/// Approximate signed distance (mm) to a superellipse `|u/a|^n + |v/b|^n = 1`.
fn superellipse_sd(u: f32, v: f32, a: f32, b: f32, n: f32) -> f32 {
    let rho = ((u / a).abs().powf(n) + (v / b).abs().powf(n)).powf(1.0 / n);
    (rho - 1.0) * a.min(b)
}

/// Approximate signed distance (mm) to an ellipsoid.
fn ellipsoid_sd(p: V3, c: V3, r: V3) -> f32 {
    let d = sub(p, c);
    let rho = ((d[0] / r[0]).powi(2) + (d[1] / r[1]).powi(2) + (d[2] / r[2]).powi(2)).sqrt();
    (rho - 1.0) * r[0].min(r[1]).min(r[2])
}

/// Size and seed of a phantom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Extent `[nx, ny, nz]` (x = columns, y = rows, z = slices), each in `1..=MAX_DIM`.
    pub dims: [usize; 3],
    /// Seed: the same seed and dims give the same volume.
    pub seed: u64,
}

/// Seed-drawn proportions of one patient.
#[derive(Clone, Debug)]
struct Body {
    /// Body outline semi-axes and centre `v`.
    a: f32,
    b: f32,
    v0: f32,
    fat: f32,
    /// Thoracic cavity semi-axes.
    ca: f32,
    cb: f32,
    heart_c: V3,
    heart_r: V3,
    /// Vertebral body centre `v` and radius.
    spine_v: f32,
    spine_r: f32,
    aorta: [f32; 2],
    aorta_r: f32,
    /// Per lung (right = 0, left = 1): centre `u`, `v`, semi-axes, dome height, apex `w`.
    lung_u: [f32; 2],
    lung_v: f32,
    lung_a: f32,
    lung_b: f32,
    dome: [f32; 2],
    apex: f32,
    hu_fat: f32,
    hu_muscle: f32,
    hu_lung: f32,
    noise_seed: u64,
}

/// A seeded synthetic thorax; see the module documentation.
#[derive(Clone, Debug)]
pub struct Phantom {
    params: Params,
    spacing: [f32; 3],
    body: Body,
    vessels: Vec<Segment>,
    airways: Vec<Segment>,
    lesions: Vec<Lesion>,
}

/// One rendered slice: CT values, lesion mask and dominant tissue, `x` fastest.
#[derive(Clone, Debug, Default)]
pub struct Slice {
    /// HU, rounded and clamped to `[HU_MIN, HU_MAX]`.
    pub ct: Vec<i16>,
    /// 1 where a lesion is, else 0.
    pub label: Vec<u8>,
    /// Dominant tissue per voxel.
    pub tissue: Vec<Tissue>,
    /// Scratch: vessel coverage.
    vessel: Vec<f32>,
    /// Scratch: airway lumen and wall coverage.
    lumen: Vec<f32>,
    wall: Vec<f32>,
}

/// A whole volume in memory (for tests and small sizes; large volumes stream by slice).
#[derive(Clone, Debug)]
pub struct Volume {
    /// Extent `[nx, ny, nz]`.
    pub dims: [usize; 3],
    /// HU, `ct[x + nx * (y + ny * z)]`.
    pub ct: Vec<i16>,
    /// Lesion mask, same layout.
    pub label: Vec<u8>,
}

impl Phantom {
    /// Draws a phantom of the given size from the seed.
    ///
    /// # Errors
    /// [`ParamError::Size`] if an extent is 0 or above [`MAX_DIM`].
    pub fn new(params: Params) -> Result<Self, ParamError> {
        if params.dims.iter().any(|&n| n == 0 || n > MAX_DIM) {
            return Err(ParamError::Size { dims: params.dims });
        }
        let spacing = [0, 1, 2].map(|i| FOV_MM[i] / params.dims[i] as f32);
        let mut rng = SplitMix64::from_seed(params.seed);
        let body = Self::draw_body(&mut rng);
        let mut p = Phantom {
            params,
            spacing,
            body,
            vessels: Vec::new(),
            airways: Vec::new(),
            lesions: Vec::new(),
        };
        p.grow_airways(&mut rng.fork());
        p.grow_vessels(&mut rng.fork());
        p.draw_lesions(&mut rng.fork());
        Ok(p)
    }

    fn draw_body(rng: &mut SplitMix64) -> Body {
        let mut j = |lo: f64, hi: f64| rng.range(lo, hi) as f32;
        let a = j(150.0, 172.0);
        let b = j(104.0, 122.0);
        let v0 = j(4.0, 14.0);
        let fat = j(8.0, 22.0);
        let muscle = j(8.0, 13.0);
        let ca = a - fat - muscle;
        let cb = b - fat - muscle;
        let spine_r = j(15.0, 18.0);
        let spine_v = v0 + cb - spine_r * 1.1;
        let heart_r = [j(55.0, 66.0), j(44.0, 52.0), j(48.0, 58.0)];
        let heart_c = [j(10.0, 22.0), v0 - cb * 0.3, j(88.0, 104.0)];
        let aorta_r = j(10.0, 13.0);
        let aorta = [spine_r * 0.9 + aorta_r, spine_v - spine_r * 0.7];
        let lung_a = ca * j(0.45, 0.5);
        let lung_b = cb * j(0.9, 0.96);
        let lung_u = [-ca * 0.5, ca * 0.5];
        let lung_v = v0 + j(0.0, 6.0);
        let dome = [j(50.0, 62.0), j(40.0, 52.0)];
        let apex = j(292.0, 308.0);
        Body {
            a,
            b,
            v0,
            fat,
            ca,
            cb,
            heart_c,
            heart_r,
            spine_v,
            spine_r,
            aorta,
            aorta_r,
            lung_u,
            lung_v,
            lung_a,
            lung_b,
            dome,
            apex,
            hu_fat: j(-110.0, -90.0),
            hu_muscle: j(38.0, 52.0),
            hu_lung: j(-875.0, -845.0),
            noise_seed: rng.next_u64(),
        }
    }

    /// The parameters it was built from.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Extent `[nx, ny, nz]`.
    pub fn dims(&self) -> [usize; 3] {
        self.params.dims
    }

    /// Voxel spacing in mm `[dx, dy, dz]`.
    pub fn spacing(&self) -> [f32; 3] {
        self.spacing
    }

    /// The lesions drawn for this seed.
    pub fn lesions(&self) -> &[Lesion] {
        &self.lesions
    }

    /// The voxel-to-world affine (NIfTI RAS+, mm): `i` towards the patient's left (−x), `j`
    /// towards posterior (−y), `k` superior (+z), centred in `x` and `y`.
    pub fn affine(&self) -> [[f32; 4]; 3] {
        let [nx, ny, _] = self.params.dims.map(|n| n as f32);
        let [dx, dy, dz] = self.spacing;
        [
            [-dx, 0.0, 0.0, (nx / 2.0 - 0.5) * dx],
            [0.0, -dy, 0.0, (ny / 2.0 - 0.5) * dy],
            [0.0, 0.0, dz, 0.5 * dz],
        ]
    }

    /// Centre of voxel `(i, j, k)` in the phantom frame (mm).
    pub fn position(&self, i: usize, j: usize, k: usize) -> V3 {
        let [nx, ny, _] = self.params.dims;
        let [dx, dy, dz] = self.spacing;
        [
            (i as f32 + 0.5 - nx as f32 / 2.0) * dx,
            (j as f32 + 0.5 - ny as f32 / 2.0) * dy,
            (k as f32 + 0.5) * dz,
        ]
    }

    /// In-plane voxel size used for partial-volume edges.
    fn vox(&self) -> f32 {
        self.spacing[0].max(self.spacing[1])
    }

    fn body_sd(&self, p: V3) -> f32 {
        let b = &self.body;
        superellipse_sd(p[0], p[1] - b.v0, b.a, b.b, 2.4)
    }

    fn cavity_sd(&self, p: V3) -> f32 {
        let b = &self.body;
        superellipse_sd(p[0], p[1] - b.v0, b.ca, b.cb, 2.2)
    }

    fn heart_sd(&self, p: V3) -> f32 {
        ellipsoid_sd(p, self.body.heart_c, self.body.heart_r)
    }

    fn aorta_sd(&self, p: V3) -> f32 {
        let b = &self.body;
        if p[2] > 235.0 {
            return f32::INFINITY;
        }
        let d = ((p[0] - b.aorta[0]).powi(2) + (p[1] - b.aorta[1]).powi(2)).sqrt();
        d - b.aorta_r
    }

    /// Signed distance to the vertebral column (body, canal ring, spinous process) and whether
    /// the point is in an intervertebral disc or the spinal canal (soft, not bone).
    fn spine(&self, p: V3) -> (f32, bool) {
        let b = &self.body;
        let vb = ((p[0]).powi(2) + (p[1] - b.spine_v).powi(2)).sqrt() - b.spine_r;
        let canal_v = b.spine_v + b.spine_r + 8.0;
        let dc = ((p[0]).powi(2) + (p[1] - canal_v).powi(2)).sqrt();
        let ring = (dc - 14.0).max(7.5 - dc);
        let spinous = (p[0].abs() - 4.0).max((p[1] - (canal_v + 30.0)).abs() - 16.0);
        let transverse = (p[1] - canal_v + 2.0).abs().max(0.0) - 5.0;
        let transverse = transverse.max(p[0].abs() - 30.0).max(14.0 - p[0].abs());
        let transverse = transverse.max(((p[2] / 26.0).fract() * 26.0 - 13.0).abs() - 5.0);
        let sd = vb.min(ring).min(spinous).min(transverse);
        let level = (p[2] / 26.0).fract() * 26.0;
        let disc = vb < 0.0 && level < 5.0;
        let canal = dc < 7.5;
        (
            sd.min(if canal { dc - 7.5 } else { f32::INFINITY }),
            disc || canal,
        )
    }

    /// Signed distance to the nearest rib, sternum included.
    fn rib_sd(&self, p: V3) -> f32 {
        let b = &self.body;
        // Ribs run just outside the cavity, from the spine around to the front, dropping as
        // they go; sampled at the point's angle around the chest.
        let (ra, rb) = (b.ca + 6.0, b.cb + 6.0);
        let (u, v) = (p[0], p[1] - b.v0);
        let theta = (u.abs() / ra).atan2(v / rb); // 0 posterior, π anterior
        let rho = ((u / ra).powi(2) + (v / rb).powi(2)).sqrt();
        let radial = (rho - 1.0) * ra.min(rb);
        let mut best = f32::INFINITY;
        if (0.3..2.7).contains(&theta) {
            let drop = 105.0 * (1.0 - theta.cos()) / 2.0;
            for k in 0..14 {
                let w_k = b.apex + 20.0 - 22.0 * k as f32 - drop;
                let dz = p[2] - w_k;
                let q = ((radial / 3.5).powi(2) + (dz / 5.5).powi(2)).sqrt();
                best = best.min((q - 1.0) * 3.5);
            }
        }
        if (150.0..290.0).contains(&p[2]) {
            let sv = b.v0 - b.cb - 5.0;
            let q = ((u / 15.0).powi(2) + ((p[1] - sv) / 6.0).powi(2)).sqrt();
            best = best.min((q - 1.0) * 6.0);
        }
        best
    }

    /// Signed distance to lung `side` (0 right, 1 left) before subtracting other organs.
    fn lung_shape_sd(&self, p: V3, side: usize) -> f32 {
        let b = &self.body;
        let uc = b.lung_u[side];
        let taper = ((b.apex - p[2]) / 110.0).clamp(0.0, 1.0).sqrt().max(1e-3);
        let (a, bb) = (b.lung_a * taper, b.lung_b * taper.powf(0.6));
        let shape = superellipse_sd(p[0] - uc, p[1] - b.lung_v, a, bb, 2.3);
        // Diaphragm dome: highest under the lung's centre, lowest in the costophrenic recess.
        let r2 = ((p[0] - uc) / b.lung_a).powi(2) + ((p[1] - b.lung_v + 10.0) / b.lung_b).powi(2);
        let dome = 38.0 + b.dome[side] * (1.0 - r2).max(0.0).sqrt();
        let below = dome - p[2];
        let medial = 14.0 - p[0].abs();
        shape.max(below).max(medial).max(p[2] - b.apex)
    }

    /// Fraction of a voxel centred at `p` that is lung parenchyma (lesions included): inside
    /// a lung shape and the cavity, outside heart, aorta, spine and ribs.
    pub fn lung_coverage(&self, p: V3) -> f32 {
        self.lung_coverage_at(p, self.vox())
    }

    /// Lung coverage at a fixed 1 mm edge width: used while drawing the anatomy, so that the
    /// trees and lesions of a seed are the same at every volume size.
    fn lung_fraction(&self, p: V3) -> f32 {
        self.lung_coverage_at(p, 1.0)
    }

    fn lung_coverage_at(&self, p: V3, vox: f32) -> f32 {
        let side = usize::from(p[0] > 0.0);
        let lung = coverage(self.lung_shape_sd(p, side), vox);
        if lung == 0.0 {
            return 0.0;
        }
        lung * coverage(self.cavity_sd(p), vox)
            * (1.0 - coverage(self.heart_sd(p) - 3.0, vox))
            * (1.0 - coverage(self.aorta_sd(p) - 2.0, vox))
            * (1.0 - coverage(self.spine(p).0 - 2.0, vox))
            * (1.0 - coverage(self.rib_sd(p), vox))
    }

    /// A random point inside lung `side` at height between `w_lo` and `w_hi`.
    fn random_lung_point(&self, rng: &mut SplitMix64, side: usize, w_lo: f32, w_hi: f32) -> V3 {
        let b = &self.body;
        for _ in 0..200 {
            let p = [
                b.lung_u[side] + rng.range(-1.0, 1.0) as f32 * b.lung_a,
                b.lung_v + rng.range(-1.0, 1.0) as f32 * b.lung_b,
                rng.range(f64::from(w_lo), f64::from(w_hi)) as f32,
            ];
            if self.lung_fraction(p) > 0.99 {
                return p;
            }
        }
        [b.lung_u[side], b.lung_v, (w_lo + w_hi) / 2.0]
    }

    fn grow_airways(&mut self, rng: &mut SplitMix64) {
        let b = self.body.clone();
        let carina = [0.0, b.v0 + 5.0, b.heart_c[2] + b.heart_r[2] + 50.0];
        self.airways.push(Segment {
            a: [0.0, b.v0 + 2.0, FOV_MM[2] + 10.0],
            b: carina,
            r: rng.range(8.0, 10.0) as f32,
        });
        for side in 0..2 {
            let s = if side == 0 { -1.0 } else { 1.0 };
            let hilum = [b.lung_u[side] * 0.55, b.lung_v + 4.0, carina[2] - 30.0];
            let main = Segment {
                a: carina,
                b: hilum,
                r: rng.range(5.5, 7.0) as f32,
            };
            self.airways.push(main);
            let g = Growth {
                root: hilum,
                dir: [s, 0.0, -0.6],
                r0: main.r * 0.8,
                len0: 26.0,
                generations: 6,
                r_min: 1.2,
            };
            let mut out = Vec::new();
            let this = &*self;
            grow(
                &g,
                rng,
                &mut |r| this.random_lung_point(r, side, 45.0, b.apex - 10.0),
                &|p| this.lung_fraction(p) > 0.5,
                &mut out,
            );
            self.airways.extend(out);
        }
    }

    fn grow_vessels(&mut self, rng: &mut SplitMix64) {
        let b = self.body.clone();
        let hilum_w = b.heart_c[2] + b.heart_r[2] + 20.0;
        // Per lung, an artery and a vein for each of three zones (lower, middle, upper), each
        // tree aiming its first branches at its own zone so that the whole lung is supplied.
        let zones = [
            (40.0, hilum_w - 20.0, -0.6f32),
            (hilum_w - 50.0, hilum_w + 40.0, 0.0),
            (hilum_w, b.apex - 5.0, 0.9),
        ];
        for side in 0..2 {
            let s = if side == 0 { -1.0 } else { 1.0 };
            for (w_lo, w_hi, up) in zones {
                for (dw, r0) in [(0.0f32, 7.0f32), (-25.0, 6.5)] {
                    let root = [b.lung_u[side] * 0.45, b.lung_v - 2.0, hilum_w + dw];
                    let g = Growth {
                        root,
                        dir: [s, rng.range(-0.3, 0.3) as f32, up],
                        r0,
                        len0: 26.0,
                        generations: 9,
                        r_min: 0.6,
                    };
                    let mut out = Vec::new();
                    let this = &*self;
                    grow(
                        &g,
                        rng,
                        &mut |r| this.random_lung_point(r, side, w_lo, w_hi),
                        &|p| this.lung_fraction(p) > 0.5,
                        &mut out,
                    );
                    self.vessels.extend(out);
                }
            }
        }
    }

    fn draw_lesions(&mut self, rng: &mut SplitMix64) {
        let count = rng.below(7) as usize + 1;
        let b = self.body.clone();
        let mut made = 0;
        let mut tries = 0;
        while made < count && tries < 200 {
            tries += 1;
            let side = rng.below(2) as usize;
            // Lower zones are favoured, as in COVID-19 pneumonia.
            let w = lerp(60.0, b.apex - 25.0, rng.unit().powf(1.4) as f32);
            let phi = rng.range(0.0, std::f64::consts::TAU) as f32;
            let dir = [phi.cos(), phi.sin(), 0.0];
            let start = [b.lung_u[side], b.lung_v, w];
            if self.lung_fraction(start) < 0.99 {
                continue;
            }
            // March out to the pleura.
            let mut edge = start;
            for step in 1..400 {
                let q = [
                    start[0] + dir[0] * step as f32,
                    start[1] + dir[1] * step as f32,
                    w,
                ];
                if self.lung_fraction(q) < 0.5 {
                    break;
                }
                edge = q;
            }
            let reach = tubes::norm(sub(edge, start));
            if reach < 10.0 {
                continue;
            }
            let ggo = rng.chance(0.7);
            let r = rng.range(8.0, 34.0) as f32;
            let depth = if rng.chance(0.75) {
                r * rng.range(0.1, 0.8) as f32 // subpleural
            } else {
                reach * rng.range(0.3, 0.8) as f32
            };
            let depth = depth.min(reach);
            let center = [edge[0] - dir[0] * depth, edge[1] - dir[1] * depth, w];
            if self.lung_fraction(center) < 0.5 {
                continue;
            }
            let radii = [
                r * rng.range(0.7, 1.3) as f32,
                r * rng.range(0.7, 1.3) as f32,
                r * rng.range(0.6, 1.2) as f32,
            ];
            let wobble = [0; 3].map(|_| {
                let f = tubes::normalize([
                    rng.range(-1.0, 1.0) as f32,
                    rng.range(-1.0, 1.0) as f32,
                    rng.range(-1.0, 1.0) as f32,
                ]);
                (
                    rng.range(0.03, 0.12) as f32,
                    tubes::scale(f, rng.range(2.0, 5.0) as f32),
                    rng.range(0.0, std::f64::consts::TAU) as f32,
                )
            });
            let angle = rng.range(0.0, std::f64::consts::PI) as f32;
            let lesion = if ggo {
                Lesion {
                    kind: LesionKind::GroundGlass,
                    center,
                    radii,
                    angle,
                    hu: rng.range(-700.0, -520.0) as f32,
                    softness: rng.range(0.25, 0.45) as f32,
                    wobble,
                }
            } else {
                Lesion {
                    kind: LesionKind::Consolidation,
                    center,
                    radii,
                    angle,
                    hu: rng.range(-80.0, 40.0) as f32,
                    softness: rng.range(0.06, 0.14) as f32,
                    wobble,
                }
            };
            // Mixed pattern: a ground-glass halo around some consolidations' cores.
            if ggo && rng.chance(0.3) {
                let mut core = lesion.clone();
                core.kind = LesionKind::Consolidation;
                core.radii = tubes::scale(radii, 0.45);
                core.hu = rng.range(-80.0, 30.0) as f32;
                core.softness = 0.1;
                self.lesions.push(lesion);
                self.lesions.push(core);
            } else {
                self.lesions.push(lesion);
            }
            made += 1;
        }
    }

    /// Renders slice `k` into `out` (buffers are resized as needed and reused between calls).
    ///
    /// # Errors
    /// [`ParamError::Slice`] if `k` is not a slice of the volume.
    pub fn render_slice(&self, k: usize, out: &mut Slice) -> Result<(), ParamError> {
        let [nx, ny, nz] = self.params.dims;
        if k >= nz {
            return Err(ParamError::Slice { k, nz });
        }
        let n = nx * ny;
        out.ct.resize(n, 0);
        out.label.resize(n, 0);
        out.tissue.resize(n, Tissue::Air);
        for buf in [&mut out.vessel, &mut out.lumen, &mut out.wall] {
            buf.clear();
            buf.resize(n, 0.0);
        }
        let vox = self.vox();
        let w = self.position(0, 0, k)[2];
        self.raster_tubes(&self.vessels, w, k, &mut out.vessel, None);
        self.raster_tubes(&self.airways, w, k, &mut out.lumen, Some(&mut out.wall));
        let lesions: Vec<&Lesion> = self
            .lesions
            .iter()
            .filter(|l| (l.center[2] - w).abs() < l.reach() + self.spacing[2])
            .collect();
        let seed = self.body.noise_seed;
        for j in 0..ny {
            for i in 0..nx {
                let p = self.position(i, j, k);
                let idx = i + nx * j;
                let tubes = Tubes {
                    vessel: out.vessel[idx],
                    wall: out.wall[idx],
                    lumen: out.lumen[idx],
                };
                let (voxel, lesion) = self.voxel(p, vox, &lesions, tubes);
                let noise = 30.0
                    * value_noise(seed, i as f32 / 2.5, j as f32 / 2.5, k as f32 / 2.0)
                    + 8.0 * white_noise(seed, i as i64, j as i64, k as i64);
                out.ct[idx] = (voxel.hu + noise).round().clamp(HU_MIN, HU_MAX) as i16;
                out.label[idx] = u8::from(lesion >= 0.5);
                out.tissue[idx] = voxel.tissue;
            }
        }
        Ok(())
    }

    /// One voxel at `p` before noise, painted back to front (body, trunk, lungs with their
    /// lesions and vessels, airways), and its lesion membership within the lung.
    fn voxel(&self, p: V3, vox: f32, lesions: &[&Lesion], tubes: Tubes) -> (Voxel, f32) {
        let mut v = Voxel {
            hu: HU_AIR,
            tissue: Tissue::Air,
        };
        let body = coverage(self.body_sd(p), vox);
        if body > 0.0 {
            self.paint_trunk(&mut v, p, vox, body);
            let lung = self.lung_coverage(p);
            let mut lesion_m = 0.0f32;
            if lung > 0.0 {
                lesion_m = self.paint_lung(&mut v, p, lung, lesions);
                v.paint(40.0, tubes.vessel * lung, Tissue::Vessel);
            }
            v.paint(40.0, tubes.wall * body, Tissue::Soft);
            let t_air = if lung >= 0.5 {
                Tissue::Airway
            } else {
                Tissue::Air
            };
            v.paint(HU_AIR, tubes.lumen * body, t_air);
            (v, lesion_m * lung)
        } else {
            (v, 0.0)
        }
    }

    /// Fat, muscle, the mediastinum (fat, heart, aorta), spine and ribs.
    fn paint_trunk(&self, v: &mut Voxel, p: V3, vox: f32, body: f32) {
        let b = &self.body;
        v.paint(b.hu_fat, body, Tissue::Fat);
        let inner = superellipse_sd(p[0], p[1] - b.v0, b.a - b.fat, b.b - b.fat, 2.3);
        v.paint(b.hu_muscle, coverage(inner, vox), Tissue::Muscle);
        let cavity = coverage(self.cavity_sd(p), vox);
        if cavity > 0.0 {
            v.paint(35.0, cavity, Tissue::Soft);
            // Anterior mediastinal fat in the upper chest.
            let mfat = ellipsoid_sd(p, [0.0, b.v0 - b.cb * 0.6, 250.0], [26.0, 22.0, 45.0]);
            v.paint(-90.0, coverage(mfat, vox) * cavity, Tissue::Fat);
            let hsd = self.heart_sd(p);
            v.paint(-95.0, coverage(hsd - 3.0, vox) * cavity, Tissue::Fat);
            v.paint(42.0, coverage(hsd, vox), Tissue::Heart);
            v.paint(40.0, coverage(self.aorta_sd(p), vox), Tissue::Soft);
        }
        let (spine_sd, soft) = self.spine(p);
        let cov = coverage(spine_sd, vox);
        if soft {
            v.paint(85.0, cov, Tissue::Soft);
        } else {
            let cortex = coverage(spine_sd + 2.0, vox);
            v.paint(900.0, cov, Tissue::Bone);
            v.paint(420.0, cortex, Tissue::Bone);
        }
        let rib = self.rib_sd(p);
        v.paint(880.0, coverage(rib, vox) * body, Tissue::Bone);
        v.paint(430.0, coverage(rib + 1.8, vox) * body, Tissue::Bone);
    }

    /// Lung parenchyma with its gravity gradient and the lesions over it; returns the largest
    /// lesion membership at `p`.
    fn paint_lung(&self, v: &mut Voxel, p: V3, lung: f32, lesions: &[&Lesion]) -> f32 {
        let b = &self.body;
        // Gravity-dependent gradient: posterior lung is denser.
        let grad = 25.0 * (p[1] - b.lung_v) / b.lung_b;
        v.paint(b.hu_lung + grad, lung, Tissue::Lung);
        let mut lesion_m = 0.0f32;
        for l in lesions {
            let m = l.membership(p);
            if m > 0.0 {
                let t = match l.kind {
                    LesionKind::GroundGlass => Tissue::GroundGlass,
                    LesionKind::Consolidation => Tissue::Consolidation,
                };
                let texture =
                    25.0 * value_noise(b.noise_seed ^ 0x1e51, p[0] / 4.0, p[1] / 4.0, p[2] / 4.0);
                v.paint(l.hu + texture, m * lung, t);
                lesion_m = lesion_m.max(m);
            }
        }
        lesion_m
    }

    /// Rasterizes the tubes crossing height `w` into coverage buffers: `lumen` gets the tube's
    /// coverage, `wall` (airways) the coverage of a ring around it.
    fn raster_tubes(
        &self,
        tubes: &[Segment],
        w: f32,
        k: usize,
        lumen: &mut [f32],
        mut wall: Option<&mut Vec<f32>>,
    ) {
        let [nx, ny, _] = self.params.dims;
        let [dx, dy, _] = self.spacing;
        let vox = self.vox();
        let half = self.spacing[2] / 2.0;
        for s in tubes {
            let outer = if wall.is_some() {
                s.r * 1.35 + 0.8
            } else {
                s.r
            };
            let (lo, hi) = s.w_range(outer - s.r + half + vox);
            if w < lo || w > hi {
                continue;
            }
            let pad = outer + vox;
            let (u0, u1) = (s.a[0].min(s.b[0]) - pad, s.a[0].max(s.b[0]) + pad);
            let (v0, v1) = (s.a[1].min(s.b[1]) - pad, s.a[1].max(s.b[1]) + pad);
            let to_i = |u: f32, n: usize, d: f32| {
                ((u / d + n as f32 / 2.0 - 0.5).max(0.0) as usize).min(n)
            };
            let (i0, i1) = (to_i(u0, nx, dx), (to_i(u1, nx, dx) + 1).min(nx));
            let (j0, j1) = (to_i(v0, ny, dy), (to_i(v1, ny, dy) + 1).min(ny));
            // Thin tubes cover only part of a voxel even on their axis.
            let thin = (2.0 * s.r / vox).min(1.0);
            for j in j0..j1 {
                for i in i0..i1 {
                    let d = s.distance(self.position(i, j, k));
                    let idx = i + nx * j;
                    let c = coverage(d - s.r, vox) * thin;
                    lumen[idx] = lumen[idx].max(c);
                    if let Some(wall) = wall.as_deref_mut() {
                        let cw = coverage(d - outer, vox) * ((2.0 * outer / vox).min(1.0));
                        wall[idx] = wall[idx].max(cw);
                    }
                }
            }
        }
    }

    /// Renders the whole volume into memory.
    pub fn render(&self) -> Volume {
        let [nx, ny, nz] = self.params.dims;
        let mut ct = Vec::with_capacity(nx * ny * nz);
        let mut label = Vec::with_capacity(nx * ny * nz);
        let mut s = Slice::default();
        for k in 0..nz {
            self.render_slice(k, &mut s)
                .expect("k < nz by the loop bound");
            ct.extend_from_slice(&s.ct);
            label.extend_from_slice(&s.label);
        }
        Volume {
            dims: self.params.dims,
            ct,
            label,
        }
    }
}
