package dev.fp8q.bench;

import dev.fp8q.converter.quant.ChunkStats;
import dev.fp8q.converter.quant.QuantKernel;
import dev.fp8q.converter.quant.ScalarQuantKernel;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.TensorQuantizer;
import dev.fp8q.converter.quant.VectorQuantKernel;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3Table;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The convert hot loops, one thread, over a 16 Mi-element tensor (larger than the caches): nanoseconds per
 * element. amax passes, encode through the 16-bit table and through arithmetic (scalar and vector), and
 * the whole per-tensor quantizer as convert runs it (histogram + table for 16-bit, kernel for F32).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class QuantBench {

    static final int N = 1 << 24;
    static final long[] SHAPE = {4096, 4096};

    @Param({"BF16", "F32"})
    public String dtype;

    DType dt;
    Arena arena;
    MemorySegment src;
    MemorySegment out;
    byte[] table;
    ForkJoinPool one;
    TensorQuantizer quantizer;

    @Setup
    public void setup() {
        dt = DType.valueOf(dtype);
        arena = Arena.ofShared();
        src = arena.allocate((long) N * dt.bits() / 8, 64);
        out = arena.allocate(N, 64);
        SplittableRandom rnd = new SplittableRandom(1);
        for (long i = 0; i < N; i++) {
            float x = (float) (rnd.nextGaussian() * 0.02);
            if (dt == DType.F32) {
                src.setAtIndex(Elements.FLOAT, i, x);
            } else {
                src.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(x));
            }
        }
        table = dt == DType.F32 ? null : E4M3Table.build(dt, 0.0002f);
        one = new ForkJoinPool(1);
        quantizer = new TensorQuantizer(one, QuantKernel.best());
    }

    @TearDown
    public void tearDown() {
        one.shutdown();
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int amaxScalar() {
        return ScalarQuantKernel.INSTANCE.maxMagnitudeBits(src, dt, 0, N);
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public int amaxVector() {
        return VectorQuantKernel.INSTANCE.maxMagnitudeBits(src, dt, 0, N);
    }

    /** The 16-bit path's encode: one table lookup per element, no figures (those come from the histogram). */
    @Benchmark
    @OperationsPerInvocation(N)
    public MemorySegment encodeTable() {
        if (table == null) {
            return out; // no table for F32
        }
        for (long i = 0; i < N; i++) {
            out.set(ValueLayout.JAVA_BYTE, i, table[src.getAtIndex(Elements.SHORT, i) & 0xFFFF]);
        }
        return out;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public ChunkStats encodeScalar() {
        ChunkStats s = new ChunkStats();
        ScalarQuantKernel.INSTANCE.encode(src, dt, 0, N, 0.0002f, out, s);
        return s;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public ChunkStats encodeVector() {
        ChunkStats s = new ChunkStats();
        VectorQuantKernel.INSTANCE.encode(src, dt, 0, N, 0.0002f, out, s);
        return s;
    }

    /** Everything convert does per tensor except I/O: both passes and the figures. */
    @Benchmark
    @OperationsPerInvocation(N)
    public Object quantizeTensor() throws Exception {
        return quantizer.quantize("t", src, dt, (el, bytes) -> { });
    }

    /** A 4096 x 4096 weight with one scale per row. */
    @Benchmark
    @OperationsPerInvocation(N)
    public Object quantizeChannel() throws Exception {
        return quantizer.quantize("t", src, dt, SHAPE, new Scaling(Scaling.Granularity.CHANNEL, false), (el, bytes) -> { });
    }

    /** A 4096 x 4096 weight with one scale per 128 x 128 tile. */
    @Benchmark
    @OperationsPerInvocation(N)
    public Object quantizeBlock() throws Exception {
        return quantizer.quantize("t", src, dt, SHAPE, new Scaling(Scaling.Granularity.BLOCK, false), (el, bytes) -> { });
    }
}
