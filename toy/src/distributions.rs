//! The playground's 2-D distributions, parsed from spec strings such as
//! `fat-circle:r=20,sigma=4`, `circle:size=20,sigma=0.25,modes=3` or `csv:points.csv`.
//!
//! | spec | distribution |
//! |---|---|
//! | `fat-circle:r=R,sigma=S` | angle ~ U(0, 2π), point = R·dir + N(0,1)·S·dir (radial noise only) |
//! | `circle:size=R,sigma=S[,modes=M]` | Gaussian mixture on the 10 tenth roots of unity scaled by R |
//! | `grid:size=N,sigma=S[,modes=M]` | Gaussian mixture on the integer grid {0..N−1}² |
//! | `grid2d:size=N` | uniform on the unit segments from each integer point of {0..N}² rightwards or upwards |
//! | `spiral:rotations=K,r-step=A,r0=B` | uniform in angle on the spiral r = B + A·(turns) |
//! | `csv:PATH` | the rows of a CSV file, drawn uniformly with replacement |
//!
//! `modes=M` keeps the first M centres. The circle's centres follow the playground's order
//! (that of `numpy.roots` for z¹⁰ = 1), so `modes=3` is the contiguous arc at 144°, 180° and
//! 216°, the study's Source-II.

use rand::Rng;
use rand_distr::StandardNormal;
use std::f64::consts::PI;
use std::path::PathBuf;
use whichgan::{Error, Points, Result};

/// A 2-D distribution that can be sampled.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    FatCircle {
        r: f64,
        sigma: f64,
    },
    Mixture {
        centres: Vec<[f64; 2]>,
        sigma: f64,
    },
    Grid2d {
        size: usize,
    },
    Spiral {
        rotations: f64,
        r_step: f64,
        r0: f64,
    },
    Points {
        path: PathBuf,
        points: Vec<[f64; 2]>,
    },
}

impl std::str::FromStr for Distribution {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
        if kind == "csv" {
            return Distribution::from_csv(PathBuf::from(args));
        }
        let mut params = Params::parse(spec, args)?;
        let dist = match kind {
            "fat-circle" => Distribution::FatCircle {
                r: params.take("r", None)?,
                sigma: params.take_positive("sigma", None)?,
            },
            "circle" | "grid" => {
                let size = params.take_positive("size", None)?;
                let sigma = params.take_positive("sigma", None)?;
                let mut centres = if kind == "circle" {
                    circle_centres(size)
                } else {
                    grid_centres(params.whole("size", size, MAX_GRID_SIZE)?)
                };
                let all = centres.len();
                let modes = params.take("modes", Some(all as f64))?;
                let modes = params.whole("modes", modes, usize::MAX)?;
                if modes == 0 || modes > all {
                    return Err(params.error(&format!("modes must be 1..={all}, got {modes}")));
                }
                centres.truncate(modes);
                Distribution::Mixture { centres, sigma }
            }
            "grid2d" => {
                let size = params.take_positive("size", Some(3.0))?;
                Distribution::Grid2d {
                    size: params.whole("size", size, MAX_GRID2D_SIZE)?,
                }
            }
            "spiral" => Distribution::Spiral {
                rotations: params.take("rotations", Some(5.0))?,
                r_step: params.take("r-step", Some(0.2))?,
                r0: params.take("r0", Some(1.0))?,
            },
            _ => {
                return Err(Error::invalid(format!(
                    "unknown distribution '{kind}' in '{spec}' \
                     (known: fat-circle, circle, grid, grid2d, spiral, csv)"
                )))
            }
        };
        params.finish()?;
        Ok(dist)
    }
}

impl Distribution {
    fn from_csv(path: PathBuf) -> Result<Self> {
        let points = whichgan::io::load_points(&path)?;
        if points.dim() != 2 {
            return Err(Error::in_file(
                &path,
                format!("expected 2 columns of coordinates, found {}", points.dim()),
            ));
        }
        let points = (0..points.len())
            .map(|i| [points.row(i)[0], points.row(i)[1]])
            .collect();
        Ok(Distribution::Points { path, points })
    }

    /// The mixture's centres (modes), if it is a mixture.
    pub fn centres(&self) -> Option<&[[f64; 2]]> {
        match self {
            Distribution::Mixture { centres, .. } => Some(centres),
            _ => None,
        }
    }

    /// The mixture's component standard deviation, if it is a mixture.
    pub fn sigma(&self) -> Option<f64> {
        match self {
            Distribution::Mixture { sigma, .. } => Some(*sigma),
            _ => None,
        }
    }

    /// `n` independent samples.
    pub fn sample(&self, rng: &mut impl Rng, n: usize) -> Vec<[f64; 2]> {
        let normal = |rng: &mut dyn rand::RngCore| -> f64 { rng.sample(StandardNormal) };
        (0..n)
            .map(|_| match self {
                Distribution::FatCircle { r, sigma } => {
                    let angle = 2.0 * PI * rng.random::<f64>();
                    let radius = r + sigma * normal(rng);
                    [radius * angle.sin(), radius * angle.cos()]
                }
                Distribution::Mixture { centres, sigma } => {
                    let c = centres[rng.random_range(0..centres.len())];
                    [c[0] + sigma * normal(rng), c[1] + sigma * normal(rng)]
                }
                Distribution::Grid2d { size } => {
                    let mut p = [
                        rng.random_range(0..=*size) as f64,
                        rng.random_range(0..=*size) as f64,
                    ];
                    let shift: f64 = rng.random();
                    p[usize::from(rng.random::<bool>())] += shift;
                    p
                }
                Distribution::Spiral {
                    rotations,
                    r_step,
                    r0,
                } => {
                    let turns = rng.random::<f64>() * rotations;
                    let (angle, radius) = (2.0 * PI * turns, r0 + turns * r_step);
                    [radius * angle.sin(), radius * angle.cos()]
                }
                Distribution::Points { points, .. } => points[rng.random_range(0..points.len())],
            })
            .collect()
    }

    /// `n` samples as a point set.
    pub fn sample_points(&self, rng: &mut impl Rng, n: usize) -> Points {
        let flat = self.sample(rng, n).concat();
        Points::new(n, 2, flat).expect("finite samples")
    }
}

/// The 10 tenth roots of unity scaled by `size`, in `numpy.roots` order.
fn circle_centres(size: f64) -> Vec<[f64; 2]> {
    // numpy.roots([1, 0, …, 0, −1]) returns e^{2πik/10} for these k, in this order.
    const NUMPY_ORDER: [u32; 10] = [5, 4, 6, 3, 7, 2, 8, 0, 1, 9];
    NUMPY_ORDER
        .iter()
        .map(|&k| {
            let a = 2.0 * PI * k as f64 / 10.0;
            [size * a.cos(), size * a.sin()]
        })
        .collect()
}

/// The integer grid {0..size−1}², x varying slowest (the playground's `itertools.product`).
fn grid_centres(size: usize) -> Vec<[f64; 2]> {
    (0..size)
        .flat_map(|x| (0..size).map(move |y| [x as f64, y as f64]))
        .collect()
}

/// The largest `grid` side: 10 000 mixture centres, far more modes than a toy network covers
/// (larger grids only fill memory with centres).
const MAX_GRID_SIZE: usize = 100;

/// The largest `grid2d` side, as many unit segments per row as a toy network can learn.
const MAX_GRID2D_SIZE: usize = 1000;

/// `key=value` pairs of a spec, consumed one by one so that leftovers can be reported.
struct Params<'a> {
    spec: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn parse(spec: &'a str, args: &'a str) -> Result<Self> {
        let mut pairs = Vec::new();
        for item in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                Error::invalid(format!("'{item}' in '{spec}' is not of the form key=value"))
            })?;
            pairs.push((k.trim(), v.trim()));
        }
        Ok(Params { spec, pairs })
    }

    fn error(&self, message: &str) -> Error {
        Error::invalid(format!("distribution '{}': {message}", self.spec))
    }

    /// The value of `key`, or `default` when absent (`None`: the key is required).
    fn take(&mut self, key: &str, default: Option<f64>) -> Result<f64> {
        match self.pairs.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let (_, v) = self.pairs.remove(i);
                match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(x),
                    _ => Err(self.error(&format!("{key}='{v}' is not a number"))),
                }
            }
            None => default.ok_or_else(|| self.error(&format!("missing {key}=…"))),
        }
    }

    /// As [`Params::take`], for a value that must be above zero (a scale or a count).
    fn take_positive(&mut self, key: &str, default: Option<f64>) -> Result<f64> {
        let value = self.take(key, default)?;
        if value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(&format!("{key} must be above 0, got {value}")))
        }
    }

    /// A count: a whole number up to `max`.
    fn whole(&self, key: &str, value: f64, max: usize) -> Result<usize> {
        if !(value >= 0.0 && value.fract() == 0.0) {
            Err(self.error(&format!("{key} must be a whole number, got {value}")))
        } else if value > max as f64 {
            Err(self.error(&format!("{key} must be at most {max}, got {value}")))
        } else {
            Ok(value as usize)
        }
    }

    fn finish(self) -> Result<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.error(&format!("unknown parameter '{k}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn circle_centres_follow_numpy_roots_order() {
        let c = circle_centres(1.0);
        let angles: Vec<i64> = c
            .iter()
            .map(|p| p[1].atan2(p[0]).to_degrees().round() as i64)
            .collect();
        assert_eq!(angles, [180, 144, -144, 108, -108, 72, -72, 0, 36, -36]);
    }

    #[test]
    fn parses_specs_and_reports_mistakes() {
        let d: Distribution = "circle:size=20,sigma=0.5,modes=3".parse().unwrap();
        assert_eq!(d.centres().unwrap().len(), 3);
        assert_eq!(d.sigma(), Some(0.5));
        assert!(matches!(
            "fat-circle:r=20,sigma=4".parse::<Distribution>().unwrap(),
            Distribution::FatCircle { r, sigma } if r == 20.0 && sigma == 4.0
        ));
        assert_eq!(
            "grid:size=3,sigma=0.1"
                .parse::<Distribution>()
                .unwrap()
                .centres()
                .unwrap()
                .len(),
            9
        );
        for (bad, needle) in [
            ("blob:r=1", "unknown distribution 'blob'"),
            ("fat-circle:r=20", "missing sigma"),
            ("fat-circle:r=x,sigma=1", "r='x' is not a number"),
            ("circle:size=20,sigma=1,modes=11", "modes must be 1..=10"),
            (
                "circle:size=20,sigma=1,colour=red",
                "unknown parameter 'colour'",
            ),
            ("spiral:rotations", "not of the form key=value"),
            ("circle:size=20,sigma=-1", "sigma must be above 0, got -1"),
            ("fat-circle:r=20,sigma=0", "sigma must be above 0"),
            ("grid:size=0,sigma=0.2", "size must be above 0"),
            ("grid2d:size=0", "size must be above 0"),
            (
                "grid:size=100000,sigma=0.2",
                "size must be at most 100, got 100000",
            ),
            ("grid2d:size=1e300", "size must be at most 1000"),
            ("csv:/no/such/file.csv", "no such file"),
        ] {
            let e = bad.parse::<Distribution>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn samples_have_the_stated_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 200_000;
        let fat: Distribution = "fat-circle:r=20,sigma=4".parse().unwrap();
        let radii: Vec<f64> = fat
            .sample(&mut rng, n)
            .iter()
            .map(|p| (p[0] * p[0] + p[1] * p[1]).sqrt())
            .collect();
        let mean = radii.iter().sum::<f64>() / n as f64;
        assert!((mean - 20.0).abs() < 0.05, "{mean}");
        let mix: Distribution = "circle:size=20,sigma=0.25,modes=3".parse().unwrap();
        let centres = mix.centres().unwrap().to_vec();
        for p in mix.sample(&mut rng, 10_000) {
            let d = centres
                .iter()
                .map(|c| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(d < 0.25 * 6.0, "sample {p:?} far from every centre");
        }
        let grid: Distribution = "grid2d:size=3".parse().unwrap();
        for p in grid.sample(&mut rng, 1000) {
            // On a unit segment: one coordinate is an integer.
            assert!(p[0].fract() == 0.0 || p[1].fract() == 0.0, "{p:?}");
            assert!(p.iter().all(|&v| (0.0..=4.0).contains(&v)));
        }
    }

    #[test]
    fn same_seed_same_samples() {
        let d: Distribution = "spiral:rotations=5,r-step=0.2,r0=1".parse().unwrap();
        let a = d.sample(&mut ChaCha8Rng::seed_from_u64(3), 50);
        let b = d.sample(&mut ChaCha8Rng::seed_from_u64(3), 50);
        assert_eq!(a, b);
    }
}
