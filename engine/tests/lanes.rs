//! A model opened as lanes (an int8 model: one single-thread session per core) runs every
//! batch once and hands the outputs back in batch order, whichever lane finishes first; an
//! error stops it as a loop would.

use std::path::Path;

use cxr_config::{Device, Runtime};
use cxr_engine::{Engine, EngineError, Input, Inputs, Provider};
use cxr_onnx::{DataType, Dim, GraphBuilder, encode_model, tensor};

/// y = x * x, elementwise; as an int8 QDQ model (`quantized`), plus an int8 zero
/// dequantized, which makes it one for the engine and leaves y as it is.
fn model(quantized: bool) -> Vec<u8> {
    let mut g = GraphBuilder::new("square");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3)]);
    let mut y = g.op("Mul", &[&x, &x], &[]);
    if quantized {
        let q = g.initializer(tensor("zero", &[1], &[0i8]));
        let scale = g.initializer(tensor("zero.scale", &[], &[1.0f32]));
        let zero = g.op("DequantizeLinear", &[&q, &scale], &[]);
        y = g.op("Add", &[&y, &zero], &[]);
    }
    g.output(&y, "y", DataType::Float, &[Dim::named("N"), Dim::Fixed(3)]);
    encode_model(&g.into_model("test"))
}

fn square_model() -> Vec<u8> {
    model(true)
}

fn engine(intra_threads: usize) -> Engine {
    Engine::open(&Runtime { intra_threads, ..Runtime::default() }, Device::Cpu).expect("run `make setup` first")
}

#[derive(Debug)]
enum Failure {
    Engine(EngineError),
    Input(usize),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e)
    }
}

/// Batch `i`: `i + 1` rows, every value `i`.
fn batch(i: usize) -> Inputs {
    let rows = i + 1;
    vec![("x".into(), Input::F32(vec![rows, 3], vec![i as f32; rows * 3]))]
}

#[test]
fn lanes_run_every_batch_once_and_deliver_them_in_order() {
    let (mut lanes, provider) = engine(3).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    assert_eq!((lanes.len(), provider), (3, Provider::Cpu));
    let mut seen = Vec::new();
    lanes
        .run_in_order(
            20,
            &["y"],
            |i| {
                // Early batches slowest, so that later ones finish first on the other lanes.
                std::thread::sleep(std::time::Duration::from_millis(20u64.saturating_sub(i as u64 * 4)));
                Ok::<_, Failure>(batch(i))
            },
            |i, outputs| {
                seen.push((i, outputs));
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    for (i, outputs) in seen {
        assert_eq!(outputs, vec![vec![(i * i) as f32; (i + 1) * 3]], "batch {i}");
    }
}

/// Runs `count` batches made by `input` on the int8 model's lanes for `threads` threads:
/// what the run returned, and the batches `sink` got, in the order it got them.
fn delivered_on(
    threads: usize,
    count: usize,
    input: impl Fn(usize) -> Result<Inputs, Failure> + Sync,
) -> (Result<(), Failure>, Vec<usize>) {
    let (mut lanes, _) = engine(threads).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    let mut delivered = Vec::new();
    let result = lanes.run_in_order(count, &["y"], input, |i, _| {
        delivered.push(i);
        Ok(())
    });
    (result, delivered)
}

#[test]
fn the_first_failing_batch_wins_though_a_later_one_fails_sooner() {
    let (result, delivered) = delivered_on(3, 30, |i| match i {
        // Batch 2 fails late, batch 3 at once: as a loop would, the run stops at batch 2.
        2 => {
            std::thread::sleep(std::time::Duration::from_millis(50));
            Err(Failure::Input(2))
        }
        3 => Err(Failure::Input(3)),
        _ => Ok(batch(i)),
    });
    assert!(matches!(result, Err(Failure::Input(2))), "{result:?}");
    assert_eq!(delivered, [0, 1]);
}

#[test]
fn a_panicking_lane_stops_the_others_and_its_panic_goes_on() {
    let (mut lanes, _) = engine(2).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    let started = std::sync::atomic::AtomicUsize::new(0);
    let run = std::panic::AssertUnwindSafe(|| {
        lanes.run_in_order(
            1_000_000,
            &["y"],
            |i| {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i == 5 {
                    panic!("lane panic at batch 5");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok::<_, Failure>(batch(i % 4))
            },
            |_, _| Ok(()),
        )
    });
    let panic = std::panic::catch_unwind(run).expect_err("the lane's panic reaches the caller");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"lane panic at batch 5"));
    // Soon, not at once: the panic hook (a backtrace under RUST_BACKTRACE=1) runs before the
    // unwinding that stops the other lane, which goes on meanwhile (about 100 batches here).
    let started = started.into_inner();
    assert!(started < 10_000, "the other lane stopped soon after the panic: {started} batches started");
}

#[test]
fn an_input_error_stops_the_lanes_and_no_later_batch_is_delivered() {
    let (result, delivered) = delivered_on(2, 50, |i| if i == 4 { Err(Failure::Input(i)) } else { Ok(batch(i)) });
    assert!(matches!(result, Err(Failure::Input(4))), "{result:?}");
    assert_eq!(delivered, [0, 1, 2, 3]);
}

#[test]
fn a_run_error_names_the_model_and_a_sink_error_is_returned() {
    let (mut lanes, _) = engine(2).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    let wrong = |_| Ok::<_, Failure>(vec![("x".into(), Input::F32(vec![1, 2], vec![1.0, 2.0]))]);
    let Err(Failure::Engine(e)) = lanes.run_in_order(3, &["y"], wrong, |_, _| Ok(())) else {
        panic!("a wrong input shape is an engine error")
    };
    assert!(e.to_string().contains("square"), "{e}");
    let result =
        lanes.run_in_order(9, &["y"], |i| Ok(batch(i)), |i, _| if i == 2 { Err(Failure::Input(i)) } else { Ok(()) });
    assert!(matches!(result, Err(Failure::Input(2))), "{result:?}");
}

#[test]
fn lanes_default_to_one_per_core_the_process_may_use_up_to_max_lanes() {
    let (lanes, _) = engine(0).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(lanes.len(), cores.min(cxr_engine::MAX_LANES));
    let (lanes, _) = engine(6).lanes_from_bytes(&square_model(), Path::new("square")).unwrap();
    assert_eq!(lanes.len(), cxr_engine::MAX_LANES);
}

#[test]
fn a_float_model_runs_on_one_session_and_gives_what_the_int8_lanes_give() {
    let (mut float, _) = engine(4).lanes_from_bytes(&model(false), Path::new("float")).unwrap();
    assert_eq!(float.len(), 1);
    let (mut lanes, _) = engine(4).lanes_from_bytes(&model(true), Path::new("square")).unwrap();
    let mut outputs = [Vec::new(), Vec::new()];
    for (runner, out) in [&mut float, &mut lanes].into_iter().zip(&mut outputs) {
        runner
            .run_in_order(
                6,
                &["y"],
                |i| Ok::<_, Failure>(batch(i)),
                |_, y| {
                    out.push(y);
                    Ok(())
                },
            )
            .unwrap();
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn lanes_on_cuda_without_cuda_are_an_error() {
    let engine = Engine::open(&Runtime::default(), Device::Cuda).expect("run `make setup` first");
    if engine.library().to_string_lossy().contains("/cuda/") {
        return; // a machine with the GPU build: this test is about CPU-only machines
    }
    let err = engine.lanes_from_bytes(&square_model(), Path::new("square")).unwrap_err();
    assert!(matches!(err, EngineError::Cuda { .. }), "{err}");
}
