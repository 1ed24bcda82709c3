package dev.fp8q.verifier.weights;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.Components;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.Interrupts;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.TreeMirror;
import dev.fp8q.formats.OutputLock;
import dev.fp8q.formats.StagedOutput;
import dev.fp8q.formats.Fp8Names;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E5M2;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.ShardIndex;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.verifier.Verifier;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;

/**
 * fp8q dequantize: an FP8 checkpoint (fp8q's or another tool's, in any layout Fp8Checkpoint reads) back to
 * BF16/F16/F32 safetensors with the original names. FP8 codes times their scales (per tensor, channel or
 * block), rounded to nearest even into the output dtype; an FP8 tensor without any scale (a plain cast) is
 * taken at face value; scale tensors and ComfyUI's legacy {@code scaled_fp8} marker are dropped; every other
 * tensor is copied byte for byte. Shards, index and components mirror DST; written to a temporary folder that is
 * renamed to OUT at the end, so OUT never exists half-written; one run per OUT (a lock), which removes what killed runs left. Tensors are streamed in chunks, off the heap.
 */
public final class Dequantizer {

    /** What was written. */
    public record Result(int dequantized, int copied, int scalesDropped, long bytes) {}

    private static final int CHUNK = 1 << 20;

    private Dequantizer() {}

    /**
     * OUT mirrors DST: a file gives a file (its manifest beside it), a folder a folder holding every file not
     * dequantized, unchanged. OUT is replaced (force) only when it is an earlier fp8q output.
     */
    public static Result run(Path dst, Path out, DType dtype, boolean force, List<String> commandLine)
            throws FormatException, IOException, OutputLock.BusyException, OutputGuard.RefusedException {
        if (dtype != DType.BF16 && dtype != DType.F16 && dtype != DType.F32) {
            throw new IllegalArgumentException("dequantize writes bf16, f16 or f32, not " + dtype);
        }
        Optional<Manifest> manifest = Verifier.readManifest(dst);
        boolean folder = Files.isDirectory(dst);
        Path target = OutputGuard.outputPath(dst, out).toAbsolutePath().normalize();
        Path manifestPath = folder ? target.resolve(Manifest.FILE) : Manifest.locate(target);
        OutputGuard.check(dst, target, manifestPath, force);
        List<Components.Component> parts = parts(dst, manifest);
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".fp8q-tmp-" + UUID.randomUUID());
        try (OutputLock lock = OutputLock.acquire(target);
                Interrupts armed = Interrupts.cleanUp(List.of(tmp, OutputLock.lockFile(target)))) {
            lock.removeStale(target); // what killed runs into OUT left behind
            OutputGuard.check(dst, target, manifestPath, force);
            Files.createDirectories(tmp);
            int[] counts = new int[3];
            long bytes = 0;
            List<Manifest.TensorRecord> records = new ArrayList<>();
            try {
                Path root = dst.toAbsolutePath().normalize();
                Set<Path> consumed = new HashSet<>(Set.of(root.resolve(Manifest.FILE)));
                for (Components.Component c : parts) {
                    List<Manifest.TensorRecord> own = manifest.map(m -> m.tensors().stream()
                            .filter(r -> c.name().equals(r.component() == null ? "" : r.component())).toList())
                            .orElse(List.of());
                    Path p = c.path().toAbsolutePath().normalize();
                    Path rel = folder ? root.relativize(Files.isDirectory(p) ? p : p.getParent()) : Path.of("");
                    Path dir = Files.createDirectories(tmp.resolve(rel.toString()));
                    try (Checkpoint cp = Checkpoint.open(c.path())) {
                        bytes += component(new Fp8Checkpoint(cp, own), c.path(), dir, folder ? null : target.getFileName().toString(),
                                dtype, counts, folder ? rel.toString() : "", records);
                        cp.shards().forEach(sh -> consumed.add(sh.path().toAbsolutePath().normalize()));
                    }
                    if (Files.isDirectory(p)) {
                        consumed.add(p.resolve("hf_quant_config.json")); // ModelOpt's: OUT is not quantized
                    }
                }
                if (folder) {
                    TreeMirror.carry(dst, tmp, consumed, SafetensorsWriter.syncs());
                }
                List<String> files = new ArrayList<>(OutputGuard.relativeFiles(tmp));
                if (folder) {
                    files.add(Manifest.FILE);
                }
                Manifest m = new Manifest(Manifest.TOOL, Manifest.TOOL_VERSION, commandLine,
                        List.of(new Manifest.Source("", dst.getFileName().toString(), folder ? 0 : Files.size(dst))),
                        Map.of("dequantize_dtype", dtype.name()), null, files.stream().sorted().toList(), records,
                        new Manifest.Totals(records.size(), 0, records.size(), 0, bytes));
                StagedOutput.publish(m, tmp, target, manifestPath, folder);
            } catch (IOException | FormatException | RuntimeException | Error e) {
                FileTrees.delete(tmp);
                throw e;
            }
            return new Result(counts[0], counts[1], counts[2], bytes);
        }
    }

    /** The checkpoints to dequantize: what convert wrote, by the manifest, or DST's safetensors components. */
    private static List<Components.Component> parts(Path dst, Optional<Manifest> manifest) throws FormatException {
        if (manifest.isPresent() && manifest.get().components() != null) {
            List<Components.Component> out = new ArrayList<>();
            for (Manifest.ComponentRecord c : manifest.get().components()) {
                if (c.action().equals("converted")) {
                    out.add(new Components.Component(c.name(),
                            c.output().isEmpty() || !Files.isDirectory(dst) ? dst : dst.resolve(c.output())));
                }
            }
            return out;
        }
        return Components.of(dst).stream().filter(c -> !c.isPth()).toList(); // a .pth is carried as it is
    }

    /** fileName: the output's name for a single-file OUT, else null (shards keep their names). */
    private static long component(Fp8Checkpoint fp8, Path source, Path dir, String fileName, DType dtype, int[] counts,
            String rel, List<Manifest.TensorRecord> records) throws FormatException, IOException {
        Checkpoint cp = fp8.checkpoint();
        Set<String> scales = new HashSet<>();
        Set<String> unscaled = new HashSet<>();
        List<String> fp8Names = cp.tensors().stream().filter(t -> isFp8(t.entry().dtype())).map(Checkpoint.Tensor::name).toList();
        for (String name : fp8Names) {
            if (name.equals(Fp8Names.LEGACY_MARKER)) {
                scales.add(name); // says "scaled FP8 inside": not true of OUT
                continue;
            }
            try {
                scales.add(fp8.scaleName(name));
            } catch (FormatException noScale) {
                unscaled.add(name); // a plain cast to FP8: the codes are the values
            }
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        for (TensorFile shard : cp.shards()) {
            List<Checkpoint.Tensor> tensors = cp.tensors().stream()
                    .filter(t -> t.shard() == shard && !scales.contains(t.name())).toList();
            counts[2] += (int) cp.tensors().stream().filter(t -> t.shard() == shard && scales.contains(t.name())).count();
            List<TensorSpec> specs = new ArrayList<>();
            for (Checkpoint.Tensor t : tensors) {
                specs.add(new TensorSpec(t.name(), isFp8(t.entry().dtype()) ? dtype : t.entry().dtype(), t.entry().shape()));
            }
            Map<String, String> metadata = new TreeMap<>(shard.metadata() == null ? Map.of() : shard.metadata());
            metadata.remove(Fp8Names.COMFY_METADATA);
            Path file = dir.resolve(fileName != null ? fileName : shard.path().getFileName().toString());
            try (SafetensorsWriter w = SafetensorsWriter.create(file, metadata, specs)) {
                for (Checkpoint.Tensor t : tensors) {
                    if (isFp8(t.entry().dtype())) {
                        dequantize(t, unscaled.contains(t.name()) ? null : fp8.scales(t.name()), dtype, w);
                        counts[0]++;
                        total += t.entry().numel() * (dtype.bits() / 8);
                    } else {
                        MemorySegment data = t.data();
                        for (long off = 0; off < data.byteSize(); off += CHUNK * 64L) { // 64 MiB writes
                            w.write(t.name(), off, data.asSlice(off, Math.min(CHUNK * 64L, data.byteSize() - off)));
                        }
                        counts[1]++;
                        total += t.entry().byteSize();
                    }
                    weightMap.put(t.name(), file.getFileName().toString());
                }
                w.commit();
                Map<String, String> crcs = w.checksums();
                String where = rel.isEmpty() ? file.getFileName().toString() : rel + "/" + file.getFileName();
                for (Checkpoint.Tensor t : tensors) {
                    var e = w.entry(t.name());
                    records.add(new Manifest.TensorRecord(t.name(), rel, where, t.entry().dtype().name(),
                            List.of(box(t.entry().shape())), e.dtype().name(), List.of(box(e.shape())),
                            isFp8(t.entry().dtype()) ? "dequantize" : "preserve", isFp8(t.entry().dtype()) ? "dequantize:codes-times-scales" : "copy",
                            null, null, null, null, null, crcs.get(t.name()), e.byteSize()));
                }
            }
        }
        if (cp.index().isPresent()) {
            ShardIndex.write(dir.resolve(cp.index().get().file().getFileName().toString()), total, weightMap);
        }
        Path config = Files.isDirectory(source) ? source.resolve("config.json") : null;
        if (config != null && Files.isRegularFile(config)) {
            writeConfig(config, dir.resolve("config.json"));
        }
        return total;
    }

    /**
     * Codes times their scales (grid null: no scale, the codes are the values). A chunk's failure is kept, not
     * thrown, until every chunk has ended: a parallel stream rethrows while the others still run, and the writer
     * and source closed under them would then report their error instead of this one.
     */
    private static void dequantize(Checkpoint.Tensor t, ScaleGrid grid, DType dtype, SafetensorsWriter w)
            throws IOException {
        MemorySegment codes = t.data();
        long n = t.entry().numel();
        int width = dtype.bits() / 8;
        boolean e5m2 = t.entry().dtype() == DType.F8_E5M2;
        AtomicReference<IOException> failure = new AtomicReference<>();
        IntStream.range(0, (int) ((n + CHUNK - 1) / CHUNK)).parallel().forEach(c -> {
            if (failure.get() != null) {
                return;
            }
            long from = (long) c * CHUNK;
            long to = Math.min(n, from + CHUNK);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate((to - from) * width);
                for (long i = from; i < to; i++) {
                    byte code = codes.get(ValueLayout.JAVA_BYTE, i);
                    float v = (e5m2 ? E5M2.decode(code) : E4M3.decode(code)) * (grid == null ? 1f : grid.scaleOf(i));
                    switch (dtype) {
                        case BF16 -> buf.setAtIndex(Elements.SHORT, i - from, Elements.floatToBf16(v));
                        case F16 -> buf.setAtIndex(Elements.SHORT, i - from, Float.floatToFloat16(v));
                        default -> buf.setAtIndex(Elements.FLOAT, i - from, v);
                    }
                }
                w.write(t.name(), from * width, buf);
            } catch (IOException e) {
                failure.compareAndSet(null, e);
            }
        });
        if (failure.get() != null) {
            throw failure.get();
        }
    }

    private static Long[] box(long[] shape) {
        Long[] out = new Long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = shape[i];
        }
        return out;
    }

    private static boolean isFp8(DType d) {
        return d == DType.F8_E4M3 || d == DType.F8_E5M2;
    }

    /** config.json without its quantization_config: OUT is a plain high-precision checkpoint again. */
    private static void writeConfig(Path src, Path dst) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        try {
            if (json.readTree(src.toFile()) instanceof ObjectNode cfg) {
                cfg.remove("quantization_config");
                json.writeValue(dst.toFile(), cfg);
                return;
            }
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            // not JSON: copied unchanged below
        }
        Files.copy(src, dst);
    }
}
