/**
 * Kafka connection settings shared by the source and the sink: `kafka://host:port[,host:port]/topic`
 * URIs, and `-X key=value` client options (kcat style) mapped to kafkajs configuration.
 */
import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import { UsageError } from '../../errors.js';

/** A parsed `kafka://host:port[,host:port]/topic` URI. */
export interface KafkaUri {
  /** Bootstrap brokers, `host:port` each. */
  brokers: string[];
  topic: string;
  /** The URI as given (for messages and provenance). */
  uri: string;
}

export { collectX, isKafkaUri } from './options.js';

/** Parses `kafka://host:port[,host:port]/topic`. Throws UsageError naming what is missing. */
export function parseKafkaUri(uri: string): KafkaUri {
  const m = /^kafka:\/\/([^/]*)\/(.*)$/i.exec(uri);
  if (!m) throw new UsageError(`'${uri}': expected kafka://host:port[,host:port]/topic`);
  const brokers = m[1].split(',').filter((b) => b.length > 0);
  if (brokers.length === 0) throw new UsageError(`'${uri}': no broker address before the topic`);
  for (const b of brokers)
    if (!/^[^:]+:\d+$/.test(b) && !/^\[[^\]]+\]:\d+$/.test(b))
      throw new UsageError(`'${uri}': broker '${b}' is not host:port`);
  const topic = decodeURIComponent(m[2]);
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic))
    throw new UsageError(
      `'${uri}': '${topic}' is not a valid topic name (letters, digits, '.', '_', '-'; at most 249)`,
    );
  return { brokers, topic, uri };
}

/** Client options from `-X key=value` (repeatable), split into the parts kafkajs configures separately. */
export interface ClientOptions {
  kafka: Partial<KafkaConfig>;
  /** Consumer config keys (sessionTimeout, minBytes, …). */
  consumer: Record<string, number | boolean>;
  /** Producer config keys (maxInFlightRequests, transactionTimeout, …). */
  producer: Record<string, number>;
  /** Per-send settings (timeout). */
  send: { timeout?: number };
}

type Setter = (o: ClientOptions, v: string, key: string) => void;

function int(key: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`-X ${key}: expected a non-negative integer, got '${v}'`);
  return Number(v);
}

function sasl(o: ClientOptions): Record<string, string> {
  const cur = (o.kafka.sasl ?? { mechanism: 'plain' }) as unknown as Record<string, string>;
  o.kafka.sasl = cur as unknown as SASLOptions;
  return cur;
}

/**
 * The `-X` keys kappa understands (Java client / librdkafka names) and the kafkajs setting each
 * maps to. Anything else is a usage error, so a typo is never silently ignored.
 */
export const CLIENT_OPTION_KEYS: Record<string, Setter> = {
  'client.id': (o, v) => {
    o.kafka.clientId = v;
  },
  'socket.connection.setup.timeout.ms': (o, v, k) => {
    o.kafka.connectionTimeout = int(k, v);
  },
  'request.timeout.ms': (o, v, k) => {
    o.kafka.requestTimeout = int(k, v);
    o.send.timeout = int(k, v);
  },
  retries: (o, v, k) => {
    o.kafka.retry = { ...o.kafka.retry, retries: int(k, v) };
  },
  'retry.backoff.ms': (o, v, k) => {
    o.kafka.retry = { ...o.kafka.retry, initialRetryTime: int(k, v) };
  },
  'retry.backoff.max.ms': (o, v, k) => {
    o.kafka.retry = { ...o.kafka.retry, maxRetryTime: int(k, v) };
  },
  'security.protocol': (o, v, k) => {
    const p = v.toUpperCase();
    if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(p))
      throw new UsageError(`-X ${k}: expected PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL`);
    o.kafka.ssl = p === 'SSL' || p === 'SASL_SSL';
    if (p.startsWith('SASL')) sasl(o);
  },
  'sasl.mechanism': (o, v, k) => {
    const m = v.toLowerCase();
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(m))
      throw new UsageError(`-X ${k}: expected PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512`);
    sasl(o).mechanism = m;
  },
  'sasl.username': (o, v) => {
    sasl(o).username = v;
  },
  'sasl.password': (o, v) => {
    sasl(o).password = v;
  },
  'session.timeout.ms': (o, v, k) => {
    o.consumer.sessionTimeout = int(k, v);
  },
  'heartbeat.interval.ms': (o, v, k) => {
    o.consumer.heartbeatInterval = int(k, v);
  },
  'fetch.min.bytes': (o, v, k) => {
    o.consumer.minBytes = int(k, v);
  },
  'fetch.max.bytes': (o, v, k) => {
    o.consumer.maxBytes = int(k, v);
  },
  'max.partition.fetch.bytes': (o, v, k) => {
    o.consumer.maxBytesPerPartition = int(k, v);
  },
  'fetch.max.wait.ms': (o, v, k) => {
    o.consumer.maxWaitTimeInMs = int(k, v);
  },
  'isolation.level': (o, v, k) => {
    if (v !== 'read_committed' && v !== 'read_uncommitted')
      throw new UsageError(`-X ${k}: expected read_committed | read_uncommitted`);
    o.consumer.readUncommitted = v === 'read_uncommitted';
  },
  'metadata.max.age.ms': (o, v, k) => {
    o.consumer.metadataMaxAge = int(k, v);
    o.producer.metadataMaxAge = int(k, v);
  },
  'transaction.timeout.ms': (o, v, k) => {
    o.producer.transactionTimeout = int(k, v);
  },
};

/** Parses `-X key=value` pairs. Throws UsageError for malformed pairs and unknown keys. */
export function parseClientOptions(pairs: string[] | undefined): ClientOptions {
  const o: ClientOptions = { kafka: {}, consumer: {}, producer: {}, send: {} };
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`-X '${p}': expected key=value`);
    const key = p.slice(0, i).trim();
    const set = CLIENT_OPTION_KEYS[key];
    if (!set)
      throw new UsageError(
        `-X ${key}: unknown client option`,
        `understood: ${Object.keys(CLIENT_OPTION_KEYS).join(', ')}`,
      );
    set(o, p.slice(i + 1), key);
  }
  return o;
}

/**
 * A kafkajs client for the URI's brokers. kafkajs's own logging is off except errors, which go to
 * stderr as one line each; kappa reports failures itself.
 */
export function kafkaClient(u: KafkaUri, opts: ClientOptions, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: u.brokers,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10000 },
    logLevel: logLevel.NOTHING,
    ...opts.kafka,
  });
}

/** A readable message for a kafkajs error (type and cause chain). */
export function kafkaErrorText(e: unknown): string {
  const parts: string[] = [];
  let cur = e as (Error & { cause?: unknown; originalError?: unknown }) | undefined;
  for (let depth = 0; cur && depth < 4; depth++) {
    const msg = `${cur.name && cur.name !== 'Error' ? `${cur.name}: ` : ''}${cur.message}`;
    if (!parts.includes(msg)) parts.push(msg);
    cur = (cur.originalError ?? cur.cause) as typeof cur;
  }
  return parts.join(' <- ');
}
