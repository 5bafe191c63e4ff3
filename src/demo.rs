//! `kafka-edge demo`: a mock cluster, the gateway in front of it, and a client that proves the
//! path works, all in one process. The mock brokers listen on ephemeral loopback ports and
//! advertise them, standing in for the internal addresses of a real cluster.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Message;

use kafka_edge::config::{File, Overrides};
use kafka_edge::Config;

#[derive(Args)]
pub struct DemoArgs {
    /// Where clients bootstrap.
    #[arg(long, default_value = kafka_edge::config::DEFAULT_LISTEN)]
    listen: String,
    /// Broker with node id N is served at port PORT + N.
    #[arg(long, default_value_t = kafka_edge::config::DEFAULT_PORT_BASE)]
    broker_port_base: u16,
    /// Brokers in the mock cluster (node ids 1..=N).
    #[arg(long, default_value_t = 3)]
    brokers: i32,
}

const TOPIC: &str = "kafka-edge-demo";
const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let cluster = MockCluster::new(args.brokers).context("cannot start the mock cluster")?;
    let upstream = cluster.bootstrap_servers();
    let config = Config::resolve(
        File::default(),
        Overrides {
            bootstrap_servers: upstream.split(',').map(str::to_owned).collect(),
            listen: Some(args.listen),
            advertised_host: None,
            broker_port_base: Some(args.broker_port_base),
            admin_listen: None,
        },
    )?;
    let bootstrap = kafka_edge::config::advertised_bootstrap(&config);
    tracing::info!(upstream = %upstream, "mock cluster started; its brokers stand in for unreachable internal addresses");

    let listeners = super::bind(&config).await?;
    let gateway = tokio::spawn(super::serve(listeners, config));
    match check(&bootstrap).await {
        Ok(()) => tracing::info!("demo: try `kcat -b {bootstrap} -L`; Ctrl-C stops"),
        Err(e) => tracing::error!("demo check failed: {e:#}"),
    }
    gateway.await.context("gateway task failed")??;
    drop(cluster);
    Ok(())
}

/// Lists brokers, produces and consumes through the gateway, and says what the client saw.
async fn check(bootstrap: &str) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()?;
    // A blocking librdkafka call: off the single-threaded main runtime, which also accepts
    // the connections this very call makes.
    let client = producer.clone();
    let metadata =
        tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, TIMEOUT))
            .await
            .context("metadata task failed")??;
    for broker in metadata.brokers() {
        tracing::info!(
            "demo client sees broker {} at {}:{}",
            broker.id(),
            broker.host(),
            broker.port()
        );
    }
    for i in 0..5 {
        let value = format!("hello {i}");
        producer
            .send(FutureRecord::<(), _>::to(TOPIC).payload(&value), TIMEOUT)
            .await
            .map_err(|(e, _)| e)?;
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-edge-demo")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[TOPIC])?;
    let mut seen = 0;
    while seen < 5 {
        let message = tokio::time::timeout(TIMEOUT, consumer.recv())
            .await
            .context("no message within 10 s")??;
        seen += 1;
        tracing::info!(
            "demo client consumed {:?} from partition {} through the gateway",
            String::from_utf8_lossy(message.payload().unwrap_or_default()),
            message.partition()
        );
    }
    Ok(())
}
