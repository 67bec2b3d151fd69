//! `sleeve-edge run`'s store integration: the `--http*` and `--mqtt*` options, and
//! [`Integration`], which starts the server and the MQTT publisher around one [`Hub`] and
//! is fed by the kiosk loop's per-frame observer.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::display::Screen;
use crate::engine::Engine;
use crate::kiosk::RunSummary;
#[cfg(feature = "mqtt")]
use crate::mqtt::{MqttOptions, MqttPublisher};
use crate::pipeline::FrameReport;
use crate::serve::api::EngineFactory;
use crate::serve::hub::DEFAULT_RING;
use crate::serve::{Classifier, Hub, RunInfo, ServeOptions, Server, TOKEN_ENV, WebScreen};

/// Default MQTT topic prefix.
pub const DEFAULT_MQTT_TOPIC: &str = "sleeve/kiosk";

#[cfg(not(feature = "mqtt"))]
use mqtt_off::{MqttOptions, MqttPublisher};

/// Stand-ins when built without the `mqtt` feature: `--mqtt` is refused at start-up.
#[cfg(not(feature = "mqtt"))]
mod mqtt_off {
    use std::sync::Arc;

    use crate::serve::Hub;

    pub struct MqttOptions;

    impl MqttOptions {
        pub fn parse(_url: &str, _topic: &str) -> anyhow::Result<Self> {
            anyhow::bail!("--mqtt: this sleeve-edge was built without the `mqtt` feature")
        }
    }

    pub struct MqttPublisher;

    impl MqttPublisher {
        pub fn start(_o: MqttOptions, _hub: Arc<Hub>) -> std::io::Result<Self> {
            Ok(Self)
        }

        pub fn stop(self) {}
    }
}

/// Store-integration options of `sleeve-edge run`.
#[derive(Args, Debug, Clone, Default)]
pub struct IntegrationArgs {
    /// Serve the local HTTP API and staff page on ADDR:PORT (a bare port means
    /// 127.0.0.1:PORT). Off by default. Any non-loopback address needs a token.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<String>,
    /// Bearer token for /api/* (at least 16 characters); default: $SLEEVE_HTTP_TOKEN.
    /// Required when --http is not a loopback address.
    #[arg(long, value_name = "TOKEN", requires = "http")]
    pub http_token: Option<String>,
    /// Largest POST /api/classify upload, in MiB.
    #[arg(long, default_value_t = 8, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub http_max_upload_mib: u64,
    /// Publish every Nth screen to GET /api/screen.jpg.
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub http_screen_every: u64,
    /// Decisions kept for GET /api/decisions.
    #[arg(long, default_value_t = DEFAULT_RING as u64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub http_history: u64,
    /// Publish decisions and status to this MQTT broker (mqtt://[user[:password]@]host[:port]).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// MQTT topic prefix: PREFIX/decision, PREFIX/record, PREFIX/status, PREFIX/available.
    #[arg(long, default_value = DEFAULT_MQTT_TOPIC, value_name = "PREFIX")]
    pub mqtt_topic: String,
}

/// Parses `--http`: `ADDR:PORT`, `[v6]:PORT` or a bare port (loopback).
pub fn parse_http_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.to_socket_addrs()
        .with_context(|| format!("--http '{s}': expected ADDR:PORT, e.g. 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("--http '{s}': the name resolves to no address"))
}

/// The configuration checked before anything is loaded.
pub struct Plan {
    serve: Option<ServeOptions>,
    mqtt: Option<MqttOptions>,
    args: IntegrationArgs,
}

impl IntegrationArgs {
    /// Whether anything is enabled.
    pub fn enabled(&self) -> bool {
        self.http.is_some() || self.mqtt.is_some()
    }

    /// Validates addresses, token and broker URL (a refused combination fails here,
    /// before the models load).
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let serve = match &self.http {
            None => None,
            Some(a) => {
                let mut o = ServeOptions::new(parse_http_addr(a)?);
                o.token = self
                    .http_token
                    .clone()
                    .or_else(|| std::env::var(TOKEN_ENV).ok())
                    .filter(|t| !t.is_empty());
                o.max_upload = (self.http_max_upload_mib << 20) as usize;
                crate::serve::check_security(&o.addr, o.token.as_deref())?;
                Some(o)
            }
        };
        let mqtt = match &self.mqtt {
            None => None,
            Some(url) => Some(MqttOptions::parse(url, &self.mqtt_topic)?),
        };
        Ok(Plan {
            serve,
            mqtt,
            args: self.clone(),
        })
    }
}

/// The running server and publisher.
pub struct Integration {
    hub: Arc<Hub>,
    server: Option<Server>,
    mqtt: Option<MqttPublisher>,
    screen_every: Option<u64>,
}

impl Plan {
    /// Starts what was asked for. `engine` describes the run; `classify` builds the
    /// second engine behind `POST /api/classify` on its first use.
    pub fn start(
        self,
        engine: &Engine,
        bundle: &std::path::Path,
        f16: bool,
        classify: EngineFactory,
    ) -> anyhow::Result<Integration> {
        // The name only (the bundle was verified when the engine loaded).
        let name = std::fs::read_to_string(bundle.join(sleeve_shared::manifest::MANIFEST_FILE))
            .ok()
            .and_then(|t| sleeve_shared::manifest::BundleManifest::from_json(&t).ok())
            .map(|m| m.name)
            .unwrap_or_default();
        let info = RunInfo {
            bundle: name,
            bundle_path: PathBuf::from(bundle).display().to_string(),
            labels: engine.labels().names().to_vec(),
            classifier_precision: engine.classifier().precision().as_str().to_string(),
            detector_precision: engine
                .detector()
                .map(|d| d.precision().as_str().to_string()),
            f16,
            source: String::new(),
        };
        let hub = Hub::new(info, self.args.http_history as usize);
        let server = match self.serve {
            Some(o) => Some(Server::start(
                o,
                hub.clone(),
                Some(Classifier::lazy(classify)),
            )?),
            None => None,
        };
        let mqtt = match self.mqtt {
            Some(o) => Some(MqttPublisher::start(o, hub.clone()).context("starting MQTT")?),
            None => None,
        };
        Ok(Integration {
            screen_every: server.as_ref().map(|_| self.args.http_screen_every),
            hub,
            server,
            mqtt,
        })
    }
}

impl Integration {
    /// The shared hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The HTTP server's bound address, if serving.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::addr)
    }

    /// The screen that feeds `GET /api/screen.jpg`, when serving.
    pub fn screen(&self) -> Option<Box<dyn Screen>> {
        self.screen_every
            .map(|n| Box::new(WebScreen::new(self.hub.clone(), n)) as Box<dyn Screen>)
    }

    /// Per-frame observer for [`crate::kiosk::Kiosk::run`].
    pub fn observe(&self, report: &FrameReport) {
        self.hub.observe(report);
    }

    /// Ends the run: status shows `ended`, MQTT says `offline`, the server stops.
    pub fn finish(self, summary: &RunSummary) {
        self.hub.finish(summary);
        if let Some(m) = self.mqtt {
            m.stop();
        }
        if let Some(s) = self.server {
            s.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_addresses_default_to_loopback() {
        assert_eq!(
            parse_http_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_http_addr("0.0.0.0:9000").unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
        assert_eq!(
            parse_http_addr("[::1]:81").unwrap(),
            "[::1]:81".parse().unwrap()
        );
        for bad in ["", "x", "127.0.0.1", "127.0.0.1:99999", "1.2.3.4:port"] {
            let e = parse_http_addr(bad).unwrap_err().to_string();
            assert!(e.contains("--http"), "{bad}: {e}");
        }
    }

    #[test]
    fn plan_refuses_an_open_address_without_a_token() {
        let args = IntegrationArgs {
            http: Some("0.0.0.0:8080".into()),
            http_max_upload_mib: 8,
            http_screen_every: 5,
            http_history: 16,
            mqtt_topic: DEFAULT_MQTT_TOPIC.into(),
            ..IntegrationArgs::default()
        };
        // SLEEVE_HTTP_TOKEN may be set where the tests run: only assert when it is not.
        if std::env::var_os(TOKEN_ENV).is_none() {
            let e = args.plan().err().expect("refused").to_string();
            assert!(e.contains("refusing to serve on 0.0.0.0:8080"), "{e}");
        }
        let with_token = IntegrationArgs {
            http_token: Some("0123456789abcdef".into()),
            ..args
        };
        assert!(with_token.plan().is_ok());
    }
}
