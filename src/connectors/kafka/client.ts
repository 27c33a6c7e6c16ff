/**
 * Kafka connection settings shared by the source and the sink: `kafka://host:port[,host:port]/topic`
 * URIs, and `-X key=value` client options (kcat style), client-neutral (adapter.ts maps them to
 * the client library).
 */
import { UsageError } from '../../errors.js';

/** A parsed `kafka://host:port[,host:port]/topic` URI. */
export interface KafkaUri {
  /** Bootstrap brokers, `host:port` each. */
  brokers: string[];
  topic: string;
  /** The URI as given (for messages and provenance). */
  uri: string;
}

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

/**
 * Client options from `-X key=value` (repeatable), client-neutral: adapter.ts maps them to the
 * Kafka client library. Times in ms, sizes in bytes; unset fields keep the adapter's defaults.
 */
export interface ClientOptions {
  clientId?: string;
  connectionTimeoutMs?: number;
  /** Broker request timeout; also the producer's per-send timeout. */
  requestTimeoutMs?: number;
  retry: { retries?: number; initialRetryTimeMs?: number; maxRetryTimeMs?: number };
  /** TLS on (SSL, SASL_SSL) or off (PLAINTEXT, SASL_PLAINTEXT). */
  ssl?: boolean;
  sasl?: { mechanism: SaslMechanism; username?: string; password?: string };
  consumer: {
    sessionTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    minBytes?: number;
    maxBytes?: number;
    maxBytesPerPartition?: number;
    maxWaitMs?: number;
    readUncommitted?: boolean;
    metadataMaxAgeMs?: number;
  };
  producer: { transactionTimeoutMs?: number; metadataMaxAgeMs?: number };
}

/** SASL mechanisms the client supports. */
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

type Setter = (o: ClientOptions, v: string, key: string) => void;

function int(key: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`-X ${key}: expected a non-negative integer, got '${v}'`);
  return Number(v);
}

function sasl(o: ClientOptions): NonNullable<ClientOptions['sasl']> {
  o.sasl ??= { mechanism: 'plain' };
  return o.sasl;
}

/**
 * The `-X` keys kappa understands (Java client / librdkafka names) and the setting each maps to.
 * Anything else is a usage error, so a typo is never silently ignored.
 */
export const CLIENT_OPTION_KEYS: Record<string, Setter> = {
  'client.id': (o, v) => {
    o.clientId = v;
  },
  'socket.connection.setup.timeout.ms': (o, v, k) => {
    o.connectionTimeoutMs = int(k, v);
  },
  'request.timeout.ms': (o, v, k) => {
    o.requestTimeoutMs = int(k, v);
  },
  retries: (o, v, k) => {
    o.retry.retries = int(k, v);
  },
  'retry.backoff.ms': (o, v, k) => {
    o.retry.initialRetryTimeMs = int(k, v);
  },
  'retry.backoff.max.ms': (o, v, k) => {
    o.retry.maxRetryTimeMs = int(k, v);
  },
  'security.protocol': (o, v, k) => {
    const p = v.toUpperCase();
    if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(p))
      throw new UsageError(`-X ${k}: expected PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL`);
    o.ssl = p === 'SSL' || p === 'SASL_SSL';
    if (p.startsWith('SASL')) sasl(o);
  },
  'sasl.mechanism': (o, v, k) => {
    const m = v.toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512')
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
    o.consumer.sessionTimeoutMs = int(k, v);
  },
  'heartbeat.interval.ms': (o, v, k) => {
    o.consumer.heartbeatIntervalMs = int(k, v);
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
    o.consumer.maxWaitMs = int(k, v);
  },
  'isolation.level': (o, v, k) => {
    if (v !== 'read_committed' && v !== 'read_uncommitted')
      throw new UsageError(`-X ${k}: expected read_committed | read_uncommitted`);
    o.consumer.readUncommitted = v === 'read_uncommitted';
  },
  'metadata.max.age.ms': (o, v, k) => {
    o.consumer.metadataMaxAgeMs = int(k, v);
    o.producer.metadataMaxAgeMs = int(k, v);
  },
  'transaction.timeout.ms': (o, v, k) => {
    o.producer.transactionTimeoutMs = int(k, v);
  },
};

/** Parses `-X key=value` pairs. Throws UsageError for malformed pairs and unknown keys. */
export function parseClientOptions(pairs: string[] | undefined): ClientOptions {
  const o: ClientOptions = { retry: {}, consumer: {}, producer: {} };
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

/** A readable message for a Kafka client error (type and cause chain). */
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
