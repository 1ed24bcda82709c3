package dev.fp8q.formats.lora;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A source checkpoint as convert --lora saw it: every tensor a LoRA changes is computed on demand as convert
 * computed it (float64 sum, one rounding: float32 for the weights DST holds in FP8, the source dtype for the
 * kept ones); every other tensor is the source's own bytes. verify reads it as its reference.
 */
public final class MergedSource implements TensorFile {

    private final TensorFile shard;
    private final Checkpoint source;
    private final LoraMerge merge;
    private final List<TensorEntry> entries = new ArrayList<>();
    private final Map<String, TensorEntry> original = new LinkedHashMap<>();

    private MergedSource(TensorFile shard, Checkpoint source, LoraMerge merge, Set<String> quantized) {
        this.shard = shard;
        this.source = source;
        this.merge = merge;
        for (TensorEntry e : shard.tensors()) {
            if (source.tensor(e.name()).map(t -> t.shard() != shard).orElse(true)) {
                continue;
            }
            original.put(e.name(), e);
            boolean f32 = merge.targets(e.name()) && quantized.contains(e.name());
            entries.add(f32 ? new TensorEntry(e.name(), DType.F32, e.shape(), 0, 4 * e.numel()) : e);
        }
    }

    /** The merged view of source: quantized names the tensors DST holds in FP8. Closing it closes source and merge. */
    public static Checkpoint of(Checkpoint source, LoraMerge merge, Set<String> quantized) {
        List<MergedSource> files = new ArrayList<>();
        for (TensorFile f : source.shards()) {
            files.add(new MergedSource(f, source, merge, quantized));
        }
        return Checkpoint.of(source.root(), files);
    }

    @Override
    public Path path() {
        return shard.path();
    }

    @Override
    public Map<String, String> metadata() {
        return shard.metadata();
    }

    @Override
    public List<TensorEntry> tensors() {
        return entries;
    }

    @Override
    public Optional<TensorEntry> tensor(String name) {
        return entries.stream().filter(e -> e.name().equals(name)).findFirst();
    }

    @Override
    public MemorySegment data(TensorEntry t) {
        TensorEntry src = original.get(t.name());
        if (!merge.targets(t.name())) {
            return shard.data(src);
        }
        DeltaMerger m = new DeltaMerger(new Checkpoint.Tensor(src, shard), merge.deltas(t.name()));
        DType out = t.dtype();
        MemorySegment seg = Arena.ofAuto().allocate(t.byteSize(), 8);
        double[] row = new double[m.cols()];
        for (long r = 0; r < m.rows(); r++) {
            m.merge(r, r + 1, row);
            long base = r * m.cols();
            for (int i = 0; i < row.length; i++) {
                switch (out) {
                    case F32 -> seg.setAtIndex(Elements.FLOAT, base + i, (float) row[i]);
                    case BF16 -> seg.setAtIndex(Elements.SHORT, base + i, Elements.doubleToBf16(row[i]));
                    case F16 -> seg.setAtIndex(Elements.SHORT, base + i, Elements.doubleToF16(row[i]));
                    default -> throw new IllegalStateException("cannot merge into " + out);
                }
            }
        }
        return seg;
    }

    @Override
    public void close() {
        if (shard == source.shards().getLast()) { // once, with the last view
            source.close();
            merge.close();
        }
    }
}
