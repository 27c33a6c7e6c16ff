/**
 * The Java client's default partitioner for keyed records, so kappa places keys exactly where
 * Kafka Streams, Flink or any Java producer would: `toPositive(murmur2(keyBytes)) % numPartitions`
 * (org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey, Kafka 3.x and
 * 4.x), with `murmur2` a port of org.apache.kafka.common.utils.Utils.murmur2 (seed 0x9747b28c)
 * over the UTF-8 bytes of the key.
 *
 * Records without a key have no Java-defined place (the Java client's sticky partitioner picks a
 * partition per batch); kappa spreads them round-robin, record by record, starting at partition 0.
 */

/** Kafka's 32-bit murmur2 of `data` (signed int32, as Java returns it). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k =
      (data[i4] & 0xff) |
      ((data[i4 + 1] & 0xff) << 8) |
      ((data[i4 + 2] & 0xff) << 16) |
      ((data[i4 + 3] & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= (data[tail + 2] & 0xff) << 16;
  if (rest >= 2) h ^= (data[tail + 1] & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[tail] & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

const utf8 = new TextEncoder();

/** The partition the Java default partitioner gives a string key (UTF-8 bytes). */
export function partitionForKey(key: string, numPartitions: number): number {
  return (murmur2(utf8.encode(key)) & 0x7fffffff) % numPartitions;
}

/** Partition chooser for a topic: murmur2 for keys, round-robin for null keys. */
export class KeyPartitioner {
  private next = 0;
  constructor(readonly numPartitions: number) {}

  partition(key: string | null | undefined): number {
    if (key === null || key === undefined) {
      const p = this.next;
      this.next = (this.next + 1) % this.numPartitions;
      return p;
    }
    return partitionForKey(key, this.numPartitions);
  }
}
