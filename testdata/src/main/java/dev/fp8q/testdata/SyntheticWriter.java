package dev.fp8q.testdata;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.ShardIndex;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes synthetic tensors deterministically: each chunk of each tensor draws from its own generator seeded
 * by (seed, name, chunk), so the bytes do not depend on thread count or write order. Weights are Gaussian
 * (std 0.02) with rare outliers (1 in 10^4 values, 20x), as trained transformer weights look to amax.
 */
public final class SyntheticWriter {

    private static final long CHUNK = 1 << 20; // elements per independently seeded chunk

    private SyntheticWriter() {}

    /** Writes one file (maxShardBytes <= 0) or shards named prefix-0000k-of-0000n.safetensors with an index. */
    public static List<Path> write(List<WanLayout.Spec> specs, DType dtype, long seed, Path out, String prefix,
            long maxShardBytes, int threads) throws IOException, FormatException {
        if (!dtype.isQuantizableSource()) {
            throw new IllegalArgumentException("synthetic checkpoints are BF16, F16 or F32, not " + dtype);
        }
        List<List<WanLayout.Spec>> shards = new ArrayList<>();
        if (maxShardBytes <= 0) {
            shards.add(specs);
        } else {
            List<WanLayout.Spec> cur = new ArrayList<>();
            long size = 0;
            for (WanLayout.Spec s : specs) {
                long b = numel(s.shape()) * dtype.byteSize();
                if (!cur.isEmpty() && size + b > maxShardBytes) {
                    shards.add(cur);
                    cur = new ArrayList<>();
                    size = 0;
                }
                cur.add(s);
                size += b;
            }
            shards.add(cur);
        }
        List<Path> files = new ArrayList<>();
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        if (maxShardBytes <= 0) {
            Files.createDirectories(out.toAbsolutePath().getParent());
            writeFile(out, shards.getFirst(), dtype, seed, threads);
            files.add(out);
            return files;
        }
        Files.createDirectories(out);
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("%s-%05d-of-%05d.safetensors", prefix, i + 1, shards.size());
            Path f = out.resolve(name);
            writeFile(f, shards.get(i), dtype, seed, threads);
            files.add(f);
            for (WanLayout.Spec s : shards.get(i)) {
                weightMap.put(s.name(), name);
                total += numel(s.shape()) * dtype.byteSize();
            }
        }
        ShardIndex.write(out.resolve(prefix + ShardIndex.SUFFIX), total, weightMap);
        return files;
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    private static void writeFile(Path file, List<WanLayout.Spec> specs, DType dtype, long seed, int threads)
            throws IOException, FormatException {
        List<TensorSpec> ts = specs.stream().map(s -> new TensorSpec(s.name(), dtype, s.shape())).toList();
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
        try (SafetensorsWriter w = SafetensorsWriter.create(file, Map.of("format", "pt"), ts)) {
            List<Future<?>> jobs = new ArrayList<>();
            for (WanLayout.Spec s : specs) {
                long n = numel(s.shape());
                for (long start = 0; start < n; start += CHUNK) {
                    long from = start;
                    long count = Math.min(CHUNK, n - start);
                    jobs.add(pool.submit(() -> {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment buf = arena.allocate(count * dtype.byteSize());
                            fill(buf, dtype, s, seed, from, count);
                            w.write(s.name(), from * dtype.byteSize(), buf);
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                        return null;
                    }));
                }
            }
            for (Future<?> f : jobs) {
                f.get();
            }
            w.commit();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof UncheckedIOException u ? u.getCause() : new IOException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
    }

    /** Values of elements [from, from + count) of one tensor. */
    static void fill(MemorySegment buf, DType dtype, WanLayout.Spec s, long seed, long from, long count) {
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ s.name().hashCode() * 31L ^ from);
        double invSqrtDim = 1 / Math.sqrt(s.shape()[s.shape().length - 1]);
        for (long i = 0; i < count; i++) {
            double g = r.nextGaussian();
            double v = switch (s.init()) {
                case WEIGHT -> (r.nextInt(10_000) == 0 ? 20 * g : g) * 0.02;
                case BIAS -> g * 0.02;
                case NORM_WEIGHT -> 1 + g * 0.1;
                case MODULATION -> g * 0.5 * invSqrtDim;
                case EMBEDDING -> g;
            };
            float f = (float) v;
            switch (dtype) {
                case BF16 -> buf.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(f));
                case F16 -> buf.setAtIndex(Elements.SHORT, i, Float.floatToFloat16(f));
                case F32 -> buf.setAtIndex(Elements.FLOAT, i, f);
                default -> throw new IllegalStateException();
            }
        }
    }
}
