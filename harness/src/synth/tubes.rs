//! Branching tubes: pulmonary vessels and the bronchial tree, grown as binary trees of straight
//! segments whose radius and length shrink at each generation, aimed at random points of the
//! lung so that the branches spread through it and thin towards the periphery.

use super::rng::SplitMix64;

/// A point or direction in millimetres, `[u, v, w]` (lateral, posterior, superior).
pub type V3 = [f32; 3];

pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn norm(a: V3) -> f32 {
    dot(a, a).sqrt()
}
pub(crate) fn normalize(a: V3) -> V3 {
    let n = norm(a);
    if n > 0.0 {
        scale(a, 1.0 / n)
    } else {
        [0.0, 0.0, 1.0]
    }
}

/// One straight piece of tube from `a` to `b` with radius `r` (mm).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Start point.
    pub a: V3,
    /// End point.
    pub b: V3,
    /// Radius (outer radius of the lumen for airways).
    pub r: f32,
}

impl Segment {
    /// Distance from `p` to the segment's axis.
    pub fn distance(&self, p: V3) -> f32 {
        let ab = sub(self.b, self.a);
        let ap = sub(p, self.a);
        let len2 = dot(ab, ab);
        let t = if len2 > 0.0 {
            (dot(ap, ab) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        norm(sub(ap, scale(ab, t)))
    }

    /// Lowest and highest `w` reached by the tube, padded by `pad`.
    pub fn w_range(&self, pad: f32) -> (f32, f32) {
        let lo = self.a[2].min(self.b[2]) - self.r - pad;
        let hi = self.a[2].max(self.b[2]) + self.r + pad;
        (lo, hi)
    }
}

/// Parameters of one tree.
pub(crate) struct Growth {
    pub root: V3,
    pub dir: V3,
    pub r0: f32,
    pub len0: f32,
    pub generations: u32,
    pub r_min: f32,
}

/// Grows a tree from `g.root`; `target` draws a random point the branches should head for
/// (inside the lung) and `inside` says whether a point is still within the organ (branches that
/// leave it stop).
pub(crate) fn grow(
    g: &Growth,
    rng: &mut SplitMix64,
    target: &mut dyn FnMut(&mut SplitMix64) -> V3,
    inside: &dyn Fn(V3) -> bool,
    out: &mut Vec<Segment>,
) {
    // Explicit stack: (start, direction, radius, length, generation, goal). Each subtree heads
    // for its own goal; its children pick goals scattered around it, so branches fan out
    // instead of zig-zagging.
    let mut stack = vec![(g.root, normalize(g.dir), g.r0, g.len0, 0u32, None::<V3>)];
    while let Some((p, dir, r, len, generation, goal)) = stack.pop() {
        let end = add(p, scale(dir, len));
        out.push(Segment { a: p, b: end, r });
        if generation + 1 >= g.generations || r < g.r_min {
            continue;
        }
        if generation >= 3 && !inside(end) {
            continue;
        }
        let children = if rng.chance(0.15) { 3 } else { 2 };
        for _ in 0..children {
            let t = match goal {
                None => target(rng),
                Some(goal) => {
                    let spread = 0.5 * norm(sub(goal, end)) + 2.0 * len;
                    let jitter = [0; 3].map(|_| rng.range(-1.0, 1.0) as f32 * spread);
                    add(goal, jitter)
                }
            };
            let towards = normalize(sub(t, end));
            let d = normalize(add(scale(dir, 0.2), scale(towards, 0.8)));
            let rc = r * rng.range(0.7, 0.82) as f32;
            let lc = len * rng.range(0.78, 0.9) as f32;
            stack.push((end, d, rc, lc, generation + 1, Some(t)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_to_segment_matches_geometry() {
        let s = Segment {
            a: [0.0, 0.0, 0.0],
            b: [10.0, 0.0, 0.0],
            r: 1.0,
        };
        assert!((s.distance([5.0, 3.0, 4.0]) - 5.0).abs() < 1e-5);
        assert!((s.distance([-3.0, 4.0, 0.0]) - 5.0).abs() < 1e-5);
        assert!((s.distance([13.0, 0.0, 4.0]) - 5.0).abs() < 1e-5);
    }

    #[test]
    fn trees_thin_towards_the_periphery() {
        let g = Growth {
            root: [0.0; 3],
            dir: [1.0, 0.0, 0.0],
            r0: 8.0,
            len0: 30.0,
            generations: 6,
            r_min: 0.5,
        };
        let mut rng = SplitMix64::from_seed(1);
        let mut out = Vec::new();
        grow(
            &g,
            &mut rng,
            &mut |r| [r.range(-100.0, 100.0) as f32, 50.0, 0.0],
            &|_| true,
            &mut out,
        );
        assert!(out.len() > 30);
        // Every segment is thinner than the one it starts from.
        for s in &out[1..] {
            let parent = out
                .iter()
                .find(|p| p.b == s.a)
                .expect("child starts at a parent's end");
            assert!(s.r < parent.r);
        }
    }
}
