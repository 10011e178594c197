//! The AWS Lambda function (`provided.al2023`, packaged as `bootstrap`): ISP Monitor's heartbeat
//! receiver behind a Function URL. Lambda starts it with `AWS_LAMBDA_RUNTIME_API` set; it polls
//! the Runtime API for invocations and answers each through `handler::aws` (docs/platform.md §13).
//!
//! Configuration (environment, interface C): `ISP_MONITOR_FUNCTION_KEY` (required: the URL is
//! public, so the function checks the key itself), `ISP_MONITOR_SNS_TOPIC_ARN` (optional: outage
//! emails through `isp_monitor::notify::SnsPublisher`; unset, no emails), and
//! `ISP_MONITOR_SNS_ENDPOINT` (optional: another SNS endpoint). Without a usable key the function
//! fails closed: it reports an initialization error to the Runtime API (`/runtime/init/error`),
//! prints why on stderr, and exits 1 without serving one request.
//!
//! Reminder role (`ISP_MONITOR_ROLE=reminders`, a second function from the same lambda.zip,
//! invoked only by its EventBridge schedule and with no Function URL): each scheduled event
//! lists this stack's silence alarms in ALARM and publishes one reminder per alarm that has been
//! in ALARM for `ISP_MONITOR_REMINDER_MINUTES` (`isp_monitor::notify::reminders`,
//! docs/platform.md §17). Its configuration (aws/template.yaml sets it): `ISP_MONITOR_SNS_TOPIC_ARN`,
//! `ISP_MONITOR_ALARM_PREFIX` (`<NamePrefix>-silent-`), `ISP_MONITOR_REMINDER_MINUTES` (5, 10, 15,
//! 30 or 60), optionally `ISP_MONITOR_SILENCE_MINUTES` and `ISP_MONITOR_CLOUDWATCH_ENDPOINT` /
//! `ISP_MONITOR_SNS_ENDPOINT` (tests). It needs no function key; a configuration it cannot use is an
//! initialization error, as above. A run that cannot read the alarms or publish a reminder is
//! reported to the Runtime API as a failed invocation (`Reminders.Failed`), with one line saying
//! why and no secret.
//!
//! Exit codes: 1 when it cannot start (no key, not on Lambda) or the runtime loop fails.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use isp_monitor::handler::aws::LambdaFrontEnd;
use isp_monitor::handler::aws::key::FunctionKey;
use isp_monitor::handler::aws::lines::CloudWatchLines;
use isp_monitor::handler::aws::notify::{OutageNotifier, TOPIC_ARN_VAR};
use isp_monitor::notify::SnsOutageNotifier;
use isp_monitor::notify::reminders::{self, Reminders};
use lambda_http::lambda_runtime::{self, Diagnostic, LambdaEvent};
use lambda_http::service_fn;

/// What the Lambda runtime client needs from the environment (Lambda sets them all); checked
/// first so a missing one is a message, not the runtime client's panic.
const LAMBDA_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];
/// How long reporting an initialization error may take.
const INIT_ERROR_TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lambda: error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    if let Some(missing) = LAMBDA_VARS.iter().find(|name| env(name).is_none()) {
        eprintln!(
            "lambda: error: {missing} is not set; this binary runs inside AWS Lambda \
             (provided.al2023), which sets it"
        );
        return ExitCode::from(1);
    }
    if env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_some_and(|v| v.trim().parse::<i32>().is_err()) {
        eprintln!("lambda: error: AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number of MB");
        return ExitCode::from(1);
    }
    if env(reminders::ROLE_ENV).as_deref() == Some(reminders::ROLE_REMINDERS) {
        return runtime.block_on(serve_reminders());
    }
    let key = match FunctionKey::from_env(env) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("lambda: error: {message}");
            runtime.block_on(report_init_error(&message));
            return ExitCode::from(1);
        }
    };
    // Outage emails (src/notify): a broken SNS setting turns them off, never the heartbeats.
    let notifier: Option<Arc<dyn OutageNotifier>> = match SnsOutageNotifier::from_env() {
        Ok(notifier) => notifier.map(|n| Arc::new(n) as Arc<dyn OutageNotifier>),
        Err(err) => {
            eprintln!("lambda: warning: outage emails are off ({TOPIC_ARN_VAR} is set): {err}");
            None
        }
    };
    let front_end = Arc::new(LambdaFrontEnd::new(
        key,
        Arc::new(CloudWatchLines::stdout()),
        notifier,
    ));
    let served = runtime.block_on(lambda_http::run(service_fn(move |request| {
        let front_end = Arc::clone(&front_end);
        async move { Ok::<_, Infallible>(front_end.handle(request).await) }
    })));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lambda: error: the runtime loop failed: {err}");
            ExitCode::from(1)
        }
    }
}

/// The reminder role: one run per scheduled event (docs/platform.md §17).
async fn serve_reminders() -> ExitCode {
    let reminders = match Reminders::from_env() {
        Ok(r) => Arc::new(r),
        Err(message) => {
            let message = format!("reminders: {message}");
            eprintln!("lambda: error: {message}");
            report_init_error(&message).await;
            return ExitCode::from(1);
        }
    };
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let reminders = Arc::clone(&reminders);
        async move {
            if let Err(message) = reminders::check_scheduled_event(&event.payload) {
                eprintln!("lambda: error: reminders: {message}");
                return Err(Diagnostic {
                    error_type: "Reminders.NotScheduled".to_owned(),
                    error_message: message,
                });
            }
            let now = reminders::event_time(&event.payload, chrono::Utc::now());
            match reminders.run(now).await {
                Ok(report) => Ok(serde_json::json!({
                    "in_alarm": report.in_alarm,
                    "reminded": report.sent,
                })),
                Err(message) => {
                    eprintln!("lambda: error: reminders: {message}");
                    Err(Diagnostic {
                        error_type: "Reminders.Failed".to_owned(),
                        error_message: message,
                    })
                }
            }
        }
    }))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lambda: error: the runtime loop failed: {err}");
            ExitCode::from(1)
        }
    }
}

/// Tells Lambda the function cannot start (`POST /runtime/init/error`, docs/platform.md §13),
/// so the invocation fails with `Runtime.InitError` and the reason lands in the function's log.
async fn report_init_error(message: &str) {
    use lambda_runtime_api_client::body::Body;
    let Some(api) = std::env::var("AWS_LAMBDA_RUNTIME_API").ok() else {
        return;
    };
    let Ok(base) = format!("http://{api}").parse::<lambda_http::http::Uri>() else {
        eprintln!("lambda: error: AWS_LAMBDA_RUNTIME_API is not host:port");
        return;
    };
    let Ok(client) = lambda_runtime_api_client::Client::builder()
        .with_endpoint(base)
        .build()
    else {
        return;
    };
    let body = serde_json::json!({"errorMessage": message, "errorType": "Runtime.InitError"});
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()));
    let Ok(request) = request else {
        return;
    };
    match tokio::time::timeout(INIT_ERROR_TIMEOUT, client.call(request)).await {
        Ok(Ok(answer)) if answer.status().is_success() => {}
        Ok(Ok(answer)) => eprintln!(
            "lambda: error: the Runtime API answered {} to the init error",
            answer.status()
        ),
        Ok(Err(err)) => eprintln!("lambda: error: cannot report the init error: {err}"),
        Err(_) => eprintln!("lambda: error: reporting the init error timed out"),
    }
}
