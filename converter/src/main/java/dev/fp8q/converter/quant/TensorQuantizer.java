package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E4M3Table;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Per-tensor E4M3 quantization of a mapped BF16/F16/F32 tensor, in parallel chunks. 16-bit sources go
 * through a histogram of the 65536 bit patterns (amax, NaN/Inf count and the error figures follow exactly
 * from it) and the 64 KiB encode table; F32 divides each value by the scale (NUMERICS.md).
 */
public final class TensorQuantizer {

    /** Elements per parallel chunk. */
    public static final int CHUNK = 1 << 22;

    /** Receives encoded chunks: element offset and the bytes (valid only during the call). */
    @FunctionalInterface
    public interface Sink {
        void accept(long element, MemorySegment bytes) throws Exception;
    }

    private final ForkJoinPool pool;

    public TensorQuantizer(ForkJoinPool pool) {
        this.pool = pool;
    }

    static int chunks(long n) {
        return (int) ((n + CHUNK - 1) / CHUNK);
    }

    /** Quantizes with scale amax/448 (1.0 for an all-zero tensor), writing chunks to the sink. */
    public QuantResult quantize(String name, MemorySegment src, DType dtype, Sink sink) throws Exception {
        return switch (dtype) {
            case BF16, F16 -> sixteenBit(name, src, dtype, sink);
            case F32 -> f32(name, src, sink);
            default -> throw new IllegalArgumentException("cannot quantize " + dtype);
        };
    }

    private QuantResult sixteenBit(String name, MemorySegment src, DType dtype, Sink sink) throws Exception {
        long n = src.byteSize() / 2;
        long[] hist = pool.submit(() -> IntStream.range(0, chunks(n)).parallel().mapToObj(c -> {
            long[] h = new long[65536];
            long end = Math.min(n, (long) (c + 1) * CHUNK);
            for (long i = (long) c * CHUNK; i < end; i++) {
                h[src.getAtIndex(Elements.SHORT, i) & 0xFFFF]++;
            }
            return h;
        }).reduce(new long[65536], TensorQuantizer::add)).get();
        int infExp = dtype == DType.BF16 ? 0x7F80 : 0x7C00;
        long bad = 0;
        int maxMag = 0;
        for (int b = 0; b < 65536; b++) {
            if (hist[b] == 0) {
                continue;
            }
            int mag = b & 0x7FFF;
            if (mag >= infExp) {
                bad += hist[b];
            } else {
                maxMag = Math.max(maxMag, mag);
            }
        }
        if (bad > 0) {
            throw new NonFiniteException(name, bad);
        }
        float amax = Elements.halfToFloat(dtype, maxMag);
        float scale = amax == 0f ? 1f : amax / E4M3.MAX;
        byte[] table = E4M3Table.build(dtype, scale);
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int b = 0; b < 65536; b++) {
            if (hist[b] == 0) {
                continue;
            }
            double x = Elements.halfToFloat(dtype, b);
            double d = (double) (E4M3.decode(table[b]) * scale);
            signal += hist[b] * x * x;
            noise += hist[b] * (x - d) * (x - d);
            if (x != 0) {
                nonzero += hist[b];
                if (d == 0) {
                    underflow += hist[b];
                }
            }
        }
        encodeChunks(n, sink, (from, to, out) -> {
            for (long i = from; i < to; i++) {
                out.set(ValueLayout.JAVA_BYTE, i - from, table[src.getAtIndex(Elements.SHORT, i) & 0xFFFF]);
            }
        });
        return new QuantResult(amax, scale, signal, noise, nonzero, underflow);
    }

    private static long[] add(long[] a, long[] b) {
        for (int i = 0; i < a.length; i++) {
            a[i] += b[i];
        }
        return a;
    }

    private QuantResult f32(String name, MemorySegment src, Sink sink) throws Exception {
        long n = src.byteSize() / 4;
        long[] maxAndBad = pool.submit(() -> IntStream.range(0, chunks(n)).parallel().mapToObj(c -> {
            int max = 0;
            long bad = 0;
            long end = Math.min(n, (long) (c + 1) * CHUNK);
            for (long i = (long) c * CHUNK; i < end; i++) {
                int m = src.getAtIndex(Elements.INT, i) & 0x7FFF_FFFF;
                if (m >= 0x7F80_0000) {
                    bad++;
                } else if (m > max) {
                    max = m;
                }
            }
            return new long[] {max, bad};
        }).reduce(new long[] {0, 0}, (a, b) -> new long[] {Math.max(a[0], b[0]), a[1] + b[1]})).get();
        if (maxAndBad[1] > 0) {
            throw new NonFiniteException(name, maxAndBad[1]);
        }
        float amax = Float.intBitsToFloat((int) maxAndBad[0]);
        float scale = amax == 0f ? 1f : amax / E4M3.MAX;
        int chunks = chunks(n);
        double[] sig = new double[chunks];
        double[] noi = new double[chunks];
        long[] nz = new long[chunks];
        long[] uf = new long[chunks];
        encodeChunks(n, sink, (from, to, out) -> {
            int c = (int) (from / CHUNK);
            double s = 0;
            double e = 0;
            long z = 0;
            long u = 0;
            for (long i = from; i < to; i++) {
                float x = src.getAtIndex(Elements.FLOAT, i);
                byte code = E4M3.encode(x / scale);
                out.set(ValueLayout.JAVA_BYTE, i - from, code);
                double d = (double) (E4M3.decode(code) * scale);
                s += (double) x * x;
                e += (x - d) * (x - d);
                if (x != 0) {
                    z++;
                    if (d == 0) {
                        u++;
                    }
                }
            }
            sig[c] = s;
            noi[c] = e;
            nz[c] = z;
            uf[c] = u;
        });
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int c = 0; c < chunks; c++) { // summed in chunk order: the same figures at any thread count
            signal += sig[c];
            noise += noi[c];
            nonzero += nz[c];
            underflow += uf[c];
        }
        return new QuantResult(amax, scale, signal, noise, nonzero, underflow);
    }

    @FunctionalInterface
    interface ChunkEncoder {
        void encode(long from, long to, MemorySegment out);
    }

    /** Runs the encoder over chunks in parallel, each into its own buffer handed to the sink. */
    private void encodeChunks(long n, Sink sink, ChunkEncoder enc) throws Exception {
        ChunkBuffers.forEachChunk(pool, n, CHUNK, 1, (from, to, out) -> {
            enc.encode(from, to, out);
            sink.accept(from, out);
        });
    }
}
