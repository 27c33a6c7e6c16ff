/**
 * The one explicit list of connectors (docs/architecture.md, "Connectors"): every source kind
 * `kappa ingest` can open and every target `kappa sink` can write, in the order in which they
 * claim an argument (the first that claims it wins). Adding a connector means adding it here;
 * nothing registers itself by being imported.
 */
import { filesSource } from './files.js';
import { kafkaSink, kafkaSource } from './kafka/options.js';
import type { SinkTarget } from './sink.js';
import type { SourceKind } from './source.js';
import { stdoutSink } from './stdout.js';
import { singleFileSink, tableSink } from './table.js';

/** Source kinds of `kappa ingest`, in claim order. */
export const SOURCE_KINDS: readonly SourceKind[] = [kafkaSource, filesSource];

/** Sink targets of `kappa sink`, in claim order (a single file before a table directory). */
export const SINK_TARGETS: readonly SinkTarget[] = [stdoutSink, kafkaSink, singleFileSink, tableSink];
