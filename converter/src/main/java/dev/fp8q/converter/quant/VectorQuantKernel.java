package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The exact encoder in integer vector arithmetic. Normal values: adding 0x7FFFF plus the lowest kept
 * mantissa bit to the float32 bits rounds to 3 mantissa bits, ties to even, and a carry moves into the
 * exponent as it should; rebiasing the exponent (127 - 7) gives the code. Subnormal values (|q| < 2^-6):
 * adding 2^14, whose ulp is 2^-9, rounds |q| to whole subnormal steps in the FPU's ties-to-even mode.
 * The figures are summed as QuantKernel#encode defines, bit for bit like the scalar kernel.
 * Vector width: {@code -Dfp8q.vector.bits} (256 or 512; default the CPU's preferred).
 */
public final class VectorQuantKernel implements QuantKernel {

    public static final VectorQuantKernel INSTANCE = new VectorQuantKernel();

    private static final int BITS = bits();
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(BITS));
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(BITS));
    private static final int L = I.length();
    /** Half-width shorts and quarter-width bytes: one lane per int lane. */
    private static final VectorSpecies<Short> S_HALF = halfShape(ShortVector.SPECIES_PREFERRED, 2);
    private static final VectorSpecies<Byte> B_QUARTER = halfShape(ByteVector.SPECIES_PREFERRED, 4);
    /** Full-width shorts for the 16-bit maximum. */
    private static final VectorSpecies<Short> S_FULL = ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(BITS));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final float SUB_MAGIC = 0x1p14f;
    private static final int SUB_MAGIC_BITS = Float.floatToRawIntBits(SUB_MAGIC);
    /** F16 magnitude bits shifted into float32 position are the value times 2^-112. */
    private static final float F16_REBIAS = 0x1p112f;

    private static final AtomicBoolean WARMING = new AtomicBoolean(); // one warm-up per process
    private static volatile boolean ready;

    private VectorQuantKernel() {}

    /**
     * Starts, once per process, a daemon thread that runs this kernel on a copy of a tensor's first
     * elements until the JIT has compiled it, then sets {@link #ready()}. The copy is mapped from a
     * temporary file so the compiled code is made for the segment types of real sources (a mapped file in
     * a shared arena, an automatic output buffer); code compiled for others is thrown away when it meets them.
     */
    public static void warmUpInBackground(MemorySegment sample, DType dtype) {
        long bytes = Math.min(sample.byteSize(), 64 * 1024) / 64 * 64;
        if (!usable() || bytes == 0 || !WARMING.compareAndSet(false, true)) {
            return;
        }
        byte[] copy = sample.asSlice(0, bytes).toArray(ValueLayout.JAVA_BYTE);
        Thread.ofPlatform().daemon().name("fp8q-kernel-warm-up").start(() -> warmUp(copy, dtype));
    }

    /** Waits up to ms for {@link #ready()} (false at once where no warm-up runs). */
    public static void awaitReady(long ms) throws InterruptedException {
        for (long end = System.nanoTime() + ms * 1_000_000; !ready && WARMING.get() && System.nanoTime() < end; ) {
            Thread.sleep(2);
        }
    }

    /** True once the warm-up has seen the compiled kernel run fast. */
    public static boolean ready() {
        return ready;
    }

    private static void warmUp(byte[] bytes, DType dtype) {
        Path file = null;
        try (Arena arena = Arena.ofShared()) {
            file = Files.createTempFile("fp8q-warm-up", ".bin");
            Files.write(file, bytes);
            MemorySegment sample;
            try (FileChannel ch = FileChannel.open(file)) {
                sample = ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes.length, arena);
            }
            Files.deleteIfExists(file);
            long n = sample.byteSize() / (dtype.bits() / 8);
            ChunkStats stats = new ChunkStats();
            MemorySegment out = Arena.ofAuto().allocate(n, 64); // as ChunkBuffers makes them
            for (int round = 0, fast = 0; round < 20_000 && fast < 3; round++) {
                long t0 = System.nanoTime();
                int max = INSTANCE.maxMagnitudeBits(sample, dtype, 0, n);
                INSTANCE.encode(sample, dtype, 0, n, max == 0 ? 1f : 0.01f, out, stats);
                fast = System.nanoTime() - t0 < n ? fast + 1 : 0; // under 1 ns per element
                ready = fast == 3;
            }
            dev.fp8q.converter.Trace.mark("kernel warm-up (" + dtype + ") " + (ready ? "ready" : "gave up"));
        } catch (IOException | RuntimeException e) {
            // no warm-up: the scalar kernel does the work, with the same bytes and figures
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (IOException ignored) {
                    // a temporary file
                }
            }
        }
    }

    /** True where vectors of at least 256 bits exist (the byte output needs a 64-bit species). */
    public static boolean usable() {
        return BITS >= 256;
    }

    public static int vectorBits() {
        return BITS;
    }

    /** Float lanes per vector: the figures' summation order depends on it (QuantKernel#encode). */
    public static int lanes() {
        return L;
    }

    private static int bits() {
        String p = System.getProperty("fp8q.vector.bits");
        int preferred = IntVector.SPECIES_PREFERRED.vectorBitSize();
        if (p == null || p.isBlank()) {
            return preferred;
        }
        int b = Integer.parseInt(p.trim());
        if (b != 128 && b != 256 && b != 512) {
            throw new IllegalArgumentException("fp8q.vector.bits must be 128, 256 or 512, not " + p);
        }
        return b;
    }

    private static <E> VectorSpecies<E> halfShape(VectorSpecies<E> any, int divisor) {
        int b = Math.max(64, BITS / divisor);
        return any.withShape(VectorShape.forBitSize(b));
    }

    @Override
    public int maxMagnitudeBits(MemorySegment src, DType dtype, long from, long to) {
        QuantKernel.nonFiniteBits(dtype);
        int lanes = dtype == DType.F32 ? L : S_FULL.length();
        long end = from + (to - from) / lanes * lanes;
        int max = 0;
        for (long i = from; i < end; i += (long) BLOCK * lanes) {
            long blockEnd = Math.min(end, i + (long) BLOCK * lanes);
            max = Math.max(max, dtype == DType.F32 ? maxBlock32(src, i, blockEnd) : maxBlock16(src, i, blockEnd));
        }
        return Math.max(max, ScalarQuantKernel.INSTANCE.maxMagnitudeBits(src, dtype, end, to));
    }

    private static int maxBlock32(MemorySegment src, long from, long to) {
        IntVector max = IntVector.zero(I);
        for (long i = from; i < to; i += L) {
            max = max.max(IntVector.fromMemorySegment(I, src, i * 4, LE).and(0x7FFF_FFFF));
        }
        return max.reduceLanes(VectorOperators.MAX);
    }

    private static int maxBlock16(MemorySegment src, long from, long to) {
        ShortVector max = ShortVector.zero(S_FULL);
        for (long i = from; i < to; i += S_FULL.length()) {
            max = max.max(ShortVector.fromMemorySegment(S_FULL, src, i * 2, LE).and((short) 0x7FFF));
        }
        return max.reduceLanes(VectorOperators.MAX);
    }

    @Override
    public void encode(MemorySegment src, DType dtype, long from, long to, float scale, MemorySegment out,
            ChunkStats stats) {
        QuantKernel.nonFiniteBits(dtype);
        StatsScale ss = StatsScale.of(scale);
        float[] lanes = new float[L];
        long i = from;
        long end = from + (to - from) / L * L;
        while (i < end) {
            long blockEnd = Math.min(end, i + (long) BLOCK * L);
            block(src, dtype, i, blockEnd, scale, ss, lanes, out, i - from, stats);
            i = blockEnd;
        }
        for (; i < to; i++) {
            float x = Elements.get(src, dtype, i);
            byte c = E4M3.encode(x / scale);
            out.set(ValueLayout.JAVA_BYTE, i - from, c);
            ScalarQuantKernel.tail(stats, x, c, scale);
        }
    }

    /**
     * Up to BLOCK vectors, in a method of its own: called often, it is compiled early as a whole instead
     * of through on-stack replacement of a long loop (the Vector API is very slow until compiled).
     */
    private static void block(MemorySegment src, DType dtype, long from, long to, float scale, StatsScale ss,
            float[] lanes, MemorySegment out, long outOffset, ChunkStats stats) {
        float p = ss.p();
        FloatVector sig = FloatVector.zero(F);
        FloatVector noi = FloatVector.zero(F);
        for (long i = from; i < to; i += L) {
            FloatVector x = load(src, dtype, i);
            IntVector xAbs = x.reinterpretAsInts().and(0x7FFF_FFFF);
            IntVector q = x.div(scale).reinterpretAsInts();
            IntVector abs = q.and(0x7FFF_FFFF);
            IntVector rounded = abs.add(abs.lanewise(VectorOperators.LSHR, 20).and(1)).add(0x7FFFF);
            FloatVector y = abs.reinterpretAsFloats().add(SUB_MAGIC);
            VectorMask<Integer> sub = abs.compare(VectorOperators.LT, 0x3C80_0000);
            VectorMask<Integer> sat = abs.compare(VectorOperators.GE, 0x43E0_0000);
            IntVector mag = rounded.lanewise(VectorOperators.LSHR, 20).sub(960)
                    .blend(y.reinterpretAsInts().sub(SUB_MAGIC_BITS), sub)
                    .blend(0x7E, sat)
                    .blend(0x7F, abs.compare(VectorOperators.GT, 0x7F80_0000));
            IntVector code = mag.or(q.lanewise(VectorOperators.LSHR, 24).and(0x80));
            ((ByteVector) code.convertShape(VectorOperators.I2B, B_QUARTER, 0))
                    .intoMemorySegment(out, outOffset + i - from, LE);
            // |x| - |code| * scale, both in float32 as the scalar definition has them
            FloatVector qr = rounded.and(0xFFF0_0000).reinterpretAsFloats()
                    .blend(y.sub(SUB_MAGIC), sub.cast(F))
                    .blend(E4M3.MAX, sat.cast(F));
            FloatVector xs = x.mul(p);
            FloatVector e = xAbs.reinterpretAsFloats().sub(qr.mul(scale)).mul(p);
            sig = xs.fma(xs, sig);
            noi = e.fma(e, noi);
            VectorMask<Integer> nz = xAbs.compare(VectorOperators.NE, 0);
            stats.nonzero += nz.trueCount();
            stats.underflow += nz.and(mag.compare(VectorOperators.EQ, 0)).trueCount();
        }
        sig.intoArray(lanes, 0);
        stats.signal += ss.sumLanes(lanes);
        noi.intoArray(lanes, 0);
        stats.noise += ss.sumLanes(lanes);
    }

    /** L elements as float32: BF16 is the upper half of float32; F16 is rebiased exactly. */
    private static FloatVector load(MemorySegment src, DType dtype, long i) {
        if (dtype == DType.F32) {
            return FloatVector.fromMemorySegment(F, src, i * 4, LE);
        }
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S_HALF, src, i * 2, LE)
                .convertShape(VectorOperators.S2I, I, 0);
        if (dtype == DType.BF16) {
            return h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }
        IntVector mag = h.and(0x7FFF);
        FloatVector v = mag.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(F16_REBIAS);
        IntVector special = mag.lanewise(VectorOperators.LSHL, 13).or(0x7F80_0000); // Inf and NaN keep payload
        IntVector bits = v.reinterpretAsInts().blend(special, mag.compare(VectorOperators.GE, 0x7C00));
        return bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }
}
