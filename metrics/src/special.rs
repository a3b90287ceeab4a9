//! Tail probabilities for p-values: the complementary error function (normal and
//! chi-square with 1 degree of freedom) and the binomial distribution's lower tail.

use std::f64::consts::PI;

/// The complementary error function, `1 - erf(x)`, to about 1e-15 (absolute): the power
/// series of `erf` below 2.5 and the continued fraction of `erfc` (modified Lentz) above.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if x < 2.5 { 1.0 - erf_series(x) } else { erfc_continued_fraction(x) }
}

/// `erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1))`: every term positive.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (x, x);
    let mut k = 0.0;
    loop {
        k += 1.0;
        term *= 2.0 * x2 / (2.0 * k + 1.0);
        sum += term;
        if term <= sum * 1e-17 || k > 500.0 {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x2).exp() * sum
}

/// `erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`, for `x >= 2.5`.
fn erfc_continued_fraction(x: f64) -> f64 {
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (f, 0.0);
    for k in 1..1000 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// Two-sided p-value of a standard normal statistic: `P(|Z| >= |z|)`.
pub fn normal_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// `P(X >= statistic)` for a chi-square variable with one degree of freedom.
pub fn chi_square_1_sf(statistic: f64) -> f64 {
    if statistic <= 0.0 { 1.0 } else { erfc((statistic / 2.0).sqrt()) }
}

/// `P(X <= k)` for `X ~ Binomial(n, 1/2)`, summed term by term in logarithms (any `n`).
pub fn binomial_half_cdf(k: usize, n: usize) -> f64 {
    if k >= n {
        return 1.0;
    }
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut total = ln_half_n.exp();
    for i in 1..=k {
        ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        total += (ln_choose + ln_half_n).exp();
    }
    total.min(1.0)
}
