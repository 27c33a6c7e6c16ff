package kappa.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.api.java.tuple.Tuple6;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.sink.RichSinkFunction;
import org.apache.flink.util.Collector;

/**
 * The Flink peer of kappa's scenario 3: an event-time tumbling window per key with count, avg and
 * max of one numeric field, over an NDJSON file, in local mode (MiniCluster, streaming execution).
 *
 * <p>Usage: {@code WindowJob INPUT OUTPUT [--key origin] [--ts date] [--field delay] [--size-ms
 * 3600000] [--parallelism 2] [--out-of-orderness-ms 0] [--noop]}
 *
 * <p>OUTPUT gets one NDJSON line per (key, window): {@code
 * {"key":…,"window_start":ms,"window_end":ms,"count":n,"avg":x,"max":m}}. Event time is the
 * {@code --ts} field: epoch ms (number) or ISO-8601 text ("2001-01-01T00:01:00Z", or without a zone
 * as UTC). Records without a key or a numeric field value still count; avg/max skip missing values
 * (SQL semantics). Late records (behind the watermark) are dropped, as Flink does.
 *
 * <p>Timing lines on stdout so the harness can split JVM start-up from processing: {@code
 * FLINK_TIMING jvm_start_ms=… main_start_ms=… job_end_ms=…}; {@code --noop} returns
 * right after printing the main start (measures JVM start-up alone).
 */
public final class WindowJob {
  private WindowJob() {}

  public static void main(String[] args) throws Exception {
    long jvmStart = ManagementFactory.getRuntimeMXBean().getStartTime();
    long mainStart = System.currentTimeMillis();
    String in = null;
    String out = null;
    String keyField = "origin";
    String tsField = "date";
    String valueField = "delay";
    long sizeMs = 3_600_000L;
    int parallelism = 2;
    long outOfOrdernessMs = 0;
    boolean noop = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--key" -> keyField = args[++i];
        case "--ts" -> tsField = args[++i];
        case "--field" -> valueField = args[++i];
        case "--size-ms" -> sizeMs = Long.parseLong(args[++i]);
        case "--parallelism" -> parallelism = Integer.parseInt(args[++i]);
        case "--out-of-orderness-ms" -> outOfOrdernessMs = Long.parseLong(args[++i]);
        case "--noop" -> noop = true;
        default -> {
          if (in == null) in = args[i];
          else if (out == null) out = args[i];
          else throw new IllegalArgumentException("unexpected argument: " + args[i]);
        }
      }
    }
    if (noop) {
      System.out.printf(
          "FLINK_TIMING jvm_start_ms=%d main_start_ms=%d job_end_ms=%d%n",
          jvmStart, mainStart, System.currentTimeMillis());
      return;
    }
    if (in == null || out == null) {
      throw new IllegalArgumentException("usage: WindowJob INPUT OUTPUT [options]");
    }

    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setRuntimeMode(RuntimeExecutionMode.STREAMING);
    env.setParallelism(parallelism);

    FileSource<String> source =
        FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(in)).build();
    WatermarkStrategy<Tuple3<String, Long, Double>> wm =
        WatermarkStrategy.<Tuple3<String, Long, Double>>forBoundedOutOfOrderness(
                Duration.ofMillis(outOfOrdernessMs))
            .withTimestampAssigner((e, prev) -> e.f1);

    DataStream<Tuple3<String, Long, Double>> events =
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "ndjson")
            .flatMap(new Parse(keyField, tsField, valueField))
            .assignTimestampsAndWatermarks(wm);

    DataStream<Tuple6<String, Long, Long, Long, Double, Double>> windows =
        events
            .keyBy(e -> e.f0)
            .window(TumblingEventTimeWindows.of(Duration.ofMillis(sizeMs)))
            .aggregate(new CountAvgMax(), new Emit());

    windows.addSink(new NdjsonFileSink(out)).setParallelism(1).name("ndjson file");
    env.execute("kappa-bench window");
    System.out.printf(
        "FLINK_TIMING jvm_start_ms=%d main_start_ms=%d job_end_ms=%d%n",
        jvmStart, mainStart, System.currentTimeMillis());
  }

  /**
   * Writes each window result as one NDJSON line to a local file (one writer: parallelism 1). The
   * MiniCluster runs in this JVM, so the file is complete when {@code execute} returns.
   */
  static final class NdjsonFileSink extends RichSinkFunction<Tuple6<String, Long, Long, Long, Double, Double>> {
    private final String path;
    private transient BufferedWriter w;
    private transient ObjectMapper mapper;

    NdjsonFileSink(String path) {
      this.path = path;
    }

    @Override
    public void open(OpenContext ctx) throws IOException {
      w = Files.newBufferedWriter(Paths.get(path), StandardCharsets.UTF_8);
      mapper = new ObjectMapper();
    }

    @Override
    public void invoke(Tuple6<String, Long, Long, Long, Double, Double> r, Context ctx)
        throws IOException {
      w.write("{\"key\":");
      w.write(mapper.writeValueAsString(r.f0));
      w.write(",\"window_start\":" + r.f1 + ",\"window_end\":" + r.f2 + ",\"count\":" + r.f3);
      w.write(",\"avg\":" + (r.f4.isNaN() ? "null" : r.f4.toString()));
      w.write(",\"max\":" + (r.f5.isNaN() ? "null" : r.f5.toString()) + "}\n");
    }

    @Override
    public void close() throws IOException {
      if (w != null) w.close();
    }
  }

  /** NDJSON line -> (key, event time ms, value or NaN when missing). */
  static final class Parse implements FlatMapFunction<String, Tuple3<String, Long, Double>> {
    private final String keyField;
    private final String tsField;
    private final String valueField;
    private transient ObjectMapper mapper;

    Parse(String keyField, String tsField, String valueField) {
      this.keyField = keyField;
      this.tsField = tsField;
      this.valueField = valueField;
    }

    @Override
    public void flatMap(String line, Collector<Tuple3<String, Long, Double>> out) throws IOException {
      if (line.isEmpty()) return;
      if (mapper == null) mapper = new ObjectMapper();
      JsonNode n = mapper.readTree(line);
      JsonNode k = n.get(keyField);
      JsonNode t = n.get(tsField);
      JsonNode v = n.get(valueField);
      if (t == null || t.isNull()) return;
      long ts = t.isNumber() ? t.asLong() : parseTime(t.asText());
      double value = v == null || v.isNull() || !v.isNumber() ? Double.NaN : v.asDouble();
      out.collect(Tuple3.of(k == null || k.isNull() ? "" : k.asText(), ts, value));
    }

    private static long parseTime(String s) {
      try {
        return Instant.parse(s).toEpochMilli();
      } catch (DateTimeParseException e) {
        return LocalDateTime.parse(s.replace(' ', 'T')).toInstant(ZoneOffset.UTC).toEpochMilli();
      }
    }
  }

  /** Accumulator (count, sum of present values, count of present values, max) as a Tuple. */
  static final class CountAvgMax
      implements AggregateFunction<
          Tuple3<String, Long, Double>, Tuple4<Long, Double, Long, Double>, Tuple3<Long, Double, Double>> {
    @Override
    public Tuple4<Long, Double, Long, Double> createAccumulator() {
      return Tuple4.of(0L, 0.0, 0L, Double.NEGATIVE_INFINITY);
    }

    @Override
    public Tuple4<Long, Double, Long, Double> add(
        Tuple3<String, Long, Double> e, Tuple4<Long, Double, Long, Double> a) {
      a.f0 += 1;
      if (!e.f2.isNaN()) {
        a.f1 += e.f2;
        a.f2 += 1;
        if (e.f2 > a.f3) a.f3 = e.f2;
      }
      return a;
    }

    @Override
    public Tuple3<Long, Double, Double> getResult(Tuple4<Long, Double, Long, Double> a) {
      return Tuple3.of(a.f0, a.f2 == 0 ? Double.NaN : a.f1 / a.f2, a.f2 == 0 ? Double.NaN : a.f3);
    }

    @Override
    public Tuple4<Long, Double, Long, Double> merge(
        Tuple4<Long, Double, Long, Double> a, Tuple4<Long, Double, Long, Double> b) {
      return Tuple4.of(a.f0 + b.f0, a.f1 + b.f1, a.f2 + b.f2, Math.max(a.f3, b.f3));
    }
  }

  /** Attaches key and window bounds to the aggregate. */
  static final class Emit
      extends ProcessWindowFunction<
          Tuple3<Long, Double, Double>, Tuple6<String, Long, Long, Long, Double, Double>, String, TimeWindow> {
    @Override
    public void process(
        String key,
        Context ctx,
        Iterable<Tuple3<Long, Double, Double>> aggs,
        Collector<Tuple6<String, Long, Long, Long, Double, Double>> out) {
      for (Tuple3<Long, Double, Double> a : aggs) {
        out.collect(
            Tuple6.of(key, ctx.window().getStart(), ctx.window().getEnd(), a.f0, a.f1, a.f2));
      }
    }
  }
}
