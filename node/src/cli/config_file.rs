//! `--config FILE` (env `TERN_CONFIG`): a subcommand's options from a TOML file, e.g. `tern node --config
//! node.toml`. The file's keys are the subcommand's long flag names without their dashes (`region = "iad"`,
//! `quic-listen = "10.0.0.1:7420"`, `join = ["10.0.0.1:7420", "dns:tern.internal"]`, `fsync = true`,
//! `max-open-databases = 8192`): a string or a number for an option, an array of them for an option that may be
//! repeated (`join`, `voters`), `true` or `false` for a flag.
//!
//! Precedence: command line, then environment variables, then the file, then the defaults. The command line is
//! first parsed leniently (clap's `ignore_errors`, so the options the file will supply may be missing), which says
//! where `--config` is and, for every option, whether the command line or the environment already set it; each key
//! of the file that neither set becomes `--KEY=VALUE` arguments appended to the command line, and the whole is
//! parsed as usual, so clap validates the file's values as it does typed ones. An unreadable file, invalid TOML, an
//! unknown key or a value of the wrong type is a usage error (exit code 2) naming the file and the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Parser};

/// The id of the argument that names the config file, in the subcommands that take one.
const CONFIG: &str = "config";

/// Parses `args` (the program name first) as `P`, with the options of the config file that the subcommand's
/// `--config` names, where the command line and the environment leave them unset.
pub(super) fn parse<P: Parser>(args: Vec<OsString>) -> Result<P, clap::Error> {
    // An error here is --help or --version (the rest are ignored): the real parse prints it.
    let Ok(partial) = P::command().ignore_errors(true).try_get_matches_from(&args) else {
        return P::try_parse_from(args);
    };
    let mut command = P::command();
    command.build();
    let Some((name, matches)) = partial.subcommand() else { return P::try_parse_from(args) };
    let Some(subcommand) = command.find_subcommand_mut(name) else { return P::try_parse_from(args) };
    let path = match subcommand.get_arguments().any(|a| a.get_id() == CONFIG) {
        true => matches.get_raw(CONFIG).and_then(|mut values| values.next()).map(PathBuf::from),
        false => None,
    };
    let Some(path) = path else { return P::try_parse_from(args) };
    let options = read(subcommand, matches, &path)?;
    let all = args.into_iter().chain(options.iter().flat_map(|(_, values)| values.iter().map(OsString::from)));
    P::try_parse_from(all).map_err(|error| with_origin(error, &path, &options))
}

/// The options of the config file at `path` for `command` (a built subcommand) as `(key, arguments)`, without
/// the keys that `matches` (the lenient parse) has from the command line or the environment.
fn read(command: &mut Command, matches: &ArgMatches, path: &Path) -> Result<Vec<(String, Vec<String>)>, clap::Error> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| command.error(ErrorKind::Io, format!("cannot read the config file {file}: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e| {
        command.error(ErrorKind::InvalidValue, format!("the config file {file} is not valid TOML: {e}"))
    })?;
    let mut options = Vec::new();
    for (key, value) in table {
        let settable = |a: &&Arg| {
            a.get_long() == Some(key.as_str())
                && a.get_id() != CONFIG
                && (a.get_action().takes_values() || matches!(a.get_action(), ArgAction::SetTrue))
        };
        let Some(arg) = command.get_arguments().find(settable) else {
            let name = command.get_bin_name().unwrap_or(command.get_name()).to_string();
            let message = format!("unknown key `{key}` in the config file {file}: `{name}` has no --{key}");
            return Err(command.error(ErrorKind::UnknownArgument, message));
        };
        let set = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        match arguments(arg, &key, &value) {
            Ok(_) if set => {}
            Ok(values) => options.push((key, values)),
            Err(expected) => {
                let message =
                    format!("`{key}` in the config file {file}: expected {expected}, not {}", value.type_str());
                return Err(command.error(ErrorKind::InvalidValue, message));
            }
        }
    }
    Ok(options)
}

/// The command-line arguments that stand for `key = value`, or what `arg` takes instead.
fn arguments(arg: &Arg, key: &str, value: &toml::Value) -> Result<Vec<String>, &'static str> {
    if !arg.get_action().takes_values() {
        return match value {
            toml::Value::Boolean(set) => Ok(set.then(|| format!("--{key}")).into_iter().collect()),
            _ => Err("true or false"),
        };
    }
    let repeated = matches!(arg.get_action(), ArgAction::Append);
    let items = match value {
        toml::Value::Array(items) if repeated => items.iter().collect(),
        toml::Value::Array(_) => return Err("a string or a number (one value)"),
        value => vec![value],
    };
    let expected = if repeated { "a string, a number or an array of them" } else { "a string or a number" };
    let argument = |item: &toml::Value| match item {
        toml::Value::String(s) => Ok(format!("--{key}={s}")),
        toml::Value::Integer(n) => Ok(format!("--{key}={n}")),
        toml::Value::Float(x) => Ok(format!("--{key}={x}")),
        _ => Err(expected),
    };
    items.into_iter().map(argument).collect()
}

/// `error` with a tip naming the config file when the value it is about came from there.
fn with_origin(mut error: clap::Error, path: &Path, options: &[(String, Vec<String>)]) -> clap::Error {
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) =
        (error.get(ContextKind::InvalidArg), error.get(ContextKind::InvalidValue))
    else {
        return error;
    };
    let flag = arg.split(' ').next().unwrap_or_default();
    let from_file = |(key, values): &&(String, Vec<String>)| {
        flag.strip_prefix("--") == Some(key.as_str()) && values.contains(&format!("{flag}={value}"))
    };
    let Some((key, _)) = options.iter().find(from_file) else { return error };
    let tip = StyledStr::from(format!("`{key}` comes from the config file {}", path.display()));
    error.insert(ContextKind::Suggested, ContextValue::StyledStrs(vec![tip]));
    error
}

#[cfg(test)]
mod tests {
    use clap::{Args, Subcommand};

    use super::*;

    /// A command with what config files must handle: a required option, a number with a default, a repeated
    /// option split on commas, a flag.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        Run(RunArgs),
        Other,
    }

    #[derive(Debug, Args, PartialEq)]
    struct RunArgs {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 1)]
        port: u16,
        #[arg(long, value_delimiter = ',')]
        seed: Vec<String>,
        #[arg(long)]
        fast: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    }

    /// A config file holding `toml`, removed when dropped.
    fn file(toml: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        file
    }

    fn run(file: &tempfile::NamedTempFile, args: &[&str]) -> Result<RunArgs, String> {
        let path = file.path().to_str().unwrap();
        let all = ["prog", "run", "--config", path].iter().chain(args).map(OsString::from).collect();
        match parse::<Cli>(all).map_err(|e| e.to_string())?.command {
            Sub::Run(args) => Ok(args),
            Sub::Other => panic!("not run"),
        }
    }

    #[test]
    fn keys_are_flags_and_the_command_line_wins() {
        let config = file("name = \"a\"\nport = 7\nseed = [\"x:1\", \"y:2,z:3\"]\nfast = true\n");
        let from_file = run(&config, &[]).unwrap();
        assert_eq!((from_file.name.as_str(), from_file.port, from_file.fast), ("a", 7, true));
        assert_eq!(from_file.seed, ["x:1", "y:2", "z:3"]);
        let overridden = run(&config, &["--name", "b", "--seed", "w:4", "--port=9"]).unwrap();
        assert_eq!((overridden.name.as_str(), overridden.port, overridden.seed), ("b", 9, vec!["w:4".to_string()]));
        let typo = run(&config, &["--port", "x"]).unwrap_err();
        assert!(typo.contains("'x'") && !typo.contains("config file"), "a command-line error, not the file's: {typo}");
        let off = run(&file("name = \"a\"\nfast = false\nseed = []"), &[]).unwrap();
        assert_eq!((off.fast, off.port, off.seed), (false, 1, vec![]));
    }

    #[test]
    fn without_a_config_file_nothing_changes() {
        let plain = |args: &[&str]| parse::<Cli>(args.iter().map(OsString::from).collect());
        assert!(matches!(plain(&["prog", "other"]).unwrap().command, Sub::Other));
        let Sub::Run(args) = plain(&["prog", "run", "--name", "n"]).unwrap().command else { panic!("not run") };
        assert_eq!((args.name.as_str(), args.config), ("n", None));
        assert!(plain(&["prog", "run"]).unwrap_err().to_string().contains("--name"));
        assert_eq!(plain(&["prog", "run", "--help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
    }

    #[test]
    fn bad_files_keys_and_values_are_usage_errors_naming_them() {
        let error = |toml: &str| {
            let config = file(toml);
            let all = ["prog", "run", "--config", config.path().to_str().unwrap()].map(OsString::from).to_vec();
            let error = parse::<Cli>(all).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{error}");
            assert!(error.to_string().contains(&config.path().display().to_string()), "{error}");
            error.to_string()
        };
        let unknown = error("name = \"a\"\nnmae = \"b\"");
        assert!(unknown.contains("unknown key `nmae`") && unknown.contains("no --nmae"), "{unknown}");
        assert!(error("config = \"other.toml\"").contains("unknown key `config`"));
        assert!(error("help = true").contains("unknown key `help`"));
        let table = error("name = \"a\"\n[port]\nx = 1");
        assert!(table.contains("`port` in the config file") && table.contains("not table"), "{table}");
        assert!(error("name = [\"a\", \"b\"]").contains("`name` in the config file"));
        assert!(error("name = \"a\"\nfast = \"yes\"").contains("expected true or false, not string"));
        assert!(error("name = \"a\"\nseed = [{ a = 1 }]").contains("`seed`"));
        assert!(error("name = ").contains("not valid TOML"));
        let invalid = error("name = \"a\"\nport = 70000");
        assert!(invalid.contains("70000") && invalid.contains("`port` comes from the config file"), "{invalid}");

        let missing = ["prog", "run", "--config", "/nonexistent/tern.toml"].map(OsString::from).to_vec();
        let missing = parse::<Cli>(missing).unwrap_err();
        assert_eq!((missing.kind(), missing.exit_code()), (ErrorKind::Io, 2));
        assert!(missing.to_string().contains("cannot read the config file /nonexistent/tern.toml"), "{missing}");
    }
}
