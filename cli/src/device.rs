//! `--device cpu|cuda|auto` of the stages that run models (`train`, `infer`), whose
//! mistakes are answered with the device meant: `gpu: use --device cuda`.

use std::ffi::OsStr;

use clap::ValueEnum;
use clap::builder::{EnumValueParser, PossibleValue, StyledStr, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Where ONNX Runtime runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Auto,
}

impl From<DeviceArg> for cxr_config::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => cxr_config::Device::Cpu,
            DeviceArg::Cuda => cxr_config::Device::Cuda,
            DeviceArg::Auto => cxr_config::Device::Auto,
        }
    }
}

/// Parses `--device` as clap's value enum does, but suggests by meaning first
/// (`gpu` -> `cuda`, where clap's spelling distance would offer `cpu`):
/// `#[arg(long, value_parser = cxr_cli::DeviceParser::new())]`.
#[derive(Debug, Clone)]
pub struct DeviceParser(EnumValueParser<DeviceArg>);

impl DeviceParser {
    pub fn new() -> DeviceParser {
        DeviceParser(EnumValueParser::new())
    }
}

impl Default for DeviceParser {
    fn default() -> Self {
        DeviceParser::new()
    }
}

impl TypedValueParser for DeviceParser {
    type Value = DeviceArg;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<DeviceArg, clap::Error> {
        self.0.parse_ref(cmd, arg, value).map_err(|error| {
            let typed = value.to_string_lossy();
            let names: Vec<PossibleValue> =
                DeviceArg::value_variants().iter().filter_map(ValueEnum::to_possible_value).collect();
            let allowed: Vec<&str> = names.iter().map(PossibleValue::get_name).collect();
            let Some(meant) = cxr_config::did_you_mean(&typed, &allowed) else {
                return error;
            };
            let mut better = clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd);
            let arg_name = arg.map_or_else(|| "--device".to_string(), ToString::to_string);
            better.insert(ContextKind::InvalidArg, ContextValue::String(arg_name));
            better.insert(ContextKind::InvalidValue, ContextValue::String(typed.to_string()));
            better.insert(
                ContextKind::ValidValue,
                ContextValue::Strings(allowed.iter().map(|s| s.to_string()).collect()),
            );
            let hint = StyledStr::from(format!("{typed}: use --device {meant}"));
            better.insert(ContextKind::Suggested, ContextValue::StyledStrs(vec![hint]));
            better
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long, value_parser = DeviceParser::new())]
        device: Option<DeviceArg>,
    }

    #[test]
    fn parses_the_three_devices_and_answers_gpu_with_cuda() {
        let args = Args::try_parse_from(["x", "--device", "cuda"]).unwrap();
        assert_eq!(args.device, Some(DeviceArg::Cuda));
        let err = Args::try_parse_from(["x", "--device", "gpu"]).unwrap_err().to_string();
        assert!(err.contains("gpu: use --device cuda"), "{err}");
        assert!(err.contains("[possible values: cpu, cuda, auto]"), "{err}");
        assert!(!err.contains("'cpu'"), "{err}");
        let err = Args::try_parse_from(["x", "--device", "cpux"]).unwrap_err().to_string();
        assert!(err.contains("cpux: use --device cpu"), "{err}");
        let err = Args::try_parse_from(["x", "--device", "tpu-pod"]).unwrap_err().to_string();
        assert!(err.contains("invalid value 'tpu-pod'"), "{err}");
    }
}
