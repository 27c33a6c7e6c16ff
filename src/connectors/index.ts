/**
 * The one explicit list of connectors (docs/architecture.md, "Connectors"): every source kind
 * `kappa ingest` can open and every target `kappa sink` can write, in the order in which they
 * claim an argument (the first that claims it wins). Adding a connector means adding it here;
 * nothing registers itself by being imported.
 *
 * The file and table sinks (table.ts) are listed through lazy stand-ins: their name, options and
 * claim test are here, their module (the table sink, the Delta log, the Parquet writer: 50-100 ms
 * of start-up CPU) is imported at the first `create` or `committedEpoch`. A stage that only reads
 * this list (`kappa ingest` for SOURCE_KINDS) never loads it. test/unit/startup-lazy.test.ts checks
 * that each stand-in agrees with the real target.
 */
import { hasStore, schemeOf } from '../storage/store.js';
import { extensionFormat } from '../table/sink/extension.js';
import { filesSource } from './files.js';
import { kafkaSink, kafkaSource } from './kafka/options.js';
import type { SinkTarget } from './sink.js';
import type { SourceKind } from './source.js';
import { stdoutSink } from './stdout.js';

/** Source kinds of `kappa ingest`, in claim order. */
export const SOURCE_KINDS: readonly SourceKind[] = [kafkaSource, filesSource];

/**
 * A sink target of table.ts whose module loads on first use.
 * @param pick which of table.ts's targets this stands in for
 */
function lazyTableTarget(
  pick: 'singleFileSink' | 'tableSink',
  name: string,
  options: readonly string[],
  claims: SinkTarget['claims'],
): SinkTarget {
  const load = async (): Promise<SinkTarget> => (await import('./table.js'))[pick];
  const target: SinkTarget = { name, options, claims, create: async (t, o) => (await load()).create(t, o) };
  // Only the table sink can report a committed epoch (a file sink has no `committedEpoch` at all).
  if (pick === 'tableSink')
    target.committedEpoch = async (d) => (await import('./table.js')).tableCommittedEpoch(d);
  return target;
}

/** A single file (out.parquet, out.ndjson, out.csv): table.ts `singleFileSink`. */
const singleFileSink = lazyTableTarget(
  'singleFileSink',
  'file (out.parquet, out.ndjson, out.csv)',
  ['format', 'compression', 's3Endpoint'],
  (t) => t !== '-' && hasStore(schemeOf(t)) && extensionFormat(t) !== undefined,
);

/** A table directory with a Delta log, local or s3://: table.ts `tableSink`. */
const tableSink = lazyTableTarget(
  'tableSink',
  'table directory (local or s3://)',
  [
    'format',
    'partitionBy',
    'tz',
    'rollSize',
    'rollRecords',
    'rollInterval',
    'compression',
    'mergeSchema',
    's3Endpoint',
  ],
  (t) => t !== '-' && hasStore(schemeOf(t)),
);

/** Sink targets of `kappa sink`, in claim order (a single file before a table directory). */
export const SINK_TARGETS: readonly SinkTarget[] = [stdoutSink, kafkaSink, singleFileSink, tableSink];
