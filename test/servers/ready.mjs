// Readiness probe: `node ready.mjs kafka 127.0.0.1:PORT` lists topics through the Kafka protocol
// (kafkajs admin, a real Metadata request); `node ready.mjs s3 http://127.0.0.1:PORT` lists buckets
// (a real signed S3 call). Exits 0 when the server answered, 1 otherwise.
const [kind, addr] = process.argv.slice(2);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
try {
  if (kind === 'kafka') {
    const { Kafka, logLevel } = await import('kafkajs');
    const admin = new Kafka({
      brokers: [addr],
      clientId: 'kappa-ready',
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 2000,
    }).admin();
    await admin.connect();
    await admin.listTopics();
    await admin.disconnect();
  } else if (kind === 's3') {
    const { S3Client, ListBucketsCommand } = await import('@aws-sdk/client-s3');
    const c = new S3Client({
      endpoint: addr,
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'x',
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'x',
      },
    });
    await c.send(new ListBucketsCommand({}));
  } else throw new Error(`unknown server kind ${kind}`);
  process.exit(0);
} catch {
  process.exit(1);
}
