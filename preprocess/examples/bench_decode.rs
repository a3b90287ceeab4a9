//! Benchmark: decode + resize throughput of the shared transform over a folder of images,
//! with a fixed number of threads. Used by `make bench-preprocess`.
//!
//! usage: bench_decode DIR SIZE THREADS REPEATS  -> prints `cxr_images_per_s=<best of REPEATS>`

use std::path::PathBuf;
use std::time::Instant;

use cxr_config::Preprocess;
use cxr_imaging::Transform;
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 5, "usage: bench_decode DIR SIZE THREADS REPEATS");
    let dir = PathBuf::from(&args[1]);
    let size: u32 = args[2].parse()?;
    let threads: usize = args[3].parse()?;
    let repeats: usize = args[4].parse()?;
    let files = cxr_imaging::list_files(&dir)?;
    let transform = Transform::from_config(&Preprocess { size: [size, size], ..Preprocess::default() });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let mut best = 0.0f64;
    for _ in 0..repeats {
        let started = Instant::now();
        let ok = pool.install(|| files.par_iter().filter(|p| transform.apply_file(p).is_ok()).count());
        anyhow::ensure!(ok == files.len(), "{} of {} files failed to decode", files.len() - ok, files.len());
        best = best.max(files.len() as f64 / started.elapsed().as_secs_f64());
    }
    println!("cxr_images_per_s={best:.1}");
    Ok(())
}
