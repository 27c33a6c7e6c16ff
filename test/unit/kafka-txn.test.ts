/**
 * Issue 9, Kafka sink transactions without a broker: the progress-record scan, the commit
 * descriptor (no secrets), option checks, and the transactional-call retry (adapter.ts txnRetry).
 * The broker behaviour is tested in test/integration/kafka-txn.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TxnFencedError, txnRetry } from '../../src/connectors/kafka/adapter.js';
import { createKafkaSink, newestCheckpoint } from '../../src/connectors/kafka/sink.js';
import { UsageError } from '../../src/errors.js';

const rec = (key: string | null, value: unknown) => ({
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
});

describe('Kafka sink progress records', () => {
  it('the newest checkpoint is the last progress record of the appId', () => {
    const recs = [
      rec('p.sink-1', { checkpoint: 1, sources: [], committedAt: 'x' }),
      rec('other.sink-1', { checkpoint: 9, sources: [], committedAt: 'x' }),
      rec('p.sink-1', { checkpoint: 2, sources: [], committedAt: 'x' }),
      rec('p.sink-1', 'not json'),
      rec('p.sink-1', { checkpoint: 'three' }),
      rec('p.sink-1', null),
    ];
    assert.equal(newestCheckpoint(recs, 'p.sink-1'), 2);
    assert.equal(newestCheckpoint(recs, 'other.sink-1'), 9);
    assert.equal(newestCheckpoint(recs, 'nobody'), null);
  });

  it('the commit descriptor names the progress topic and leaves the SASL password out', async () => {
    const sink = await createKafkaSink('kafka://b1:9092,b2:9092/out', {
      X: ['sasl.username=u', 'sasl.password=s3cret', 'security.protocol=SASL_SSL'],
      progressTopic: 'prog',
    });
    const d = sink.commitDescriptor?.() as Record<string, unknown>;
    assert.equal(d.kind, 'kafka');
    assert.deepEqual(d.brokers, ['b1:9092', 'b2:9092']);
    assert.equal(d.topic, 'out');
    assert.equal(d.progressTopic, 'prog');
    assert.deepEqual(d.X, ['sasl.username=u', 'security.protocol=SASL_SSL']);
    assert.deepEqual(d.secrets, ['sasl.password']);
    assert.ok(!JSON.stringify(d).includes('s3cret'));
  });

  it('rejects a bad --progress-topic and a too short --transaction-timeout', async () => {
    await assert.rejects(createKafkaSink('kafka://b:9092/out', { progressTopic: 'a/b' }), UsageError);
    await assert.rejects(createKafkaSink('kafka://b:9092/out', { transactionTimeout: '10ms' }), UsageError);
  });
});

describe('txnRetry', () => {
  const err = (type: string, retriable = false) => Object.assign(new Error(type), { type, retriable });

  it('repeats a call that fails with CONCURRENT_TRANSACTIONS', async () => {
    let calls = 0;
    const v = await txnRetry(async () => {
      if (++calls < 3) throw err('CONCURRENT_TRANSACTIONS');
      return 'ok';
    });
    assert.equal(v, 'ok');
    assert.equal(calls, 3);
  });

  it('turns fencing into TxnFencedError at once', async () => {
    let calls = 0;
    await assert.rejects(
      txnRetry(async () => {
        calls++;
        throw err('PRODUCER_FENCED', true);
      }),
      TxnFencedError,
    );
    assert.equal(calls, 1);
  });

  it('rethrows a non-retriable error at once and gives up after its budget', async () => {
    let calls = 0;
    await assert.rejects(
      txnRetry(async () => {
        calls++;
        throw err('INVALID_TXN_STATE');
      }),
      /INVALID_TXN_STATE/,
    );
    assert.equal(calls, 1);
    const t0 = Date.now();
    await assert.rejects(
      txnRetry(async () => {
        throw err('CONCURRENT_TRANSACTIONS');
      }, 300),
      /CONCURRENT_TRANSACTIONS/,
    );
    assert.ok(Date.now() - t0 < 1000);
  });
});
