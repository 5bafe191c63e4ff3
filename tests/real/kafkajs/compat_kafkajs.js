#!/usr/bin/env node
// kafkajs runs the compatibility scenario (tests/real/compat_spec.py).
//
//   node compat_kafkajs.js --bootstrap HOST:PORT --tag TAG --ops OP[,OP...]
//        --count N --group-timing SESSION,MAXPOLL,HEARTBEAT --deadlines JSON
//   node compat_kafkajs.js --versions
//
// Prints one JSON line per operation, exactly like compat_client.py:
//   {"op": OP, "ok": bool, "error": "...", "data": {...}, "seconds": S}
// The numbers of the scenario (record count, group timing, deadlines) come
// from the harness on the command line, so compat_spec.py stays the source.

'use strict';

const path = require('path');
const {
  Kafka,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  ConfigResourceTypes,
} = require('kafkajs');

// ------------------------------------------------------------------ codecs
// kafkajs ships gzip only; the other codecs are plugged in here, on pure-JS
// implementations (no native build step).
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');

const lz4js = require('lz4js');
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) {
    return Buffer.from(lz4js.compress(encoder.buffer));
  },
  async decompress(buffer) {
    return Buffer.from(lz4js.decompress(buffer));
  },
});

const { ZstdCodec } = require('zstd-codec');
let zstdReady = null;
function zstd() {
  if (!zstdReady) {
    zstdReady = new Promise((resolve) => ZstdCodec.run((z) => resolve(z)));
  }
  return zstdReady;
}
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    const z = await zstd();
    return Buffer.from(new z.Simple().compress(encoder.buffer, 3));
  },
  async decompress(buffer) {
    const z = await zstd();
    // Streaming: frames from other clients may not carry their content size.
    return Buffer.from(new z.Streaming().decompress(buffer));
  },
});

// ------------------------------------------------------------------ helpers

class OpFailed extends Error {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function valuesFor(prefix, count) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(`${prefix}-${String(i).padStart(3, '0')}`);
  return out;
}

function expectValues(got, want, what) {
  const a = [...got].sort();
  const b = [...want].sort();
  if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
    const missing = b.filter((v) => !got.includes(v)).slice(0, 5);
    const extra = a.filter((v) => !want.includes(v)).slice(0, 5);
    throw new OpFailed(
      `${what}: ${got.length} values, expected ${want.length}; missing ${JSON.stringify(missing)}; ` +
        `unexpected ${JSON.stringify(extra)}`,
    );
  }
}

class Deadline {
  constructor(seconds) {
    this.end = Date.now() + seconds * 1000;
  }
  leftMs(floor = 100) {
    return Math.max(floor, this.end - Date.now());
  }
  passed() {
    return Date.now() >= this.end;
  }
}

async function waitUntil(pred, dl, what) {
  while (!pred()) {
    if (dl.passed()) throw new OpFailed(what());
    await sleep(50);
  }
}

// ------------------------------------------------------------------ driver

const ACKS = { '0': 0, '1': 1, all: -1 };
const PRODUCE = {
  'produce-acks0': ['0', false, CompressionTypes.None],
  'produce-acks1': ['1', false, CompressionTypes.None],
  'produce-acksall': ['all', false, CompressionTypes.None],
  'produce-idempotent': ['all', true, CompressionTypes.None],
  'compress-gzip': ['all', false, CompressionTypes.GZIP],
  'compress-snappy': ['all', false, CompressionTypes.Snappy],
  'compress-lz4': ['all', false, CompressionTypes.LZ4],
  'compress-zstd': ['all', false, CompressionTypes.ZSTD],
};
const TOPIC_OF = {
  'consume-beginning': 'produce-acksall',
  'txn-read-committed': 'txn-commit-abort',
  'admin-describe-configs': 'produce-acksall',
};

class Driver {
  constructor(args) {
    this.args = args;
    this.count = args.count;
    [this.sessionMs, this.maxPollMs, this.heartbeatMs] = args.groupTiming;
    this.clientErrors = [];
    this.kafka = new Kafka({
      clientId: 'kafka-edge-compat',
      brokers: args.bootstrap.split(','),
      connectionTimeout: 5000,
      requestTimeout: 10000,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
      logLevel: logLevel.ERROR,
      logCreator: () => ({ namespace, log }) => {
        const line = `${namespace}: ${log.message}${log.error ? ` (${log.error})` : ''}`;
        this.clientErrors.push(line);
        process.stderr.write(`[kafkajs] ${line}\n`);
      },
    });
    this.groupSeq = 0;
  }

  topic(op) {
    return `${this.args.tag}.${TOPIC_OF[op] || op}`;
  }

  async withAdmin(fn) {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  }

  consumer(groupId, extra = {}) {
    return this.kafka.consumer({
      groupId,
      sessionTimeout: this.sessionMs,
      rebalanceTimeout: this.maxPollMs,
      heartbeatInterval: this.heartbeatMs,
      maxWaitTimeInMs: 200,
      allowAutoTopicCreation: false,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
      ...extra,
    });
  }

  async produce(topic, values, dl, { acks, idempotent, compression, whileOpen, onePerBatch } = {}) {
    const producer = this.kafka.producer({
      idempotent: !!idempotent,
      maxInFlightRequests: idempotent ? 1 : undefined,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    try {
      const messages = values.map((v) => ({ key: v, value: v }));
      const batches = onePerBatch ? messages.map((m) => [m]) : [messages];
      for (const batch of batches) {
        await producer.send({
          topic,
          acks: ACKS[acks || 'all'],
          timeout: dl.leftMs(),
          compression: compression || CompressionTypes.None,
          messages: batch,
        });
      }
      if (whileOpen) await whileOpen();
    } finally {
      await producer.disconnect();
    }
    return { acknowledged: acks === '0' ? 0 : values.length };
  }

  // All records of a topic from the beginning (a fresh group of its own:
  // kafkajs consumers always belong to a group).
  async readBack(topic, count, dl, readCommitted = false) {
    const consumer = this.consumer(`${topic}.read.${process.pid}.${this.groupSeq++}`, {
      readUncommitted: !readCommitted,
    });
    const got = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          got.push(message.value.toString());
        },
      });
      while (got.length < count && !dl.passed()) await sleep(50);
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  async runProduce(op, dl) {
    const [acks, idempotent, compression] = PRODUCE[op];
    const topic = this.topic(op);
    const values = valuesFor(op, this.count);
    let got = [];
    // Read back while the producer is still connected (see compat_client.py).
    const data = await this.produce(topic, values, dl, {
      acks,
      idempotent,
      compression,
      whileOpen: async () => {
        got = await this.readBack(topic, values.length, dl);
      },
      // one send(): all records in one request per broker (see compat_client.py)
    });
    expectValues(got, values, 'read back');
    return data;
  }

  async brokersOf(admin) {
    const cluster = await admin.describeCluster();
    return {
      brokers: cluster.brokers.map((b) => ({ id: b.nodeId, host: b.host, port: b.port })),
      controller_id: cluster.controller,
    };
  }

  async op_metadata(dl) {
    return this.withAdmin(async (admin) => {
      const out = await this.brokersOf(admin);
      const md = await admin.fetchTopicMetadata({ topics: [this.topic('produce-acksall')] });
      out.partitions = md.topics[0].partitions.length;
      return out;
    });
  }

  async op_consume_beginning(dl) {
    const got = await this.readBack(this.topic('consume-beginning'), this.count, dl);
    expectValues(got, valuesFor('produce-acksall', this.count), 'consumed from the beginning');
    return { values: got.length };
  }

  async op_group_rebalance(dl) {
    const topic = this.topic('group-rebalance');
    const group = `${topic}.g`;
    const members = {};
    for (const name of ['A', 'B']) {
      const c = this.consumer(group);
      const m = { consumer: c, assigned: [], seen: [], last: {} };
      c.on(c.events.GROUP_JOIN, (e) => {
        m.assigned = [...(e.payload.memberAssignment[topic] || [])].sort();
      });
      members[name] = m;
    }
    const split = {};
    try {
      for (const m of Object.values(members)) {
        await m.consumer.connect();
        await m.consumer.subscribe({ topics: [topic], fromBeginning: true });
        await m.consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            m.seen.push([partition, message.value.toString()]);
            m.last[partition] = Number(message.offset);
          },
        });
      }
      const splitDone = () => {
        const a = members.A.assigned;
        const b = members.B.assigned;
        return a.length && b.length && [...a, ...b].sort().join() === '0,1,2,3';
      };
      await waitUntil(splitDone, dl, () => `two members never split the 4 partitions: ${JSON.stringify({ A: members.A.assigned, B: members.B.assigned })}`);
      split.A = members.A.assigned;
      split.B = members.B.assigned;
      const values1 = valuesFor('group-1', this.count);
      await this.produce(topic, values1, dl);
      await waitUntil(
        () => members.A.seen.length + members.B.seen.length >= values1.length || dl.passed(),
        dl,
        () => 'unreachable',
      );
      for (const name of ['A', 'B']) {
        if (!members[name].seen.length) throw new OpFailed(`member ${name} consumed nothing of the first batch`);
        const outside = members[name].seen.filter(([p]) => !split[name].includes(p));
        if (outside.length) throw new OpFailed(`member ${name} consumed partitions outside ${split[name]}`);
      }
      expectValues(
        [...members.A.seen, ...members.B.seen].map(([, v]) => v),
        values1,
        'first batch over both members',
      );
      for (const m of Object.values(members)) {
        const offsets = Object.entries(m.last).map(([p, o]) => ({ topic, partition: Number(p), offset: String(o + 1) }));
        await m.consumer.commitOffsets(offsets);
      }
      const b = members.B;
      delete members.B;
      await b.consumer.disconnect(); // LeaveGroup
      await waitUntil(() => members.A.assigned.join() === '0,1,2,3', dl, () => `remaining member never took all partitions: ${members.A.assigned}`);
      members.A.seen = [];
      const values2 = valuesFor('group-2', this.count);
      await this.produce(topic, values2, dl);
      await waitUntil(() => members.A.seen.length >= values2.length || dl.passed(), dl, () => 'unreachable');
      expectValues(members.A.seen.map(([, v]) => v), values2, 'after the rebalance (resumed at the commits)');
      return { split };
    } finally {
      for (const m of Object.values(members)) await m.consumer.disconnect();
    }
  }

  async op_commit_restart(dl) {
    const topic = this.topic('commit-restart');
    const group = `${topic}.g`;
    const values = valuesFor('commit', this.count);
    await this.produce(topic, values, dl, { onePerBatch: true });
    const consumeFirst = async (n) => {
      const c = this.consumer(group);
      const got = [];
      await c.connect();
      try {
        await c.subscribe({ topics: [topic], fromBeginning: true });
        await c.run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            if (got.length < n) got.push(message.value.toString());
          },
        });
        await waitUntil(() => got.length >= n, dl, () => `consumer read ${got.length} of ${n}`);
        return { consumer: c, got };
      } catch (e) {
        await c.disconnect();
        throw e;
      }
    };
    const first = await consumeFirst(10);
    try {
      if (first.got.join() !== values.slice(0, 10).join()) throw new OpFailed(`first consumer read ${first.got}`);
      await first.consumer.commitOffsets([{ topic, partition: 0, offset: '10' }]);
    } finally {
      await first.consumer.disconnect();
    }
    const committed = await this.withAdmin(async (admin) => {
      const res = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      return Number(res[0].partitions.find((p) => p.partition === 0).offset);
    });
    if (committed !== 10) throw new OpFailed(`committed offset read back as ${committed}, expected 10`);
    const second = await consumeFirst(10);
    await second.consumer.disconnect();
    if (second.got.join() !== values.slice(10).join()) {
      throw new OpFailed(`restarted consumer read ${second.got.slice(0, 3)}, expected ${values.slice(10, 13)}...`);
    }
    return { committed };
  }

  async op_txn_commit_abort(dl) {
    const topic = this.topic('txn-commit-abort');
    const producer = this.kafka.producer({
      transactionalId: `${topic}.tx`,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    try {
      const half = Math.floor(this.count / 2);
      const send = (txn, prefix) =>
        txn.send({ topic, messages: valuesFor(prefix, half).map((v) => ({ key: v, value: v })) });
      const aborted = await producer.transaction();
      await send(aborted, 'txn-aborted');
      await aborted.abort();
      const committed = await producer.transaction();
      await send(committed, 'txn-committed');
      await committed.commit();
    } finally {
      await producer.disconnect();
    }
    return {};
  }

  async op_txn_read_committed(dl) {
    const committed = valuesFor('txn-committed', Math.floor(this.count / 2));
    const got = await this.readBack(this.topic('txn-read-committed'), committed.length, dl, true);
    const aborted = got.filter((v) => v.startsWith('txn-aborted'));
    if (aborted.length) {
      throw new OpFailed(`read_committed consumer received ${aborted.length} aborted records, e.g. ${JSON.stringify(aborted.slice(0, 3))}`);
    }
    expectValues(got, committed, 'read_committed');
    return { values: got.length };
  }

  async op_admin_describe_cluster(dl) {
    return this.withAdmin((admin) => this.brokersOf(admin));
  }

  async op_admin_create_topic(dl) {
    const name = `${this.args.tag}.created`;
    return this.withAdmin(async (admin) => {
      const created = await admin.createTopics({
        topics: [{ topic: name, numPartitions: 2, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: dl.leftMs(),
      });
      if (!created) throw new OpFailed('createTopics answered that the topic already exists');
      const md = await admin.fetchTopicMetadata({ topics: [name] });
      const n = md.topics[0].partitions.length;
      if (n !== 2) throw new OpFailed(`created topic has ${n} partitions`);
      return { partitions: n };
    });
  }

  async op_admin_describe_configs(dl) {
    return this.withAdmin(async (admin) => {
      const { brokers } = await this.brokersOf(admin);
      const resources = brokers
        .map((b) => ({ type: ConfigResourceTypes.BROKER, name: String(b.id) }))
        .concat([{ type: ConfigResourceTypes.TOPIC, name: this.topic('admin-describe-configs') }]);
      const res = await admin.describeConfigs({ resources, includeSynonyms: false });
      const entries = {};
      for (const r of res.resources) {
        if (r.errorCode) throw new OpFailed(`DescribeConfigs ${r.resourceName}: error ${r.errorCode} ${r.errorMessage}`);
        entries[`${r.resourceType}:${r.resourceName}`] = r.configEntries.length;
      }
      if (Object.keys(entries).length !== resources.length) {
        throw new OpFailed(`described ${Object.keys(entries)} of ${resources.length} resources`);
      }
      return { entries };
    });
  }
}

// ------------------------------------------------------------------ main

function parseArgs(argv) {
  const args = { ops: [], tag: 'compat', count: 20, groupTiming: [3000, 3000, 500], deadlines: {}, defaultDeadline: 25 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--bootstrap') args.bootstrap = next();
    else if (a === '--tag') args.tag = next();
    else if (a === '--ops') args.ops = next().split(',').filter(Boolean);
    else if (a === '--count') args.count = Number(next());
    else if (a === '--group-timing') args.groupTiming = next().split(',').map(Number);
    else if (a === '--deadlines') Object.assign(args, JSON.parse(next()));
    else if (a === '--versions') args.versions = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.versions) {
    const version = (name) => require(path.join(name, 'package.json')).version;
    emit({ kafkajs: version('kafkajs') });
    return;
  }
  const driver = new Driver(args);
  const failed = {};
  for (let i = 0; i < args.ops.length; i++) {
    const op = args.ops[i];
    const seconds = args.deadlines[op] || args.defaultDeadline;
    const dl = new Deadline(seconds);
    const t0 = Date.now();
    const out = { op };
    // Watchdog: a client call that never returns fails this op and the rest.
    const watchdog = setTimeout(() => {
      const tail = driver.clientErrors.slice(-3).join('; ');
      emit({ op, ok: false, error: `client hung past the deadline; client log: ${tail}` });
      for (const rest of args.ops.slice(i + 1)) emit({ op: rest, ok: false, error: `not run: ${op} hung` });
      process.exit(3);
    }, (seconds + 15) * 1000);
    try {
      if (op === 'txn-read-committed' && failed['txn-commit-abort']) {
        throw new OpFailed(`not run: txn-commit-abort failed: ${failed['txn-commit-abort']}`);
      }
      const fn = PRODUCE[op] ? () => driver.runProduce(op, dl) : driver[`op_${op.replace(/-/g, '_')}`];
      if (!fn) throw new OpFailed(`kafkajs driver has no operation ${op}`);
      out.data = (await fn.call(driver, dl)) || {};
      out.ok = true;
    } catch (e) {
      out.ok = false;
      out.error = e instanceof OpFailed ? e.message : `${e.name}: ${e.message}`;
      if (!(e instanceof OpFailed)) process.stderr.write(`${e.stack}\n`);
      failed[op] = out.error;
    }
    clearTimeout(watchdog);
    out.seconds = Math.round((Date.now() - t0) / 10) / 100;
    emit(out);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(2);
  },
);
