//! What every client command shares: the client options, the [`Ctx`] a command runs with (client, output
//! mode), resolving ACTOR arguments, and turning failures into `error: ...` and an exit code.
//!
//! The client options may come before the command (`tern --json actors ls`) or after it (`tern actors ls
//! --json`); after wins. Then the environment (`TERN_ENDPOINT`, `TERN_ADMIN_TOKEN`), then the defaults. They are
//! not accepted with `tern dev` and `tern node`, whose own options configure the node.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use tern_client::{Actor, Client, ClientError, Error};

use super::CliCommand;
use super::target::ActorRef;

/// The endpoint used when neither `--endpoint` nor `TERN_ENDPOINT` says otherwise.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:6420";

/// Client options given before the command (not propagated to subcommands, so `tern dev` keeps its own).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Client options")]
pub(crate) struct TopClientArgs {
    /// URL of the node to talk to [env: TERN_ENDPOINT] [default: http://127.0.0.1:6420].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Admin token, sent as `Authorization: Bearer` to the admin and inspector API [env: TERN_ADMIN_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl TopClientArgs {
    /// Whether any option was given.
    pub fn is_set(&self) -> bool {
        self.endpoint.is_some() || self.admin_token.is_some() || self.json
    }
}

/// Client options given after a client command (and after any of its subcommands).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Client options")]
pub(crate) struct ClientArgs {
    /// URL of the node to talk to [env: TERN_ENDPOINT] [default: http://127.0.0.1:6420].
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint: Option<String>,
    /// Admin token, sent as `Authorization: Bearer` to the admin and inspector API [env: TERN_ADMIN_TOKEN].
    #[arg(long, value_name = "TOKEN", global = true)]
    pub admin_token: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client options in effect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub endpoint: String,
    pub admin_token: Option<String>,
    pub json: bool,
}

impl Settings {
    /// Options after the command, else before it, else the environment (`env` looks a variable up; empty
    /// values count as unset), else the defaults.
    pub fn resolve(top: &TopClientArgs, sub: &ClientArgs, env: impl Fn(&str) -> Option<String>) -> Settings {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        Settings {
            endpoint: (sub.endpoint.clone().or_else(|| top.endpoint.clone()))
                .or_else(|| env("TERN_ENDPOINT"))
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            admin_token: (sub.admin_token.clone().or_else(|| top.admin_token.clone()))
                .or_else(|| env("TERN_ADMIN_TOKEN")),
            json: sub.json || top.json,
        }
    }
}

/// Why a client command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The client or the server reported an error.
    Client(Error),
    /// Something else, already phrased for the user.
    Message(String),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Client(e)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Client(Error::Actor(e))
    }
}

/// Shorthand for the result of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// What a command runs with.
pub(crate) struct Ctx {
    pub client: Client,
    pub json: bool,
}

impl Ctx {
    /// The id of `actor`: given, or looked up by name and key.
    pub async fn actor_id(&self, actor: &ActorRef) -> CliResult<String> {
        match actor {
            ActorRef::Id(id) => Ok(id.clone()),
            ActorRef::Key { .. } => Ok(self.actor(actor).await?.actor_id),
        }
    }

    /// The full record of `actor` (by id, destroyed actors included; or by name and key).
    pub async fn actor(&self, actor: &ActorRef) -> CliResult<Actor> {
        let found = match actor {
            ActorRef::Id(id) => self.client.actor_by_id(id).await?,
            ActorRef::Key { name, key } => self.client.find_actor(name, key.as_slice()).await?,
        };
        found.ok_or_else(|| ClientError::actor_not_found(actor.describe()).into())
    }
}

/// Runs a client command and turns its outcome into an exit code, printing `error: ...` on failure.
pub(crate) fn run(settings: Settings, command: CliCommand) -> ExitCode {
    init_client_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = settings.endpoint.clone();
    let result = runtime.block_on(async move {
        let mut builder = Client::builder(settings.endpoint);
        if let Some(token) = &settings.admin_token {
            builder = builder.token(token.clone());
        }
        let ctx = Ctx { client: builder.build()?, json: settings.json };
        match command {
            CliCommand::Node(args) => match args.action {
                Some(super::node::NodeAction::Drain(drain)) => super::node::drain(&ctx, drain).await,
                None => unreachable!("`tern node` without an action is not a client command"),
            },
            CliCommand::Dev(_) | CliCommand::Ca(_) => {
                unreachable!("`tern dev` and `tern ca` are not client commands")
            }
            CliCommand::Actors(args) => super::actors::run(&ctx, args.command).await,
            CliCommand::Call(args) => super::call::run(&ctx, args).await,
            CliCommand::Sql(args) => super::sql::run(&ctx, args).await,
            CliCommand::State(args) => super::inspect::state(&ctx, args).await,
            CliCommand::Inspect(args) => super::inspect::inspect(&ctx, args).await,
            CliCommand::Traces(args) => super::inspect::traces(&ctx, args).await,
            CliCommand::Export(args) => super::export::run(&ctx, args).await,
            CliCommand::Members(_) => super::members::run(&ctx).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe_error(&e, &endpoint));
            ExitCode::FAILURE
        }
    }
}

/// The text after `error: `: `group.code: message` for the server's errors, the cause chain for transport
/// failures, with a hint where one helps.
pub(crate) fn describe_error(error: &CliError, endpoint: &str) -> String {
    let error = match error {
        CliError::Message(message) => return message.clone(),
        CliError::Client(e) => e,
    };
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    match error {
        Error::Http(e) if e.is_connect() || e.is_timeout() => {
            text.push_str(&format!("\n  (is a node running at {endpoint}? set --endpoint or TERN_ENDPOINT)"));
        }
        Error::Actor(e)
            if e.status == 401
                || e.is(&ClientError::api_unauthorized())
                || e.is(&ClientError::inspector_unauthorized()) =>
        {
            text.push_str("\n  (pass --admin-token or set TERN_ADMIN_TOKEN)");
        }
        _ => {}
    }
    text
}

fn cause_of<'a>(error: Option<&'a (dyn std::error::Error + 'static)>) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(std::error::Error::source)
}

/// Logs of client commands go to stderr (stdout carries the output), warnings and worse unless `RUST_LOG` says
/// otherwise.
fn init_client_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

/// Writes `text` (and a newline) to stdout. A closed pipe (`tern actors ls | head -1`) is not an error.
pub(crate) fn emit(text: &str) -> CliResult {
    write_stdout(format!("{text}\n").as_bytes())
}

/// Writes raw bytes to stdout; a closed pipe is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Message(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints a JSON value: one compact line in `--json` mode, indented otherwise.
pub(crate) fn emit_json(ctx: &Ctx, value: &serde_json::Value) -> CliResult {
    if ctx.json { emit(&value.to_string()) } else { emit(&pretty_json(value)) }
}

/// A JSON value, indented.
pub(crate) fn pretty_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Serializes a client type to JSON (they all serialize infallibly).
pub(crate) fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn options_after_the_command_win_then_before_then_the_environment() {
        let none = (TopClientArgs::default(), ClientArgs::default());
        let defaults = Settings::resolve(&none.0, &none.1, env(&[]));
        assert_eq!(defaults, Settings { endpoint: DEFAULT_ENDPOINT.into(), admin_token: None, json: false });
        let from_env = Settings::resolve(
            &none.0,
            &none.1,
            env(&[("TERN_ENDPOINT", "http://e:1"), ("TERN_ADMIN_TOKEN", "env-token")]),
        );
        assert_eq!((from_env.endpoint.as_str(), from_env.admin_token.as_deref()), ("http://e:1", Some("env-token")));
        let empty_env = Settings::resolve(&none.0, &none.1, env(&[("TERN_ENDPOINT", ""), ("TERN_ADMIN_TOKEN", "")]));
        assert_eq!(empty_env, defaults);
        let top = TopClientArgs { endpoint: Some("http://top:1".into()), admin_token: Some("top".into()), json: true };
        let sub = ClientArgs { endpoint: Some("http://sub:1".into()), admin_token: None, json: false };
        let both = Settings::resolve(&top, &sub, env(&[("TERN_ENDPOINT", "http://e:1"), ("TERN_ADMIN_TOKEN", "e")]));
        assert_eq!(both, Settings { endpoint: "http://sub:1".into(), admin_token: Some("top".into()), json: true });
    }

    #[test]
    fn errors_read_group_code_message_with_hints() {
        let not_found = CliError::from(ClientError::actor_not_found("no actor `counter` with key [\"k1\"]"));
        let text = describe_error(&not_found, DEFAULT_ENDPOINT);
        assert!(text.starts_with("actor.not_found: "), "{text}");
        let unauthorized = CliError::from(ClientError::new("api", "unauthorized", 401, "Admin token required"));
        assert_eq!(
            describe_error(&unauthorized, DEFAULT_ENDPOINT),
            "api.unauthorized: Admin token required\n  (pass --admin-token or set TERN_ADMIN_TOKEN)"
        );
        assert_eq!(describe_error(&CliError::Message("plain".into()), DEFAULT_ENDPOINT), "plain");
    }
}
