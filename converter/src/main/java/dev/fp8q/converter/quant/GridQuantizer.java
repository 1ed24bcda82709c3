package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ForkJoinPool;

/**
 * Channel, block and MX E4M3 quantization: the weight viewed as [rows, cols] is cut into bands of tile rows (one
 * row per channel and MX band, 128 per block band); each band's tiles get amax from the kernel's max pass over their row
 * segments, then every row segment is encoded with its tile's scale. Bands are independent, so chunks of
 * whole bands run in parallel and their figures are summed in band order.
 */
final class GridQuantizer {

    private final ForkJoinPool pool;
    private final QuantKernel kernel;

    GridQuantizer(ForkJoinPool pool, QuantKernel kernel) {
        this.pool = pool;
        this.kernel = kernel;
    }

    QuantResult quantize(String name, MemorySegment src, DType dtype, long[] shape, Scaling scaling,
            TensorQuantizer.Sink sink) throws Exception {
        long n = src.byteSize() * 8 / dtype.bits();
        long rows = Scaling.rows(shape);
        long cols = Scaling.cols(shape);
        long[] grid = scaling.grid(shape);
        long tileRows = scaling.tileRows();
        long tileCols = scaling.tileCols(cols);
        int gridCols = Math.toIntExact(grid[1]);
        float[] scales = new float[Math.toIntExact(grid[0] * grid[1])];
        float[] bandAmax = new float[Math.toIntExact(grid[0])];
        long band = tileRows * cols;
        long perChunk = Math.max(1, TensorQuantizer.CHUNK / Math.max(band, 1)) * band;
        int nonFinite = QuantKernel.nonFiniteBits(dtype);
        int chunks = n == 0 ? 0 : Math.toIntExact(Scaling.ceil(n, perChunk));
        ChunkStats[] stats = new ChunkStats[chunks];
        java.util.Arrays.fill(scales, 1f); // tiles of an empty tensor
        ChunkBuffers.forEachChunk(pool, n, perChunk, 1, (from, to, out) -> {
            ChunkStats s = new ChunkStats();
            for (long r0 = from / cols; r0 * cols < to; r0 += tileRows) {
                int gr = (int) (r0 / tileRows);
                long r1 = Math.min(rows, r0 + tileRows);
                int[] maxBits = new int[gridCols];
                for (long r = r0; r < r1; r++) {
                    for (int gc = 0; gc < gridCols; gc++) {
                        long c0 = gc * tileCols;
                        long c1 = Math.min(cols, c0 + tileCols);
                        maxBits[gc] = Math.max(maxBits[gc], kernel.maxMagnitudeBits(src, dtype, r * cols + c0, r * cols + c1));
                    }
                }
                float amax = 0;
                for (int gc = 0; gc < gridCols; gc++) {
                    if (maxBits[gc] >= nonFinite) {
                        throw new NonFiniteException(name, Amax.of(src, dtype).nonFinite());
                    }
                    float a = dtype == DType.F32 ? Float.intBitsToFloat(maxBits[gc]) : Elements.halfToFloat(dtype, maxBits[gc]);
                    amax = Math.max(amax, a);
                    scales[gr * gridCols + gc] = scaling.scaleOf(a);
                }
                bandAmax[gr] = amax;
                for (long r = r0; r < r1; r++) {
                    for (int gc = 0; gc < gridCols; gc++) {
                        long c0 = gc * tileCols;
                        long c1 = Math.min(cols, c0 + tileCols);
                        long i = r * cols + c0;
                        kernel.encode(src, dtype, i, r * cols + c1, scales[gr * gridCols + gc], out.asSlice(i - from), s);
                    }
                }
            }
            stats[(int) (from / perChunk)] = s;
            sink.accept(from, out);
        });
        return QuantResult.of(bandAmax, scales, stats);
    }
}
