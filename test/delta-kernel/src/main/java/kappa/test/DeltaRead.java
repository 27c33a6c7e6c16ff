package kappa.test;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.delta.kernel.Scan;
import io.delta.kernel.Snapshot;
import io.delta.kernel.SnapshotBuilder;
import io.delta.kernel.TableManager;
import io.delta.kernel.data.ArrayValue;
import io.delta.kernel.data.ColumnVector;
import io.delta.kernel.data.ColumnarBatch;
import io.delta.kernel.data.FilteredColumnarBatch;
import io.delta.kernel.data.MapValue;
import io.delta.kernel.data.Row;
import io.delta.kernel.defaults.engine.DefaultEngine;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.engine.FileReadResult;
import io.delta.kernel.expressions.Column;
import io.delta.kernel.expressions.Literal;
import io.delta.kernel.expressions.Predicate;
import io.delta.kernel.internal.InternalScanFileUtils;
import io.delta.kernel.internal.data.ScanStateRow;
import io.delta.kernel.types.ArrayType;
import io.delta.kernel.types.BinaryType;
import io.delta.kernel.types.BooleanType;
import io.delta.kernel.types.ByteType;
import io.delta.kernel.types.DataType;
import io.delta.kernel.types.DateType;
import io.delta.kernel.types.DecimalType;
import io.delta.kernel.types.DoubleType;
import io.delta.kernel.types.FloatType;
import io.delta.kernel.types.IntegerType;
import io.delta.kernel.types.LongType;
import io.delta.kernel.types.MapType;
import io.delta.kernel.types.ShortType;
import io.delta.kernel.types.StringType;
import io.delta.kernel.types.StructField;
import io.delta.kernel.types.StructType;
import io.delta.kernel.types.TimestampNTZType;
import io.delta.kernel.types.TimestampType;
import io.delta.kernel.utils.CloseableIterator;
import io.delta.kernel.utils.FileStatus;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.Set;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;

/**
 * An independent Delta Lake reader for kappa's tests: opens each table directory given on the
 * command line with Delta Kernel for Java (the reference implementation of the Delta protocol's
 * read path, io.delta:delta-kernel-defaults) and prints what it sees as NDJSON on stdout.
 *
 * <p>Usage: {@code java -cp 'target/classes:target/lib/*' kappa.test.DeltaRead [--version N]
 * [--filter COLUMN OP VALUE] [--txn APPID] DIR ...}. Options apply to the next DIR only.
 * {@code --txn APPID} adds to the snapshot line {@code "txn":{"appId":APPID,"version":N|null}}, the
 * latest transaction version of that application (Snapshot.getLatestTransactionVersion, PROTOCOL.md
 * "Transaction Identifiers"). {@code --version N}
 * reads that version (time travel) instead of the latest. {@code --filter} gives Kernel a
 * predicate (OP one of = &lt; &lt;= &gt; &gt;=; VALUE parsed by the column's type: long/integer,
 * double, string, boolean, date YYYY-MM-DD, timestamp as ISO-8601 instant with Z, timestamp_ntz as
 * ISO local date-time) that it uses for partition pruning and data skipping by the add actions'
 * stats; Kernel still returns every row of each file it keeps (the caller filters rows), so a
 * missing matching row means pruning or stats were wrong. One JVM reads any number of tables.
 *
 * <p>Output, per table, in order (every line one JSON object with a "kind"):
 *
 * <ul>
 *   <li>{@code {"kind":"snapshot","table":DIR,"version":N,"schema":<Delta schema JSON>,
 *       "partitionColumns":[...]}} (plus "txn" with --txn)
 *   <li>{@code {"kind":"row","table":DIR,"value":{column: value, ...}}} for every live row, the
 *       partition columns included (Kernel puts the partition values back into each row).
 *   <li>{@code {"kind":"end","table":DIR,"rows":N,"files":F,"totalFiles":T}}: F scan files read
 *       (after pruning and skipping when a filter was given), T live files in the snapshot.
 *   <li>or, if the table cannot be read: {@code {"kind":"error","table":DIR,"error":"Class:
 *       message"}} (after whatever was printed before the failure; no "end" line follows).
 * </ul>
 *
 * <p>Value encoding: boolean, byte, short, integer, float and double as JSON numbers/booleans (NaN
 * and infinities as the strings "NaN", "Infinity", "-Infinity"); long as a decimal string (exact,
 * beyond 2^53); decimal as a plain decimal string; string as string; binary as base64; date as
 * "YYYY-MM-DD"; timestamp (UTC-adjusted) as ISO-8601 "YYYY-MM-DDTHH:MM:SS.ffffffZ" with exactly six
 * fraction digits (microseconds, Delta's unit); timestamp_ntz the same without the "Z"; struct as an
 * object, array as an array, map as an array of [key, value] pairs; null as null.
 *
 * <p>Exit code 0 when every table was read, 1 when at least one printed an error, 2 on usage
 * errors.
 */
public final class DeltaRead {
  private static final DateTimeFormatter TS =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS");

  private DeltaRead() {}

  public static void main(String[] args) throws IOException {
    if (args.length == 0) {
      System.err.println("usage: DeltaRead [--version N] DIR [[--version N] DIR ...]");
      System.exit(2);
    }
    Engine engine = DefaultEngine.create(new Configuration());
    OutputStream out = new BufferedOutputStream(System.out, 1 << 16);
    JsonGenerator g = new JsonFactory(new ObjectMapper()).createGenerator(out, JsonEncoding.UTF8);
    g.setRootValueSeparator(null);
    boolean failed = false;
    Long version = null;
    String[] filter = null;
    String txn = null;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--txn")) {
        if (i + 1 >= args.length) usage("--txn needs an application id");
        txn = args[++i];
        continue;
      }
      if (args[i].equals("--version")) {
        if (i + 1 >= args.length) usage("--version needs a number");
        version = Long.parseLong(args[++i]);
        continue;
      }
      if (args[i].equals("--filter")) {
        if (i + 3 >= args.length) usage("--filter needs COLUMN OP VALUE");
        filter = new String[] {args[i + 1], args[i + 2], args[i + 3]};
        if (!OPS.contains(filter[1])) usage("--filter: unknown operator " + filter[1]);
        i += 3;
        continue;
      }
      String dir = args[i];
      try {
        readTable(engine, dir, version, filter, txn, g, out);
      } catch (Exception | LinkageError e) {
        failed = true;
        g.writeStartObject();
        g.writeStringField("kind", "error");
        g.writeStringField("table", dir);
        g.writeStringField("error", e.getClass().getName() + ": " + e.getMessage());
        g.writeEndObject();
        line(g, out);
      }
      version = null;
      filter = null;
      txn = null;
    }
    g.flush();
    out.flush();
    System.exit(failed ? 1 : 0);
  }

  private static final Set<String> OPS = Set.of("=", "<", "<=", ">", ">=");

  private static void usage(String why) {
    System.err.println("DeltaRead: " + why);
    System.exit(2);
  }

  /** The Kernel predicate {@code column op value}, the literal typed by the column's type. */
  private static Predicate predicate(StructType schema, String[] f) {
    StructField field = schema.get(f[0]);
    if (field == null) throw new IllegalArgumentException("--filter: no column " + f[0]);
    DataType d = field.getDataType();
    String v = f[2];
    Literal lit;
    if (d instanceof LongType) lit = Literal.ofLong(Long.parseLong(v));
    else if (d instanceof IntegerType) lit = Literal.ofInt(Integer.parseInt(v));
    else if (d instanceof DoubleType) lit = Literal.ofDouble(Double.parseDouble(v));
    else if (d instanceof StringType) lit = Literal.ofString(v);
    else if (d instanceof BooleanType) lit = Literal.ofBoolean(Boolean.parseBoolean(v));
    else if (d instanceof DateType) lit = Literal.ofDate((int) LocalDate.parse(v).toEpochDay());
    else if (d instanceof TimestampType) {
      Instant t = Instant.parse(v);
      lit = Literal.ofTimestamp(t.getEpochSecond() * 1_000_000L + t.getNano() / 1000);
    } else if (d instanceof TimestampNTZType) {
      Instant t = LocalDateTime.parse(v).toInstant(ZoneOffset.UTC);
      lit = Literal.ofTimestampNtz(t.getEpochSecond() * 1_000_000L + t.getNano() / 1000);
    } else throw new IllegalArgumentException("--filter: unsupported type " + d + " of " + f[0]);
    return new Predicate(f[1], new Column(f[0]), lit);
  }

  private static long countFiles(Engine engine, Scan scan) throws IOException {
    long n = 0;
    try (CloseableIterator<FilteredColumnarBatch> files = scan.getScanFiles(engine)) {
      while (files.hasNext()) {
        try (CloseableIterator<Row> rows = files.next().getRows()) {
          while (rows.hasNext()) {
            rows.next();
            n++;
          }
        }
      }
    }
    return n;
  }

  private static void line(JsonGenerator g, OutputStream out) throws IOException {
    g.flush();
    out.write('\n');
  }

  /**
   * Reads one table with the Kernel scan API (Delta Kernel USER_GUIDE, "Read a Delta table"): scan
   * files from the log replay, each data file read with the engine's Parquet handler, then
   * Scan.transformPhysicalData adds partition values and applies deletion vectors / column mapping.
   */
  private static void readTable(
      Engine engine,
      String dir,
      Long version,
      String[] filter,
      String txn,
      JsonGenerator g,
      OutputStream out)
      throws IOException {
    SnapshotBuilder b = TableManager.loadSnapshot(dir);
    if (version != null) b = b.atVersion(version);
    Snapshot snapshot = b.build(engine);
    StructType schema = snapshot.getSchema();

    g.writeStartObject();
    g.writeStringField("kind", "snapshot");
    g.writeStringField("table", dir);
    g.writeNumberField("version", snapshot.getVersion());
    g.writeFieldName("schema");
    g.writeRawValue(schema.toJson());
    g.writeArrayFieldStart("partitionColumns");
    for (String c : snapshot.getPartitionColumnNames()) g.writeString(c);
    g.writeEndArray();
    if (txn != null) {
      g.writeObjectFieldStart("txn");
      g.writeStringField("appId", txn);
      java.util.Optional<Long> v = snapshot.getLatestTransactionVersion(engine, txn);
      if (v.isPresent()) g.writeNumberField("version", v.get());
      else g.writeNullField("version");
      g.writeEndObject();
    }
    g.writeEndObject();
    line(g, out);

    long totalFiles = countFiles(engine, snapshot.getScanBuilder().build());
    Scan scan =
        filter == null
            ? snapshot.getScanBuilder().build()
            : snapshot.getScanBuilder().withFilter(predicate(schema, filter)).build();
    Row scanState = scan.getScanState(engine);
    StructType physicalSchema = ScanStateRow.getPhysicalDataReadSchema(scanState);
    long rows = 0;
    long files = 0;
    try (CloseableIterator<FilteredColumnarBatch> scanFiles = scan.getScanFiles(engine)) {
      while (scanFiles.hasNext()) {
        try (CloseableIterator<Row> fileRows = scanFiles.next().getRows()) {
          while (fileRows.hasNext()) {
            Row scanFile = fileRows.next();
            files++;
            FileStatus status = InternalScanFileUtils.getAddFileStatus(scanFile);
            CloseableIterator<ColumnarBatch> physical =
                engine
                    .getParquetHandler()
                    .readParquetFiles(
                        io.delta.kernel.internal.util.Utils.singletonCloseableIterator(status),
                        physicalSchema,
                        Optional.empty())
                    .map(FileReadResult::getData);
            try (CloseableIterator<FilteredColumnarBatch> data =
                Scan.transformPhysicalData(engine, scanState, scanFile, physical)) {
              while (data.hasNext()) {
                try (CloseableIterator<Row> it = data.next().getRows()) {
                  while (it.hasNext()) {
                    Row r = it.next();
                    g.writeStartObject();
                    g.writeStringField("kind", "row");
                    g.writeStringField("table", dir);
                    g.writeFieldName("value");
                    writeStruct(g, r);
                    g.writeEndObject();
                    line(g, out);
                    rows++;
                  }
                }
              }
            }
          }
        }
      }
    }
    g.writeStartObject();
    g.writeStringField("kind", "end");
    g.writeStringField("table", dir);
    g.writeNumberField("rows", rows);
    g.writeNumberField("files", files);
    g.writeNumberField("totalFiles", totalFiles);
    g.writeEndObject();
    line(g, out);
  }

  private static void writeStruct(JsonGenerator g, Row r) throws IOException {
    g.writeStartObject();
    StructType t = r.getSchema();
    for (int i = 0; i < t.length(); i++) {
      StructField f = t.at(i);
      g.writeFieldName(f.getName());
      if (r.isNullAt(i)) {
        g.writeNull();
        continue;
      }
      DataType d = f.getDataType();
      if (d instanceof BooleanType) g.writeBoolean(r.getBoolean(i));
      else if (d instanceof ByteType) g.writeNumber(r.getByte(i));
      else if (d instanceof ShortType) g.writeNumber(r.getShort(i));
      else if (d instanceof IntegerType) g.writeNumber(r.getInt(i));
      else if (d instanceof LongType) g.writeString(Long.toString(r.getLong(i)));
      else if (d instanceof FloatType) writeDouble(g, r.getFloat(i));
      else if (d instanceof DoubleType) writeDouble(g, r.getDouble(i));
      else if (d instanceof StringType) g.writeString(r.getString(i));
      else if (d instanceof BinaryType)
        g.writeString(Base64.getEncoder().encodeToString(r.getBinary(i)));
      else if (d instanceof DecimalType) g.writeString(r.getDecimal(i).toPlainString());
      else if (d instanceof DateType) g.writeString(LocalDate.ofEpochDay(r.getInt(i)).toString());
      else if (d instanceof TimestampType) g.writeString(micros(r.getLong(i)) + "Z");
      else if (d instanceof TimestampNTZType) g.writeString(micros(r.getLong(i)));
      else if (d instanceof StructType) writeStruct(g, r.getStruct(i));
      else if (d instanceof ArrayType) writeArray(g, r.getArray(i).getElements(), r.getArray(i).getSize());
      else if (d instanceof MapType) writeMap(g, r.getMap(i));
      else throw new UnsupportedOperationException("type " + d + " of column " + f.getName());
    }
    g.writeEndObject();
  }

  private static void writeArray(JsonGenerator g, ColumnVector v, int n) throws IOException {
    g.writeStartArray();
    for (int j = 0; j < n; j++) writeVectorValue(g, v, j);
    g.writeEndArray();
  }

  private static void writeMap(JsonGenerator g, MapValue m) throws IOException {
    g.writeStartArray();
    for (int j = 0; j < m.getSize(); j++) {
      g.writeStartArray();
      writeVectorValue(g, m.getKeys(), j);
      writeVectorValue(g, m.getValues(), j);
      g.writeEndArray();
    }
    g.writeEndArray();
  }

  private static void writeVectorValue(JsonGenerator g, ColumnVector v, int j) throws IOException {
    if (v.isNullAt(j)) {
      g.writeNull();
      return;
    }
    DataType d = v.getDataType();
    if (d instanceof BooleanType) g.writeBoolean(v.getBoolean(j));
    else if (d instanceof ByteType) g.writeNumber(v.getByte(j));
    else if (d instanceof ShortType) g.writeNumber(v.getShort(j));
    else if (d instanceof IntegerType) g.writeNumber(v.getInt(j));
    else if (d instanceof LongType) g.writeString(Long.toString(v.getLong(j)));
    else if (d instanceof FloatType) writeDouble(g, v.getFloat(j));
    else if (d instanceof DoubleType) writeDouble(g, v.getDouble(j));
    else if (d instanceof StringType) g.writeString(v.getString(j));
    else if (d instanceof BinaryType)
      g.writeString(Base64.getEncoder().encodeToString(v.getBinary(j)));
    else if (d instanceof DecimalType) g.writeString(v.getDecimal(j).toPlainString());
    else if (d instanceof DateType) g.writeString(LocalDate.ofEpochDay(v.getInt(j)).toString());
    else if (d instanceof TimestampType) g.writeString(micros(v.getLong(j)) + "Z");
    else if (d instanceof TimestampNTZType) g.writeString(micros(v.getLong(j)));
    else if (d instanceof ArrayType) {
      ArrayValue a = v.getArray(j);
      writeArray(g, a.getElements(), a.getSize());
    } else if (d instanceof MapType) writeMap(g, v.getMap(j));
    else throw new UnsupportedOperationException("type " + d + " inside an array or map");
  }

  private static void writeDouble(JsonGenerator g, double x) throws IOException {
    if (Double.isNaN(x)) g.writeString("NaN");
    else if (Double.isInfinite(x)) g.writeString(x > 0 ? "Infinity" : "-Infinity");
    else g.writeNumber(x);
  }

  /** Epoch microseconds as "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC wall clock). */
  private static String micros(long us) {
    long s = Math.floorDiv(us, 1_000_000L);
    int nanos = (int) Math.floorMod(us, 1_000_000L) * 1000;
    return LocalDateTime.ofEpochSecond(s, nanos, ZoneOffset.UTC).format(TS);
  }
}
